"""Commit identity from git: HEAD, branch, dirty files, a digest of uncommitted changes."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from loopline.errors import (
    ConfigError,
    InvalidReference,
    NotAGitRepository,
    Refused,
    StoreUnavailable,
    UsageError,
)

__all__ = [
    "SHALLOW_HINT",
    "CommitIdentity",
    "add_worktree",
    "ancestors",
    "as_commit",
    "commit_identity",
    "commit_prefix",
    "commit_url",
    "default_branch",
    "github_repository",
    "hex_digits",
    "included_paths",
    "is_git_repo",
    "is_sha",
    "is_shallow",
    "remove_worktree",
    "repository_paths",
    "require_commit",
    "resolve_commit",
    "run_git",
    "shown_paths",
    "toplevel",
    "unchanged_since",
    "web_url",
]

# What to do when a walk through a commit's ancestors stops at a shallow clone's edge.
SHALLOW_HINT = (
    "this clone is shallow, so the commit's ancestors are not in it: fetch them (`git fetch --unshallow`, "
    "or `fetch-depth: 0` for actions/checkout)"
)


@dataclass(frozen=True)
class CommitIdentity:
    """What ties a model to the code that made it."""

    commit: str
    branch: str
    dirty_files: tuple[str, ...]
    diff_digest: str | None

    @property
    def dirty(self) -> bool:
        """True when the working tree differs from the commit."""
        return bool(self.dirty_files)


def run_git(root: Path, *args: str, check: bool = True) -> str:
    """Run ``git`` in ``root`` and return its standard output."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, env=env, check=False)
    except FileNotFoundError:
        raise StoreUnavailable(what="git", where="PATH", reason="the git command is not installed") from None
    if check and done.returncode != 0:
        raise _GitFailed(done.stderr.strip() or f"git {' '.join(args)} exited with {done.returncode}")
    return done.stdout


class _GitFailed(Exception):
    pass


def _submodules(root: Path, commit: str) -> list[tuple[str, str]]:
    """The submodules ``commit`` of the repository at ``root`` records: each one's path and commit."""
    listed = run_git(root, "ls-tree", "-r", "-z", commit, check=False)
    found = []
    for entry in filter(None, listed.split("\0")):
        meta, _, path = entry.partition("\t")
        mode, _kind, sha = meta.split(" ")
        if mode == "160000":
            found.append((path, sha))
    return found


def add_worktree(root: Path, path: Path, commit: str) -> None:
    """A working copy of ``commit`` of the repository checked out at ``root``, at ``path`` (a git
    worktree), with its submodules at the commits it records, each a worktree of the checkout's own copy
    of it (so nothing is fetched); a submodule the checkout has not fetched stays empty, as in a clone."""
    run_git(root, "worktree", "add", "--detach", "--force", str(path), commit)
    for sub, sha in _submodules(root, commit):
        source = root / sub
        if (source / ".git").exists() and run_git(
            source, "rev-parse", "-q", "--verify", f"{sha}^{{commit}}", check=False
        ):
            add_worktree(source, path / sub, sha)


def remove_worktree(root: Path, path: Path) -> None:
    """Remove the working copy ``add_worktree`` made at ``path``, its submodules' first."""
    if path.is_dir():
        for sub, _sha in _submodules(path, "HEAD"):
            if (root / sub / ".git").exists() and (path / sub / ".git").is_file():
                remove_worktree(root / sub, path / sub)
    run_git(root, "worktree", "remove", "--force", str(path), check=False)
    run_git(root, "worktree", "prune", check=False)


def toplevel(folder: Path) -> Path | None:
    """The top folder of the git work tree holding ``folder``; None outside one."""
    try:
        return Path(run_git(folder, "rev-parse", "--show-toplevel").strip()).resolve()
    except _GitFailed:
        return None


def is_git_repo(root: Path) -> bool:
    """True when ``root`` is inside a git work tree."""
    try:
        return run_git(root, "rev-parse", "--is-inside-work-tree").strip() == "true"
    except _GitFailed:
        return False


_EXCLUDE = ":(exclude)"


def repository_paths(root: Path, paths: Sequence[str]) -> list[str]:
    """``paths`` (relative to the project at ``root``) as its repository names them (``ml/churn``), an entry
    ``!PATTERN`` as the pathspec leaving those files out (``:(exclude)ml/churn/*.md``; ``*`` reaches into
    folders); a configuration error for one outside the repository, or a path that does not exist (a
    misspelt path would never count)."""
    top = (toplevel(root) or root).resolve()
    named = []
    for path in paths:
        leave_out = path.startswith("!")
        pattern = path[1:] if leave_out else path
        if not pattern.strip():
            raise ConfigError(f"training.paths: '{path}' names nothing; write !PATTERN, such as '!*.md'")
        # A pattern is read as written (it may name nothing yet); a path as the file system resolves it.
        where = Path(os.path.normpath(root.resolve() / pattern)) if leave_out else (root / pattern).resolve()
        try:
            relative = where.relative_to(top).as_posix()
        except ValueError:
            raise ConfigError(
                f"training.paths: '{path}' is outside the repository at {top}; name folders inside it"
            ) from None
        if leave_out:
            named.append(_EXCLUDE + relative)
        elif not (root / pattern).exists():
            raise ConfigError(f"training.paths: '{path}' does not exist in {root}; fix or remove it")
        else:
            named.append(relative)
    return named


def shown_paths(named: Sequence[str]) -> str:
    """Pathspecs of :func:`repository_paths` as a message names them (``ml/churn, !ml/churn/*.md``)."""
    return ", ".join("!" + p.removeprefix(_EXCLUDE) if p.startswith(_EXCLUDE) else p for p in named)


def included_paths(named: Sequence[str]) -> list[str]:
    """Pathspecs of :func:`repository_paths` without the ones that leave files out."""
    return [p for p in named if not p.startswith(_EXCLUDE)]


def commit_identity(root: Path, paths: Sequence[str] | None = None) -> CommitIdentity:
    """The HEAD commit, branch, dirty files and (when dirty) a digest of the changes of ``root``; with
    ``paths`` (as the repository names them), of those paths only."""
    if not is_git_repo(root):
        raise NotAGitRepository(path=root)
    try:
        commit = run_git(root, "rev-parse", "--verify", "HEAD^{commit}").strip()
    except _GitFailed:
        raise NotAGitRepository(
            f"the git repository at {root} has no commits yet; commit your project first "
            "(git add -A && git commit -m 'first model')"
        ) from None
    branch = _branch(root)
    where, only = (root, []) if paths is None else (toplevel(root) or root, ["--", *paths])
    status = run_git(where, "status", "--porcelain=v1", "-z", "--untracked-files=all", *only)
    dirty = tuple(sorted(entry[3:] for entry in status.split("\0") if len(entry) > 3))
    return CommitIdentity(
        commit=commit,
        branch=branch,
        dirty_files=dirty,
        diff_digest=_diff_digest(where, dirty, only) if dirty else None,
    )


# The branch GitHub's merge queue tests a pull request on, the commit that then lands on <base>.
_MERGE_QUEUE = re.compile(r"gh-readonly-queue/(?P<base>.+)/pr-\d+-[0-9a-f]+")


def _branch(root: Path) -> str:
    """The branch of the checkout: GitHub Actions names it (a pull request's head branch; in the merge
    queue, the branch the commit lands on), else git does."""
    for variable in ("GITHUB_HEAD_REF", "GITHUB_REF_NAME"):
        if name := os.environ.get(variable):
            queued = _MERGE_QUEUE.fullmatch(name)
            return queued["base"] if queued else name
    name = run_git(root, "rev-parse", "--abbrev-ref", "HEAD").strip()
    return name if name != "HEAD" else "(detached)"


def _diff_digest(root: Path, dirty: tuple[str, ...], only: list[str]) -> str:
    """sha256 over the tracked diff against HEAD and the contents of untracked files (of ``only``, a
    pathspec, when given)."""
    digest = hashlib.sha256()
    digest.update(run_git(root, "diff", "HEAD", "--binary", *only).encode())
    untracked = run_git(root, "ls-files", "--others", "--exclude-standard", "-z", *only).split("\0")
    for name in sorted(filter(None, untracked)):
        digest.update(name.encode() + b"\0")
        path = root / name
        if path.is_file():
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    digest.update(",".join(dirty).encode())
    return "sha256:" + digest.hexdigest()


def resolve_commit(root: Path, ref: str) -> str:
    """The full SHA of ``ref`` (a SHA prefix, a branch, a tag, ``HEAD``) in the repository at ``root``."""
    if not is_git_repo(root):
        raise NotAGitRepository(path=root)
    if ref.startswith("-") or not ref.isprintable():  # an option of git's, or what no ref holds (NUL)
        raise InvalidReference(f"{ref[:60]!r} does not name a commit in {root}")
    try:
        return run_git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").strip()
    except _GitFailed:
        pass
    try:  # ``:/text`` takes a suffix as more text: named first, then peeled to its commit
        named = run_git(root, "rev-parse", "--verify", "--quiet", ref).strip()
        return run_git(root, "rev-parse", "--verify", "--quiet", f"{named}^{{commit}}").strip()
    except _GitFailed:
        raise InvalidReference(f"'{ref}' does not name a commit in {root}") from None


_SHA = re.compile(r"[0-9a-fA-F]{7,40}")


def is_sha(text: str) -> bool:
    """Whether ``text`` is a commit SHA or a prefix of one (7 to 40 hex digits)."""
    return _SHA.fullmatch(text.strip()) is not None


def hex_digits(text: str) -> bool:
    """Whether ``text`` is hex digits alone: a commit named by its SHA's first digits (a filter's prefix may
    be shorter than 7), not by a git ref."""
    return all(c in "0123456789abcdefABCDEF" for c in text.strip())


def as_commit(root: Path, text: str) -> str:
    """A commit as a user names it, as loopline looks it up: a SHA or a prefix of 7+ hex digits as given
    (among the versions of the stores, which need no repository); a git reference of the repository at
    ``root`` (``HEAD~1``, a branch, a tag such as a release's) as the full SHA it names."""
    if is_sha(text):
        return text.strip().lower()  # as git writes them, and loopline stores them
    name = text.strip()
    shallow = ""
    if name and not name.startswith("-") and is_git_repo(root):
        try:
            return resolve_commit(root, name)
        except InvalidReference:
            shallow = f"; {SHALLOW_HINT}, or give the commit's SHA" if is_shallow(root) else ""
    raise InvalidReference(
        f"'{name[:60]}' is not a commit: give a SHA (or a prefix of 7 or more hex digits), or a git ref "
        f"of the project's repository such as HEAD~1, a branch or a tag{shallow}"
    )


def commit_prefix(root: Path, text: str) -> str:
    """``text`` as a filter of commits takes it: hex digits as the prefix they are (shorter than 7 too), a
    git ref of the repository at ``root`` as the full SHA it names (see :func:`as_commit`). An empty one
    (a shell variable that was not set) is refused: it would match every commit."""
    if not text.strip():
        raise UsageError(
            "the commit filter is empty; give a commit (its first digits, or a ref such as HEAD) or leave "
            "the filter out"
        )
    return text.strip().lower() if hex_digits(text) else as_commit(root, text)


def holds(root: Path, commit: str) -> bool:
    """Whether the repository at ``root`` has the commit ``commit`` (a SHA), without fetching."""
    try:
        run_git(root, "cat-file", "-e", f"{commit}^{{commit}}")
    except _GitFailed:
        return False
    return True


def require_commit(root: Path, commit: str, remote: str) -> None:
    """Refuse ``commit`` (a full SHA) unless the repository at ``root`` holds it, after fetching ``remote``
    when it does not yet (a commit pushed since the last fetch)."""
    if not is_git_repo(root):
        raise NotAGitRepository(path=root)
    if holds(root, commit):
        return
    remotes = run_git(root, "remote").split()
    if remote in remotes:
        try:
            run_git(root, "fetch", "--quiet", "--no-tags", remote)
        except _GitFailed as exc:
            raise StoreUnavailable(
                what="the git remote", where=remote, reason=str(exc).splitlines()[-1][:200]
            ) from None
        if holds(root, commit):
            return
    fetched = f" (after fetching '{remote}')" if remote in remotes else f" (it has no remote '{remote}')"
    raise Refused(
        f"commit {commit[:12]} is not in the project's repository{fetched}; push the commit, then run "
        "the inner loop again"
    )


def ancestors(root: Path, commit: str, limit: int = 1000) -> list[str]:
    """The commits ``commit`` descends from, newest first (at most ``limit``), without ``commit`` itself."""
    try:
        listed = run_git(root, "rev-list", f"--max-count={limit + 1}", commit).split()
    except _GitFailed:
        return []
    return listed[1:]


def default_branch(root: Path) -> str:
    """The branch merges land on in the repository at ``root``: the remote's default, else main or master
    where one exists, else the branch checked out."""
    remote = run_git(root, "symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD", check=False)
    if remote.strip().startswith("origin/"):
        return remote.strip().removeprefix("origin/")
    for name in ("main", "master"):
        if run_git(root, "rev-parse", "--verify", "--quiet", f"refs/heads/{name}", check=False).strip():
            return name
    return run_git(root, "symbolic-ref", "--quiet", "--short", "HEAD", check=False).strip() or "main"


def is_shallow(root: Path) -> bool:
    """True when the repository at ``root`` is a shallow clone (its history stops short)."""
    return run_git(root, "rev-parse", "--is-shallow-repository", check=False).strip() == "true"


def unchanged_since(root: Path, commit: str, candidates: set[str], paths: Sequence[str]) -> str | None:
    """The newest ancestor of ``commit`` among ``candidates`` when ``commit`` changed none of ``paths``
    (as the repository names them) since it; else None."""
    ancestor = next((a for a in ancestors(root, commit) if a in candidates), None)
    top = toplevel(root) or root
    if ancestor is None or run_git(top, "diff", "--name-only", ancestor, commit, "--", *paths):
        return None
    return ancestor


def web_url(root: Path, remote: str = "origin") -> str | None:
    """The web address of the repository's remote (GitHub, GitLab, ...), or None when there is none."""
    from urllib.parse import urlsplit

    url = run_git(root, "remote", "get-url", remote, check=False).strip()
    if url.startswith("git@") and ":" in url:  # git@github.com:owner/repo.git
        host, _, path = url.removeprefix("git@").partition(":")
        url = f"https://{host}/{path}"
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http", "ssh") or not parts.hostname or not parts.path.strip("/"):
        return None  # a local path, or nothing
    # Never show credentials that a remote URL may carry.
    return f"https://{parts.hostname}/{parts.path.strip('/').removesuffix('.git')}"


def github_repository(root: Path, remote: str = "origin") -> str | None:
    """``owner/name`` of the repository's remote when it is on github.com, else None."""
    url = web_url(root, remote)
    prefix = "https://github.com/"
    return url.removeprefix(prefix) if url and url.startswith(prefix) else None


def commit_url(repository: str | None, commit: str) -> str | None:
    """The web page of one commit, when the repository's web address is known."""
    return f"{repository}/commit/{commit}" if repository else None

"""Commit identity from real git repositories."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopline.errors import InvalidReference, NotAGitRepository
from loopline.git import as_commit, commit_identity, commit_prefix, commit_url, resolve_commit, web_url
from tests.helpers import commit_all, git


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "--quiet")
    (path / "a.txt").write_text("one\n")
    commit_all(path, "first")
    return path


def test_clean_tree_gives_head_and_branch(repo: Path) -> None:
    identity = commit_identity(repo)
    assert identity.commit == git(repo, "rev-parse", "HEAD")
    assert identity.branch == "main"
    assert not identity.dirty
    assert identity.diff_digest is None


def test_modified_and_untracked_files_make_it_dirty(repo: Path) -> None:
    (repo / "a.txt").write_text("two\n")
    (repo / "new.txt").write_text("x\n")
    identity = commit_identity(repo)
    assert identity.dirty_files == ("a.txt", "new.txt")
    assert identity.diff_digest is not None and identity.diff_digest.startswith("sha256:")


def test_diff_digest_follows_the_content_of_the_changes(repo: Path) -> None:
    (repo / "a.txt").write_text("two\n")
    first = commit_identity(repo).diff_digest
    assert commit_identity(repo).diff_digest == first
    (repo / "a.txt").write_text("three\n")
    assert commit_identity(repo).diff_digest != first


def test_repository_without_commits_is_refused(tmp_path: Path) -> None:
    git(tmp_path, "init", "--quiet")
    with pytest.raises(NotAGitRepository, match="has no commits yet"):
        commit_identity(tmp_path)


def test_folder_outside_git_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NotAGitRepository, match="not inside a git repository"):
        commit_identity(tmp_path)


def test_github_actions_branch_name_wins_over_a_detached_head(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    git(repo, "checkout", "--quiet", "--detach")
    assert commit_identity(repo).branch == "(detached)"
    monkeypatch.setenv("GITHUB_REF_NAME", "release-1")
    assert commit_identity(repo).branch == "release-1"
    # the merge queue tests the commit on a branch of its own, and the commit lands on the base
    queued = f"gh-readonly-queue/release/2.x/pr-42-{git(repo, 'rev-parse', 'HEAD')}"
    monkeypatch.setenv("GITHUB_REF_NAME", queued)
    assert commit_identity(repo).branch == "release/2.x"


def test_a_commit_pasted_with_spaces_or_in_capitals_is_the_commit_git_names(repo: Path) -> None:
    """A workflow_dispatch input or a copy from a web page: " 3F2A9C1 " is 3f2a9c1, as stored."""
    head = git(repo, "rev-parse", "HEAD")
    assert as_commit(repo, f" {head[:9].upper()} ") == head[:9]
    assert commit_prefix(repo, f" {head[:4].upper()}\n") == head[:4]
    assert as_commit(repo, " HEAD ") == head


def test_resolve_commit_accepts_prefixes_and_refuses_garbage(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    assert resolve_commit(repo, head[:7]) == head
    with pytest.raises(InvalidReference):
        resolve_commit(repo, "0000000")
    # A caller's text is never an option of git's, nor a byte no ref holds (which git cannot even be given).
    for hostile in ("--show-toplevel", "HEAD\0", "ma\nin"):
        with pytest.raises(InvalidReference, match="does not name a commit"):
            resolve_commit(repo, hostile)


def test_a_ref_a_shallow_clone_lacks_is_refused_saying_the_clone_is_shallow(
    repo: Path, tmp_path: Path
) -> None:
    (repo / "a.txt").write_text("two\n")
    commit_all(repo, "second")
    clone = tmp_path / "clone"  # as actions/checkout makes one: the newest commit, no history
    git(tmp_path, "clone", "--quiet", "--depth", "1", f"file://{repo}", str(clone))
    assert as_commit(clone, "HEAD") == git(repo, "rev-parse", "HEAD")
    with pytest.raises(InvalidReference, match=r"this clone is shallow.*`git fetch --unshallow`"):
        as_commit(clone, "HEAD~1")
    with pytest.raises(InvalidReference) as whole:  # a whole clone has no such note
        as_commit(repo, "HEAD~5")
    assert "shallow" not in whole.value.message


@pytest.mark.parametrize(
    ("remote", "web"),
    [
        ("git@github.com:acme/churn.git", "https://github.com/acme/churn"),
        ("https://github.com/acme/churn.git", "https://github.com/acme/churn"),
        ("https://ci:ghp_s3cret@github.com/acme/churn", "https://github.com/acme/churn"),
        ("ssh://git@gitlab.example.com/team/churn.git", "https://gitlab.example.com/team/churn"),
        ("/srv/git/churn.git", None),
    ],
)
def test_the_remote_becomes_a_web_address_without_credentials(
    repo: Path, remote: str, web: str | None
) -> None:
    assert web_url(repo) is None  # no remote yet
    git(repo, "remote", "add", "origin", remote)
    assert web_url(repo) == web
    assert commit_url(web_url(repo), "abc123") == (f"{web}/commit/abc123" if web else None)

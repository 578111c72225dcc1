"""The model version a commit names, by the one rule every command follows.

A commit's own version; or, when it has none and changed none of ``training.paths`` since its newest
ancestor with one (a merge elsewhere in a larger repository, which the inner loop did not train), that
ancestor's. The outer loops, rollback and deployments (online and batch) all look versions up here.
"""

from __future__ import annotations

from typing import Any

import yaml

from loopline import catalog
from loopline.config import CONFIG_FILE
from loopline.domain import SHARED, ModelVersionInfo
from loopline.errors import InvalidReference, NotFound
from loopline.git import (
    SHALLOW_HINT,
    as_commit,
    is_shallow,
    repository_paths,
    resolve_commit,
    run_git,
    shown_paths,
    unchanged_since,
)
from loopline.instance import Instance
from loopline.progress import NullReporter, Reporter
from loopline.withdrawn import refuse_withdrawn
from loopline.yamlfile import Loader

__all__ = ["commit_version", "model_name_at", "watched_paths"]


def watched_paths(instance: Instance) -> list[str] | None:
    """``training.paths`` as the repository names them (checked), or None when not set."""
    paths = instance.settings.config.training.paths
    return repository_paths(instance.root, paths) if paths else None


def commit_version(
    instance: Instance,
    name: str,
    commit: str,
    reporter: Reporter | None = None,
    workspace: str = SHARED,
    *,
    withdrawn_ok: bool = False,
) -> ModelVersionInfo:
    """``workspace``'s version of ``name`` from ``commit``, or, when it has none, that of its newest ancestor
    with one if ``commit`` changed none of ``training.paths`` since (said to ``reporter``). ``commit`` is
    a SHA, a prefix of 7+, or a git ref of the project's repository (see :func:`as_commit`). A withdrawn
    version is refused, unless ``withdrawn_ok`` (to withdraw or reinstate it)."""
    commit = as_commit(instance.root, commit)
    try:
        found = catalog.version_for_commit(instance.db, workspace, name, commit)
    except NotFound as missing:
        same = _unchanged_version(instance, name, commit, reporter or NullReporter(), missing, workspace)
        if same is None:
            raise
        found = same
    return found if withdrawn_ok else refuse_withdrawn(instance.db, found)


def _unchanged_version(
    instance: Instance,
    name: str,
    commit: str,
    reporter: Reporter,
    missing: NotFound,
    workspace: str,
) -> ModelVersionInfo | None:
    """``workspace``'s version of the newest ancestor of ``commit`` that has one, when ``commit`` changed
    none of ``training.paths`` since it; None when they are not set, or the commit is not in the
    repository."""
    named = watched_paths(instance)
    if not named:
        return None
    try:
        full = resolve_commit(instance.root, commit)
    except InvalidReference:
        return None
    versions = catalog.list_versions(instance.db, workspace=workspace, name=name)
    registered = {v.git_commit for v in versions if v.diff_digest is None}  # as the inner loop takes them
    ancestor = unchanged_since(instance.root, full, registered, named)
    if ancestor is None:
        if registered and is_shallow(instance.root):
            raise NotFound(f"{missing.message}; {SHALLOW_HINT}") from None
        return None
    version = catalog.version_for_commit(instance.db, workspace, name, ancestor)
    where = "registry" if workspace == SHARED else workspace
    reporter.step(
        f"{full[:7]} changed nothing in {shown_paths(named)} (training.paths) since {ancestor[:7]}; "
        f"taking its version, {where} v{version.version}"
    )
    return version


def model_name_at(instance: Instance, commit: str) -> str | None:
    """``model.name`` as the project's ``loopline.yaml`` had it at ``commit`` (a full SHA); None where the
    commit has no such file or it does not name one."""
    text = run_git(instance.root, "show", f"{commit}:./{CONFIG_FILE}", check=False)
    try:
        found: Any = yaml.load(text, Loader=Loader)  # a safe loader
    except yaml.YAMLError:
        return None
    model = found.get("model") if isinstance(found, dict) else None
    name = model.get("name") if isinstance(model, dict) else None
    return name if isinstance(name, str) and name else None

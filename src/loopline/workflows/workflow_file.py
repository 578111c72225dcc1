"""A GitHub Actions workflow file as this machine's runner reads it: loaded with the line of each key,
checked against the subset it runs (keys, shells, timeouts, matrices, the actions it skips and why), and
the order of its jobs, its triggers and its ``workflow_dispatch`` inputs."""

from __future__ import annotations

import itertools
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from loopline.errors import UsageError
from loopline.workflows.artifacts import ACTIONS

__all__ = [
    "LOCAL_SKIPS",
    "STATUS_FUNCTIONS",
    "WorkflowUnsupported",
    "action_name",
    "check_shell",
    "dispatch_inputs",
    "job_needs",
    "job_order",
    "load_workflow",
    "matrix_combinations",
    "run_default",
    "shell_argv",
    "skipped_locally",
    "workflow_triggers",
]


_SET_UP = "this machine is set up already"
_LOGGED_IN = "this machine uses its own credentials"
# Actions a workflow run on this machine skips, and why it needs none of them (by owner/name, which GitHub
# matches without regard to case): what sets a runner up, logs it in to a cloud, or keeps files on GitHub.
LOCAL_SKIPS = {
    "actions/checkout": _SET_UP,
    "actions/setup-python": _SET_UP,
    "actions/cache": _SET_UP,
    "actions/setup-node": _SET_UP,
    "astral-sh/setup-uv": _SET_UP,
    "snok/install-poetry": _SET_UP,
    "pdm-project/setup-pdm": _SET_UP,
    "conda-incubator/setup-miniconda": _SET_UP,
    "azure/login": _LOGGED_IN,
    "aws-actions/configure-aws-credentials": _LOGGED_IN,
    "google-github-actions/auth": _LOGGED_IN,
    "docker/login-action": _LOGGED_IN,
}


def skipped_locally(uses: str) -> str | None:
    """Why a run on this machine skips the action ``uses`` (``owner/name@ref``), or None when it cannot."""
    return LOCAL_SKIPS.get(action_name(uses))


def action_name(uses: str) -> str:
    """``owner/name`` of ``owner/name@ref``, as GitHub matches it (without regard to case)."""
    return uses.partition("@")[0].strip().lower()


WORKFLOW_KEYS = {"name", "on", "permissions", "concurrency", "env", "defaults", "jobs", "run-name"}
JOB_KEYS = {
    "name",
    "runs-on",
    "needs",
    "if",
    "outputs",
    "steps",
    "env",
    "environment",
    "permissions",
    "concurrency",
    "timeout-minutes",
    "defaults",
    "strategy",
}
STEP_KEYS = {
    "id",
    "name",
    "if",
    "run",
    "uses",
    "with",
    "env",
    "shell",
    "working-directory",
    "continue-on-error",
    "timeout-minutes",
}
STATUS_FUNCTIONS = ("success()", "failure()", "always()", "cancelled()")


class WorkflowUnsupported(UsageError):
    """A workflow file uses something `loopline workflow run` does not run."""

    error_code = "WORKFLOW_UNSUPPORTED"


class _Loader(yaml.SafeLoader):
    """A YAML loader that keeps each mapping's line numbers and reads keys as written (``on`` stays "on")."""


class _Lines(dict):  # type: ignore[type-arg]
    lines: dict[str, int]
    line: int


def _mapping(loader: _Loader, node: yaml.MappingNode) -> _Lines:
    result = _Lines({str(k.value): loader.construct_object(v, deep=True) for k, v in node.value})
    result.lines = {str(k.value): k.start_mark.line + 1 for k, _ in node.value}
    result.line = node.start_mark.line + 1
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def _refuse(path: Path, line: int, message: str) -> WorkflowUnsupported:
    return WorkflowUnsupported(
        f"{path.name} line {line}: {message}; docs/workflows.md says what `loopline workflow run` runs"
    )


def load_workflow(path: Path) -> dict[str, Any]:
    """Read a workflow file and refuse what the local runner does not support, naming the line."""
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except FileNotFoundError:
        raise UsageError(
            f"no workflow file {path}; `loopline init` writes them into .github/workflows/"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise UsageError(f"{path.name} line {mark.line + 1 if mark else '?'}: not valid YAML") from None
    if not isinstance(document, _Lines):
        raise UsageError(f"{path.name}: a workflow file is a mapping with 'on' and 'jobs'")
    for key in document:
        if key not in WORKFLOW_KEYS:
            raise _refuse(path, document.lines[key], f"'{key}' is not supported")
    _check_defaults(path, document, "the workflow")
    jobs = document.get("jobs")
    if not isinstance(jobs, _Lines) or not jobs:
        raise UsageError(f"{path.name}: the workflow has no jobs")
    for job_id, job in jobs.items():
        _check_job(path, job_id, job, jobs.lines[job_id])
    return document


def _check_job(path: Path, job_id: str, job: Any, line: int) -> None:
    if not isinstance(job, _Lines):
        raise _refuse(path, line, f"job '{job_id}' is not a mapping")
    for key in job:
        if key not in JOB_KEYS:
            raise _refuse(path, job.lines[key], f"'{key}' in job '{job_id}' is not supported")
    _check_defaults(path, job, f"job '{job_id}'")
    _check_minutes(path, job)
    if "strategy" in job:
        _check_strategy(path, job_id, job["strategy"], job.lines["strategy"])
    for step in job.get("steps") or []:
        if not isinstance(step, _Lines):
            raise _refuse(path, job.line, f"a step of job '{job_id}' is not a mapping")
        _check_step(path, step)


def _check_minutes(path: Path, owner: _Lines) -> None:
    """``timeout-minutes`` written out must be a number of minutes above 0 (an expression is checked when
    it is known)."""
    value = owner.get("timeout-minutes")
    if value is None or (isinstance(value, str) and "${{" in value):
        return
    try:
        good = float(value) > 0 and not isinstance(value, bool)
    except (TypeError, ValueError):
        good = False
    if not good:
        raise _refuse(
            path, owner.lines["timeout-minutes"], f"timeout-minutes is {value!r}: give minutes above 0"
        )


def _check_step(path: Path, step: _Lines) -> None:
    for key in step:
        if key not in STEP_KEYS:
            raise _refuse(path, step.lines[key], f"'{key}' in a step is not supported")
    _check_minutes(path, step)
    uses = step.get("uses")
    if uses is not None and skipped_locally(str(uses)) is None and action_name(str(uses)) not in ACTIONS:
        raise _refuse(
            path,
            step.lines["uses"],
            f"the action '{uses}' is not supported (set-up and cloud login actions are skipped here, and "
            "upload-artifact and download-artifact run here); run what it does in a 'run:' step",
        )
    if "run" in step and "shell" in step:
        check_shell(path, step, step.lines["shell"])


def _check_strategy(path: Path, job_id: str, strategy: Any, line: int) -> None:
    """``strategy: {matrix, fail-fast, max-parallel}`` with a matrix of lists (and ``include``/``exclude``
    lists of mappings), written out: a matrix an expression computes is known only on GitHub."""
    where = f"'strategy' of job '{job_id}'"
    if not isinstance(strategy, _Lines) or set(strategy) - {"matrix", "fail-fast", "max-parallel"}:
        raise _refuse(path, line, f"{where} may hold only matrix, fail-fast and max-parallel")
    matrix = strategy.get("matrix")
    if not isinstance(matrix, _Lines) or not matrix:
        raise _refuse(path, line, f"{where}: the matrix must be a mapping of lists, written out")
    for key, values in matrix.items():
        listed = isinstance(values, list) and bool(values)
        if not listed or (key in ("include", "exclude") and not all(isinstance(v, dict) for v in values)):
            raise _refuse(
                path,
                matrix.lines[key],
                f"{where}: matrix.{key} must be a list written out (not an expression)",
            )


def matrix_combinations(matrix: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A matrix's combinations as GitHub makes them: the product of its lists, less those ``exclude``
    matches; each ``include`` added to every such combination whose own values it does not change, else
    a combination of its own (which later entries of ``include`` never extend)."""
    axes = {str(k): v for k, v in matrix.items() if k not in ("include", "exclude")}
    products = itertools.product(*axes.values()) if axes else ()
    combos = [dict(zip(axes, values, strict=True)) for values in products]
    for excluded in matrix.get("exclude") or []:
        combos = [c for c in combos if any(c.get(k) != v for k, v in excluded.items())]
    originals = [dict(c) for c in combos]
    added: list[dict[str, Any]] = []
    for included in matrix.get("include") or []:
        fits = [
            c
            for c, original in zip(combos, originals, strict=True)
            if all(original[k] == v for k, v in included.items() if k in original)
        ]
        for combo in fits:
            combo.update(included)
        if not fits:
            added.append(dict(included))
    return combos + added


def _check_defaults(path: Path, owner: _Lines, where: str) -> None:
    """``defaults: {run: {working-directory, shell}}`` of the workflow or a job: a folder, and bash."""
    if "defaults" not in owner:
        return
    defaults = owner["defaults"]
    if (
        not isinstance(defaults, _Lines)
        or set(defaults) - {"run"}
        or not isinstance(defaults.get("run"), _Lines)
    ):
        raise _refuse(path, owner.lines["defaults"], f"'defaults' of {where} may hold only 'run'")
    run = defaults["run"]
    for key in run:
        if key not in ("working-directory", "shell"):
            raise _refuse(path, run.lines[key], f"'{key}' in 'defaults.run' is not supported")
    if "shell" in run:
        check_shell(path, run, run.lines["shell"])


# GitHub's shells on Linux, as it runs them ({0}: the file holding the step's script); a shell left
# unspecified is bash without pipefail, `shell: bash` is bash with it.
_SHELLS = {
    "": "bash -e {0}",
    "bash": "bash --noprofile --norc -eo pipefail {0}",
    "sh": "sh -e {0}",
    "python": "python {0}",
}
_WINDOWS_SHELLS = frozenset({"pwsh", "powershell", "cmd"})


def check_shell(path: Path, owner: _Lines, line: int) -> None:
    shell = str(owner["shell"]).strip()
    if not shell or shell.split()[0] in _WINDOWS_SHELLS:
        raise _refuse(
            path, line, f"'shell: {shell}' is not supported here (bash, sh, python, or a command with {{0}})"
        )


def shell_argv(shell: str, script: Path) -> list[str]:
    """The command GitHub runs for ``shell`` (a keyword, or a template with ``{0}``) on ``script``."""
    template = _SHELLS.get(shell.strip(), shell)
    if "{0}" not in template:
        template += " {0}"
    return [part.replace("{0}", str(script)) for part in shlex.split(template)]


def run_default(key: str, owners: tuple[Mapping[str, Any], ...], default: str) -> str:
    """A run step's ``key`` (``working-directory``, ``shell``): the step's own, else its job's
    ``defaults.run``, else the workflow's."""
    for owner in owners:
        if key in owner:
            return str(owner[key])
        value = ((owner.get("defaults") or {}).get("run") or {}).get(key)
        if value is not None:
            return str(value)
    return default


def workflow_triggers(document: dict[str, Any]) -> dict[str, Any]:
    on = document.get("on")
    if isinstance(on, str):
        return {on: {}}
    if isinstance(on, list):
        return {str(event): {} for event in on}
    return {str(event): value or {} for event, value in (on or {}).items()}


def dispatch_inputs(
    path: Path, triggers: dict[str, Any], event: str, given: Mapping[str, str]
) -> dict[str, str]:
    schema = (
        (triggers.get("workflow_dispatch") or {}).get("inputs") or {} if event == "workflow_dispatch" else {}
    )
    unknown = sorted(set(given) - set(schema))
    if unknown:
        known = ", ".join(schema) or "none"
        raise UsageError(f"{path.name} has no input '{unknown[0]}' for {event} (inputs: {known})")
    values: dict[str, str] = {}
    for name, spec in schema.items():
        spec = spec or {}
        if name in given:
            values[name] = given[name]
        elif spec.get("required") and spec.get("default") is None:
            raise UsageError(f"{path.name} needs the input '{name}': pass --input {name}=VALUE")
        else:
            values[name] = "" if spec.get("default") is None else str(spec["default"])
    return values


def job_order(path: Path, jobs: dict[str, Any]) -> list[str]:
    done: list[str] = []
    pending = dict(jobs)
    while pending:
        ready = [j for j, job in pending.items() if all(n in done for n in job_needs(job))]
        if not ready:
            raise UsageError(f"{path.name}: the jobs' needs form a cycle or name a missing job")
        for job_id in ready:
            done.append(job_id)
            del pending[job_id]
    return done


def job_needs(job: dict[str, Any]) -> list[str]:
    needs = job.get("needs") or []
    return [needs] if isinstance(needs, str) else [str(n) for n in needs]

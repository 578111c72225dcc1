"""Running a GitHub Actions workflow file on this machine, as a runner would, within a known subset.

Jobs run in the order their ``needs`` allow; ``if:`` conditions on jobs and steps are evaluated;
``run:`` steps run in bash with the environment a runner sets (``GITHUB_SHA``, ``GITHUB_REF``,
``GITHUB_EVENT_NAME``, ``GITHUB_OUTPUT``, ``GITHUB_STEP_SUMMARY``, ...); step outputs feed job outputs
and later steps, as do the variables and PATH entries a step writes to ``GITHUB_ENV`` and
``GITHUB_PATH``; a step or job past its ``timeout-minutes`` is stopped with its processes; inputs of
``workflow_dispatch`` come from ``--input``. The runner set-up actions
(checkout, setup-python, cache, and the other actions of ``LOCAL_SKIPS``: tool set-up, cloud logins)
are skipped with a notice saying why this machine needs none of them; upload-artifact and
download-artifact keep their files for the run (``artifacts.py``); the variable
``LOOPLINE_LOCAL_RUN=true`` lets a file skip its own install steps. A job's matrix runs each of its
combinations in turn. Anything else (other actions, a matrix an expression computes, containers,
services) is refused with the line it is on.
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from loopline import children
from loopline.errors import UsageError
from loopline.git import commit_identity, run_git
from loopline.progress import NullReporter, Reporter
from loopline.workflows.artifacts import ACTIONS, Artifacts
from loopline.workflows.expressions import evaluate, interpolate, truthy
from loopline.workflows.files import WorkflowLayout, workflow_layout

__all__ = ["JobResult", "StepResult", "WorkflowRun", "WorkflowUnsupported", "load_workflow", "run_workflow"]

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


def _skipped_locally(uses: str) -> str | None:
    """Why a run on this machine skips the action ``uses`` (``owner/name@ref``), or None when it cannot."""
    return LOCAL_SKIPS.get(_action(uses))


def _action(uses: str) -> str:
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


@dataclass
class StepResult:
    """One step's outcome."""

    job: str
    id: str
    name: str
    status: str
    outputs: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return dict(self.__dict__)


@dataclass
class JobResult:
    """One job's outcome."""

    id: str
    name: str
    status: str
    outputs: dict[str, str] = field(default_factory=dict)
    steps: list[StepResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "outputs": self.outputs,
            "steps": [s.to_dict() for s in self.steps],
        }


@dataclass
class WorkflowRun:
    """A whole run."""

    workflow: str
    event: str
    inputs: dict[str, str]
    jobs: list[JobResult]
    summary: str
    seconds: float

    @property
    def succeeded(self) -> bool:
        """True when no job failed."""
        return all(job.status != "failure" for job in self.jobs)

    @property
    def enabled(self) -> bool | None:
        """What the ``gate`` job said of the tier, when the workflow has one."""
        gate = next((job for job in self.jobs if job.id == "gate"), None)
        if gate is None or "enabled" not in gate.outputs:
            return None
        return gate.outputs["enabled"] == "true"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "workflow": self.workflow,
            "event": self.event,
            "inputs": self.inputs,
            "succeeded": self.succeeded,
            "enabled": self.enabled,
            "seconds": round(self.seconds, 1),
            "jobs": [j.to_dict() for j in self.jobs],
            "summary": self.summary,
        }


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
    if uses is not None and _skipped_locally(str(uses)) is None and _action(str(uses)) not in ACTIONS:
        raise _refuse(
            path,
            step.lines["uses"],
            f"the action '{uses}' is not supported (set-up and cloud login actions are skipped here, and "
            "upload-artifact and download-artifact run here); run what it does in a 'run:' step",
        )
    if "run" in step and "shell" in step:
        _check_shell(path, step, step.lines["shell"])


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


def _combinations(matrix: Mapping[str, Any]) -> list[dict[str, Any]]:
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
        _check_shell(path, run, run.lines["shell"])


# GitHub's shells on Linux, as it runs them ({0}: the file holding the step's script); a shell left
# unspecified is bash without pipefail, `shell: bash` is bash with it.
_SHELLS = {
    "": "bash -e {0}",
    "bash": "bash --noprofile --norc -eo pipefail {0}",
    "sh": "sh -e {0}",
    "python": "python {0}",
}
_WINDOWS_SHELLS = frozenset({"pwsh", "powershell", "cmd"})


def _check_shell(path: Path, owner: _Lines, line: int) -> None:
    shell = str(owner["shell"]).strip()
    if not shell or shell.split()[0] in _WINDOWS_SHELLS:
        raise _refuse(
            path, line, f"'shell: {shell}' is not supported here (bash, sh, python, or a command with {{0}})"
        )


def _shell_argv(shell: str, script: Path) -> list[str]:
    """The command GitHub runs for ``shell`` (a keyword, or a template with ``{0}``) on ``script``."""
    template = _SHELLS.get(shell.strip(), shell)
    if "{0}" not in template:
        template += " {0}"
    return [part.replace("{0}", str(script)) for part in shlex.split(template)]


def _run_default(key: str, owners: tuple[Mapping[str, Any], ...], default: str) -> str:
    """A run step's ``key`` (``working-directory``, ``shell``): the step's own, else its job's
    ``defaults.run``, else the workflow's."""
    for owner in owners:
        if key in owner:
            return str(owner[key])
        value = ((owner.get("defaults") or {}).get("run") or {}).get(key)
        if value is not None:
            return str(value)
    return default


def _triggers(document: dict[str, Any]) -> dict[str, Any]:
    on = document.get("on")
    if isinstance(on, str):
        return {on: {}}
    if isinstance(on, list):
        return {str(event): {} for event in on}
    return {str(event): value or {} for event, value in (on or {}).items()}


def _inputs(path: Path, triggers: dict[str, Any], event: str, given: Mapping[str, str]) -> dict[str, str]:
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


def _order(path: Path, jobs: dict[str, Any]) -> list[str]:
    done: list[str] = []
    pending = dict(jobs)
    while pending:
        ready = [j for j, job in pending.items() if all(n in done for n in _needs(job))]
        if not ready:
            raise UsageError(f"{path.name}: the jobs' needs form a cycle or name a missing job")
        for job_id in ready:
            done.append(job_id)
            del pending[job_id]
    return done


def _needs(job: dict[str, Any]) -> list[str]:
    needs = job.get("needs") or []
    return [needs] if isinstance(needs, str) else [str(n) for n in needs]


@dataclass
class _Run:
    path: Path
    root: Path
    event: str
    inputs: dict[str, str]
    document: dict[str, Any]
    reporter: Reporter
    extra_env: dict[str, str]
    scratch: Path
    artifacts: Artifacts
    results: dict[str, JobResult] = field(default_factory=dict)
    summaries: list[str] = field(default_factory=list)
    matrix: dict[str, Any] = field(default_factory=dict)  # the combination the job runs for
    deadline: float | None = None  # when the running job's timeout-minutes ends (time.monotonic)
    skipped_installs: list[str] = field(default_factory=list)  # the job's steps LOOPLINE_LOCAL_RUN skipped

    def github(self) -> dict[str, Any]:
        identity = commit_identity(self.root)
        ref = f"refs/heads/{identity.branch}"
        repository = f"local/{self.root.name}"
        return {
            "sha": identity.commit,
            "ref": ref,
            "ref_name": identity.branch,
            "event_name": self.event,
            "workspace": str(self.root),
            "actor": self.extra_env.get("GITHUB_ACTOR", "local"),
            "repository": repository,
            "run_id": self.extra_env["GITHUB_RUN_ID"],
            "event": {
                "inputs": self.inputs,
                **self._event_payload(identity.commit, identity.branch, repository),
            },
            "job": "",
        }

    def _event_payload(self, commit: str, branch: str, repository: str) -> dict[str, Any]:
        """What GitHub's event says beyond inputs: a ``workflow_run`` is taken as the successful run, for a
        push of this commit, of the workflow it follows (run here just before, or by the caller)."""
        if self.event != "workflow_run":
            return {}
        run = {
            "head_sha": commit,
            "head_branch": branch,
            "conclusion": "success",
            "event": "push",
            "head_repository": {"full_name": repository},
        }
        return {"workflow_run": run}

    def base_env(self, github: dict[str, Any], job_id: str) -> dict[str, str]:
        path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        return {
            **os.environ,
            **self.extra_env,
            "PATH": path,
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "LOOPLINE_LOCAL_RUN": "true",
            "GITHUB_WORKFLOW": str(self.document.get("name", self.path.stem)),
            "GITHUB_JOB": job_id,
            "GITHUB_SHA": github["sha"],
            "GITHUB_REF": github["ref"],
            "GITHUB_REF_NAME": github["ref_name"],
            "GITHUB_EVENT_NAME": self.event,
            "GITHUB_WORKSPACE": str(self.root),
            "GITHUB_REPOSITORY": github["repository"],
            "GITHUB_ACTOR": github["actor"],
            "RUNNER_OS": "Linux",
            "RUNNER_TEMP": str(self.scratch),
        }

    def context(
        self, github: dict[str, Any], env: Mapping[str, str], steps: dict[str, Any]
    ) -> dict[str, Any]:
        needs = {j: {"outputs": r.outputs, "result": r.status} for j, r in self.results.items()}
        return {
            "github": github,
            "inputs": self.inputs,
            "env": dict(env),
            "steps": steps,
            "needs": needs,
            "secrets": _EnvContext(),
            "vars": _EnvContext(),
            "runner": {"os": "Linux", "temp": str(self.scratch)},
            "matrix": self.matrix,
        }

    def run(self) -> None:
        jobs = self.document["jobs"]
        for job_id in _order(self.path, jobs):
            job = jobs[job_id]
            self.results[job_id] = (
                self.matrix_job(job_id, job) if "strategy" in job else self.job(job_id, job)
            )

    def matrix_job(self, job_id: str, job: dict[str, Any]) -> JobResult:
        """The job once for each combination of its matrix, one after another (with this machine's tools,
        whatever the combination names); with ``fail-fast`` (the default), those after a failure are
        cancelled. Its outputs are those of the last combination that set them, as on GitHub."""
        strategy = job["strategy"]
        combined = JobResult(job_id, str(job.get("name", job_id)), "skipped")
        failed = False
        for combo in _combinations(strategy["matrix"]):
            shown = ", ".join(str(v) for v in combo.values())
            if failed and strategy.get("fail-fast", True):
                self.reporter.step(f"job {job_id} ({shown}): cancelled (fail-fast)")
                continue
            self.matrix = combo
            try:
                result = self.job(job_id, {**job, "name": f"{combined.name} ({shown})"})
            finally:
                self.matrix = {}
            combined.steps += result.steps
            combined.outputs.update({k: v for k, v in result.outputs.items() if v})
            failed = failed or result.status == "failure"
            if result.status != "skipped":
                combined.status = "failure" if failed else "success"
        return combined

    def job(self, job_id: str, job: dict[str, Any]) -> JobResult:
        result = JobResult(job_id, str(job.get("name", job_id)), "success")
        github = {**self.github(), "job": job_id}
        needs = _needs(job)
        failed_need = any(self.results[n].status != "success" for n in needs)
        condition = str(job.get("if", "success()"))
        status = _statuses(failed_need)
        env = self.env_layers(
            github, self.base_env(github, job_id), [self.document.get("env"), job.get("env")]
        )
        if not truthy(evaluate(_wrap(condition), self.context(github, env, {}), status)):
            result.status = "skipped"
            self.reporter.step(f"job {job_id}: skipped")
            return result
        self.reporter.step(f"job {job_id}: {result.name}")
        steps: dict[str, Any] = {}
        failed = False
        limit = _minutes(job.get("timeout-minutes"), self.context(github, env, {}), f"job {job_id}")
        self.deadline = None if limit is None else time.monotonic() + limit
        self.skipped_installs = []
        for index, step in enumerate(job.get("steps") or []):
            owners = (step, job, self.document)  # "": no shell said, GitHub's bash without pipefail
            where = (_run_default("working-directory", owners, "."), _run_default("shell", owners, ""))
            outcome = self.step(job_id, index, step, github, env, steps, failed, where)
            result.steps.append(outcome)
            if outcome.status == "skipped" and "LOOPLINE_LOCAL_RUN" in str(step.get("if", "")):
                self.skipped_installs.append(str(step.get("run", outcome.name)).strip())
            steps[outcome.id] = {
                "outputs": outcome.outputs,
                "outcome": outcome.status,
                "conclusion": outcome.status,
            }
            if outcome.status == "failure" and not step.get("continue-on-error"):
                failed = True
        result.status = "failure" if failed else "success"
        context = self.context(github, env, steps)
        result.outputs = {
            name: interpolate(str(value), context) for name, value in (job.get("outputs") or {}).items()
        }
        return result

    def env_layers(self, github: dict[str, Any], base: dict[str, str], layers: list[Any]) -> dict[str, str]:
        env = dict(base)
        for layer in layers:
            for name, value in (layer or {}).items():
                env[str(name)] = interpolate(str(value), self.context(github, env, {}))
        return env

    def step(
        self,
        job_id: str,
        index: int,
        step: dict[str, Any],
        github: dict[str, Any],
        env: dict[str, str],
        steps: dict[str, Any],
        failed: bool,
        where: tuple[str, str],  # the step's working directory and shell
    ) -> StepResult:
        folder, shell = where
        step_id = str(step.get("id", f"step-{index + 1}"))
        name = str(step.get("name") or step.get("uses") or step.get("run", "")).splitlines()[0][:80]
        result = StepResult(job_id, step_id, name, "success")
        context = self.context(github, env, steps)
        if not truthy(evaluate(_wrap(str(step.get("if", "success()"))), context, _statuses(failed))):
            result.status = "skipped"
            return result
        if "uses" in step:  # an action's paths are the workspace's: working-directory is for run steps
            return self.action(result, step, context)
        step_env = self.env_layers(github, env, [step.get("env")])
        script = interpolate(str(step["run"]), self.context(github, step_env, steps))
        self.reporter.step(f"  {job_id}.{step_id}: {script.strip().splitlines()[0][:100]}")
        files = {kind: self.scratch / f"{kind.lower()}-{uuid.uuid4().hex}" for kind in _STEP_FILES}
        for kind, file in files.items():
            file.touch()
            step_env[kind] = str(file)
        workdir = self.root / folder
        if not workdir.is_dir():
            result.status, result.note = "failure", f"its working directory {folder} does not exist"
            self.reporter.output(f"working directory {folder} does not exist in {self.root}")
            return result
        started = time.monotonic()
        limit = _minutes(step.get("timeout-minutes"), context, f"step {step_id} of job {job_id}")
        left = None if self.deadline is None else max(0.0, self.deadline - started)
        timeout = min((t for t in (limit, left) if t is not None), default=None)
        file = self.scratch / f"step-{uuid.uuid4().hex}{'.py' if shell.strip() == 'python' else '.sh'}"
        file.write_text(script)
        missing = _Missing(self.reporter.output)
        code = _shell_run(_shell_argv(shell, file), workdir, step_env, missing, timeout)
        result.seconds = time.monotonic() - started
        result.outputs = _read_outputs(files["GITHUB_OUTPUT"])
        summary = files["GITHUB_STEP_SUMMARY"].read_text()
        if summary.strip():
            self.summaries.append(summary)
        # What the step set for the job's later steps: variables (their `env` context too), PATH entries
        # (each before those added earlier), even where it failed, as GitHub does.
        env.update(_read_outputs(files["GITHUB_ENV"]))
        added = [line.strip() for line in files["GITHUB_PATH"].read_text().splitlines() if line.strip()]
        if added:
            env["PATH"] = os.pathsep.join([*reversed(added), env.get("PATH", "")])
        if code is None:
            which = "the step's" if timeout == limit else "its job's"
            result.status, result.note = "failure", f"ran past {which} timeout-minutes and was stopped"
            self.reporter.output(f"{job_id}.{step_id}: {result.note}")
        elif code != 0:
            result.status, result.note = "failure", f"exited with {code}{missing.hint(self.skipped_installs)}"
            if missing.found and self.skipped_installs:
                self.reporter.output(f"{job_id}.{step_id}: {result.note}")
        return result

    def action(self, result: StepResult, step: dict[str, Any], context: dict[str, Any]) -> StepResult:
        """A step that uses an action: the artifact actions run here, the others are skipped saying why."""
        uses = str(step["uses"])
        if _action(uses) not in ACTIONS:
            why = _skipped_locally(uses)
            result.status, result.note = "skipped", f"{uses}: {why}"
            self.reporter.step(f"  {uses}: skipped ({why})")
            return result
        given = {str(k): interpolate(str(v), context) for k, v in (step.get("with") or {}).items()}
        done = self.artifacts.run(_action(uses), given, self.root)
        self.reporter.step(f"  {result.job}.{result.id}: {uses}")
        result.outputs = done.outputs
        if done.warning:
            result.note = done.warning
            self.reporter.output(f"warning: {done.warning}")
        if done.failure:
            result.status, result.note = "failure", done.failure
            self.reporter.output(done.failure)
        return result


class _Missing:
    """A step's output passed on line by line, noting the first module or command it says is not there
    (``No module named 'ruff'``, ``ruff: command not found``)."""

    _SAID = re.compile(r"No module named '?([\w.]+)'?|(?:^|: )([\w.-]+): (?:command )?not found$")

    def __init__(self, output: Callable[[str], None]) -> None:
        self.output, self.found = output, ""

    def __call__(self, line: str) -> None:
        if not self.found and (said := self._SAID.search(line.rstrip())):
            self.found = said[1] or said[2]
        self.output(line)

    def hint(self, skipped: list[str]) -> str:
        """For a failed step: what was missing, where the job's install steps were skipped on this
        machine (whose tools a run here uses as they are)."""
        if not self.found or not skipped:
            return ""
        return (
            f": '{self.found}' is not installed here, where the file's install step is skipped"
            f" (LOOPLINE_LOCAL_RUN): run it here once ({skipped[0].splitlines()[0]})"
        )


# The files a step writes to for the runner: outputs, its summary, variables and PATH entries for the
# job's later steps.
_STEP_FILES = ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_ENV", "GITHUB_PATH")


class _EnvContext(dict):  # type: ignore[type-arg]
    """``secrets`` and ``vars``: read from this process's environment, empty when absent."""

    def get(self, key: str, default: Any = None) -> Any:
        return os.environ.get(key, "")


def _wrap(condition: str) -> str:
    body = condition.strip()
    if body.startswith("${{") and body.endswith("}}"):
        body = body[3:-2].strip()
    if any(function in body.replace(" ", "") for function in STATUS_FUNCTIONS):
        return body
    return f"success() && ({body})"


def _statuses(failed: bool) -> dict[str, Callable[[], bool]]:
    return {
        "success": lambda: not failed,
        "failure": lambda: failed,
        "always": lambda: True,
        "cancelled": lambda: False,
    }


def _shell_run(
    argv: list[str], workdir: Path, env: dict[str, str], output: Callable[[str], None], timeout: float | None
) -> int | None:
    """Run a step's shell ``argv``; its exit code, or None where it ran past ``timeout`` seconds and was
    stopped. The step's processes are a group of their own, stopped with it (on Ctrl-C too), and die with
    loopline."""
    return children.streamed(
        argv, on_line=lambda line: output(line.rstrip("\n")), timeout=timeout, cwd=workdir, env=env
    )


def _minutes(value: Any, context: dict[str, Any], where: str) -> float | None:
    """``timeout-minutes`` (a number, or an expression giving one) in seconds; None where not set."""
    if value is None:
        return None
    said = interpolate(str(value), context) if isinstance(value, str) else value
    try:
        minutes = float(said)
    except (TypeError, ValueError):
        raise UsageError(f"timeout-minutes of {where} is {said!r}: give a number of minutes") from None
    if minutes <= 0:
        raise UsageError(f"timeout-minutes of {where} is {said}: give a number of minutes above 0")
    return minutes * 60


def _read_outputs(path: Path) -> dict[str, str]:
    outputs: dict[str, str] = {}
    lines = path.read_text().splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, marker = line.split("<<", 1)
            end = lines.index(marker, index + 1)
            outputs[key] = "\n".join(lines[index + 1 : end])
            index = end + 1
            continue
        if "=" in line:
            key, value = line.split("=", 1)
            outputs[key] = value
        index += 1
    return outputs


def run_workflow(
    root: Path,
    name: str,
    *,
    event: str | None = None,
    inputs: Mapping[str, str] | None = None,
    reporter: Reporter | None = None,
    actor: str = "local",
    project: str | None = None,
) -> WorkflowRun:
    """Run the workflow NAME of the project at ``root`` (named ``project``): ``.github/workflows/NAME.yml``,
    or for a project in a folder of its repository, ``PROJECT-NAME.yml`` at the repository's top, whose
    steps run from there (GITHUB_WORKSPACE) in the project's folder."""
    layout = workflow_layout(root, project or root.name)
    own = WorkflowLayout(root, "", layout.project)  # files kept in the project's folder run there
    if layout.folder and not layout.path(name).exists() and own.path(name).exists():
        layout = own
    path = layout.path(name)
    document = load_workflow(path)
    triggers = _triggers(document)
    chosen = event or ("workflow_dispatch" if "workflow_dispatch" in triggers else next(iter(triggers)))
    if chosen not in triggers:
        raise UsageError(f"{path.name} is not triggered by {chosen} (it is by {', '.join(triggers)})")
    values = _inputs(path, triggers, chosen, inputs or {})
    run_git(root, "rev-parse", "HEAD")
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="loopline-workflow-") as scratch,
        tempfile.TemporaryDirectory(prefix="loopline-artifacts-") as kept,
    ):
        run = _Run(
            path,
            layout.workspace,
            chosen,
            values,
            document,
            reporter or NullReporter(),
            {"GITHUB_ACTOR": actor, "GITHUB_RUN_ID": str(int(time.time()))},
            Path(scratch),
            Artifacts(Path(kept)),
        )
        run.run()
    jobs = list(run.results.values())
    return WorkflowRun(
        str(document.get("name", name)),
        chosen,
        values,
        jobs,
        "\n".join(run.summaries),
        time.monotonic() - started,
    )

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

import os
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loopline import children
from loopline.errors import UsageError
from loopline.git import commit_identity, run_git
from loopline.progress import NullReporter, Reporter
from loopline.workflows.artifacts import ACTIONS, Artifacts
from loopline.workflows.expressions import evaluate, interpolate, truthy
from loopline.workflows.files import WorkflowLayout, workflow_layout
from loopline.workflows.workflow_file import (
    STATUS_FUNCTIONS,
    WorkflowUnsupported,
    action_name,
    dispatch_inputs,
    job_needs,
    job_order,
    load_workflow,
    matrix_combinations,
    run_default,
    shell_argv,
    skipped_locally,
    workflow_triggers,
)

__all__ = ["JobResult", "StepResult", "WorkflowRun", "WorkflowUnsupported", "load_workflow", "run_workflow"]


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
        for job_id in job_order(self.path, jobs):
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
        for combo in matrix_combinations(strategy["matrix"]):
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
        needs = job_needs(job)
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
            where = (run_default("working-directory", owners, "."), run_default("shell", owners, ""))
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
        code = _shell_run(shell_argv(shell, file), workdir, step_env, missing, timeout)
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
        if action_name(uses) not in ACTIONS:
            why = skipped_locally(uses)
            result.status, result.note = "skipped", f"{uses}: {why}"
            self.reporter.step(f"  {uses}: skipped ({why})")
            return result
        given = {str(k): interpolate(str(v), context) for k, v in (step.get("with") or {}).items()}
        done = self.artifacts.run(action_name(uses), given, self.root)
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
    triggers = workflow_triggers(document)
    chosen = event or ("workflow_dispatch" if "workflow_dispatch" in triggers else next(iter(triggers)))
    if chosen not in triggers:
        raise UsageError(f"{path.name} is not triggered by {chosen} (it is by {', '.join(triggers)})")
    values = dispatch_inputs(path, triggers, chosen, inputs or {})
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

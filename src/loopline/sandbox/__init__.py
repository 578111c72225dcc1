"""Model code runs in a sandbox: a child process that holds no secret and can reach none.

Loading a model runs its code (a pyfunc's ``load_context``, a pickle's reducers). Wherever loopline holds
credentials (the control plane, a release, a batch job) it hands the verified model files to a child
started with a clean environment (no ``LOOPLINE_``, MLflow, cloud or database variable), in a scratch
folder as its home, which restricts itself with Linux's Landlock before it loads anything: it may read
the Python installation and the model's files, write its scratch folder, and nothing else (not the
project, not loopline's database, not ``/proc`` of another process), and it may open no TCP connection.
A project's ``sandbox:`` may give it named variables of the environment and TCP ports to connect to (an
agent's key to its LLM's API, and port 443), and nothing else.
On a kernel without Landlock the environment is still clean, and the result says so.

The child answers JSON requests on its standard input, one a line: ``check`` (load the model, answer its
input example, and the example with each optional column null) and ``score`` (predict the rows of one
table file into another, both in the scratch folder). Tables cross as Arrow IPC files (``frames.py``), so
the model never sees a store, a credential or a path outside its files and that folder.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from loopline.errors import ModelFailed, commandless, visible
from loopline.sandbox.frames import read_frame, write_frame

if TYPE_CHECKING:  # the child imports this package first: it loads no configuration before its confinement
    from loopline.config import SandboxConfig

__all__ = ["Sandbox", "SandboxedModel", "check_model", "clean_environment"]

log = logging.getLogger("loopline.sandbox")

ANSWER_BYTES = 1 << 20
"""The longest answer line the child may send (its answers are a few fields; tables cross as files)."""

ANSWERS_FLOOR, ANSWERS_TIMES = 256 << 20, 16
"""The answers' file may be the larger of 256 MiB and 16 times the rows' file; a larger one is not read
(model code writes it, and the process reading it may be a control plane)."""

_KEPT = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "SSL_CERT_FILE", "OMP_NUM_THREADS")


def clean_environment(home: Path, given: Sequence[str] = ()) -> dict[str, str]:
    """What a sandboxed child may know: a path, a locale, its own home, and the variables ``given`` by name
    (``sandbox.environment``: an agent's key to its LLM's API); no other credential of any kind."""
    env = {k: os.environ[k] for k in (*_KEPT, *given) if k in os.environ}
    env.update(
        {
            "HOME": str(home),
            "TMPDIR": str(home),
            "PYTHONNOUSERSITE": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "true",
            # The confinement leaves no shared memory between processes: joblib (scikit-learn's n_jobs)
            # runs in one, as it would after warning "Permission denied" into the model's log.
            "JOBLIB_MULTIPROCESSING": "0",
        }
    )
    return env


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    """Log ``message`` once per process."""
    if message not in _warned:
        _warned.add(message)
        log.warning(message)


def _warn_weak(confinement: str) -> None:
    """Say once when the kernel confines model code less than it could (no Landlock, or no network rule)."""
    version = confinement.removeprefix("landlock ABI ")
    if not version.isdigit():
        _warn_once(
            "model code runs with a clean environment only: this kernel has no Landlock (see security.md)"
        )
    elif int(version) < 4:
        _warn_once(f"model code may open network connections: Landlock ABI {version} has no network rule")


def _answers(path: Path, rows: int, given: int) -> Any:
    """The answers the child wrote to ``path`` for ``rows`` rows (``given`` bytes of table), as untrusted
    input: a forged table, one too large to be answers, or a wrong number of rows (which would put
    answers on the wrong rows) is the model's failure."""
    limit = max(ANSWERS_FLOOR, ANSWERS_TIMES * given)
    size = path.stat().st_size if path.exists() else 0
    if size > limit:
        raise ModelFailed(
            f"the model's answers are {size / 2**20:,.1f} MiB for {given / 2**20:,.1f} MiB of rows, over the "
            f"{limit / 2**20:,.1f} MiB loopline reads back; score fewer rows at a time (batch.chunk_rows)"
        )
    try:
        answers = read_frame(path, untrusted=True)
    except (OSError, ValueError) as bad:  # pyarrow's errors are either
        problem = (str(bad).splitlines() or [type(bad).__name__])[0][:200]
        raise ModelFailed(f"the model's answers are not a readable table: {problem}") from None
    if len(answers) != rows:
        why = (
            "a model that answers several values a row, as a forecast answers each step of its horizon, is "
            "scored through its endpoint"
            if len(answers) > rows
            else "a model that drops rows, nulls say, cannot score a table"
        )
        raise ModelFailed(
            f"the model answered {len(answers):,} rows for {rows:,} rows of input; it must answer each row "
            f"it is given, in order ({why})"
        )
    return answers


def _as_logged(printed: str) -> str:
    """What model code printed, fit for a terminal or a CI log: its control characters written out, and no
    line of it a GitHub Actions workflow command (model code is untrusted; a release job shows this)."""
    return commandless(visible(printed))


class Sandbox:
    """One sandboxed child, answering requests until closed (a model loads once for many requests)."""

    def __init__(
        self, readable: list[Path], timeout: float = 600, allowed: SandboxConfig | None = None
    ) -> None:
        """A child that reads ``readable`` and, as ``allowed`` says (``sandbox:`` in loopline.yaml), gets
        those variables of this process's environment and may connect to those TCP ports."""
        self.scratch = Path(tempfile.mkdtemp(prefix="loopline-sandbox-"))
        self.timeout = timeout
        given, ports = (allowed.environment, allowed.connect_ports) if allowed is not None else ([], [])
        request = {"read": [str(p) for p in readable], "write": str(self.scratch), "connect": ports}
        self._log = self.scratch / "model.log"  # what the model prints; a pipe could fill and stall it
        with self._log.open("w") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "loopline.sandbox.child", json.dumps(request)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log_file,
                cwd=self.scratch,
                env=clean_environment(self.scratch, given),
                text=True,
            )
        try:
            self.confinement = str(self._read().get("confinement", "unknown"))
        except BaseException:
            self.close()
            raise
        _warn_weak(self.confinement)

    def _tail(self) -> str:
        try:
            return self._log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def _read(self) -> dict[str, Any]:
        """The child's next answer. Model code runs in the child and can write to this channel too, so an
        answer is read as untrusted: at most ANSWER_BYTES, one JSON object, or the child is stopped."""
        assert self.process.stdout is not None
        try:
            line = self.process.stdout.readline(ANSWER_BYTES)
        except ValueError:  # bytes that are not UTF-8
            raise self._stopped_for_forging() from None
        if not line:
            self.process.wait(timeout=30)
            tail = self._tail()
            log.warning("the sandboxed model process ended:\n%s", _as_logged(tail))
            problem = (tail.strip().splitlines() or [f"exit code {self.process.returncode}"])[-1][:300]
            raise ModelFailed(f"the model's process ended: {problem}")
        try:
            answer = json.loads(line) if line.endswith("\n") else None
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise self._stopped_for_forging()
        return answer

    def _stopped_for_forging(self) -> ModelFailed:
        self.process.kill()
        self.process.wait()
        return ModelFailed(
            "the model's process wrote something other than loopline's answers on loopline's channel "
            "(model code must not write to its file descriptors); it was stopped"
        )

    def request(self, task: str, **arguments: Any) -> dict[str, Any]:
        """Send one request; the answer, or ModelFailed with the child's one-line reason (also when the
        child takes longer than the sandbox's timeout: it is killed)."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"task": task, **arguments}) + "\n")
        self.process.stdin.flush()
        watchdog = threading.Timer(self.timeout, self.process.kill)
        watchdog.daemon = True
        watchdog.start()
        try:
            answer = self._read()
        finally:
            watchdog.cancel()
        if not answer.get("ok"):
            if answer.get("logged"):
                log.warning("the model failed in its sandbox:\n%s", _as_logged(self._tail()))
            raise ModelFailed(str(answer.get("error", "the sandboxed model process failed")))
        return answer

    def check(self, folder: Path, nulls: bool = True) -> dict[str, Any]:
        """Load the model in ``folder`` and answer its input example (and, with ``nulls``, with each
        optional column null)."""
        return self.request("check", folder=str(folder), nulls=nulls)

    def score(self, folder: Path, frame: Any, first_row: int = 0, keep: Sequence[str] = ()) -> Any:
        """The model's answers to the DataFrame ``frame``, as a DataFrame (see ``predict_frame``; a refusal
        numbers the rows from ``first_row``; ``keep``: columns carried beside the answers)."""
        source, target = self.scratch / "rows.arrow", self.scratch / "answers.arrow"
        write_frame(frame, source)
        given = source.stat().st_size
        try:
            arguments = {"folder": str(folder), "source": str(source), "target": str(target)}
            self.request("score", **arguments, first_row=first_row, keep=list(keep))
            return _answers(target, len(frame), given)
        finally:
            source.unlink(missing_ok=True)
            target.unlink(missing_ok=True)

    def close(self) -> None:
        """End the child and remove its scratch folder."""
        if self.process.poll() is None:
            try:
                assert self.process.stdin is not None
                self.process.stdin.close()
                self.process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()
        shutil.rmtree(self.scratch, ignore_errors=True)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


def check_model(folder: Path, nulls: bool = True, allowed: SandboxConfig | None = None) -> dict[str, Any]:
    """Load the model in ``folder`` in a sandbox (given what ``allowed`` names) and answer its input example
    (with ``nulls``, also with each optional column null): what the check found (``probabilities``: the
    example's answer is a classifier's probabilities); or refuse with what failed."""
    with Sandbox([folder], allowed=allowed) as sandbox:
        return sandbox.check(folder, nulls)


class SandboxedModel:
    """One model's verified files, scored in a sandbox that starts on the first ``score``."""

    def __init__(self, folder: Path, allowed: SandboxConfig | None = None) -> None:
        self.folder = folder
        self.allowed = allowed
        self._sandbox: Sandbox | None = None

    def _started(self) -> Sandbox:
        if self._sandbox is None:
            self._sandbox = Sandbox([self.folder], allowed=self.allowed)
        return self._sandbox

    def check(self, nulls: bool = True) -> None:
        """Load the model and answer its input example (see ``Sandbox.check``); the model stays loaded."""
        self._started().check(self.folder, nulls)

    def score(self, frame: Any, first_row: int = 0, keep: Sequence[str] = ()) -> Any:
        """The model's answers to the DataFrame ``frame``, as a DataFrame (a refusal numbers the rows from
        ``first_row``; ``keep``: columns carried beside the answers)."""
        return self._started().score(self.folder, frame, first_row, keep)

    def close(self) -> None:
        """End the sandbox, if one started."""
        if self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None

    def __enter__(self) -> SandboxedModel:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

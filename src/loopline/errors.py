"""The one error tree of loopline.

Every error a user can cause or meet is a subclass of :class:`LooplineError`. Each class carries a
message template that says what is wrong and what to do, an exit code for the CLI and an HTTP status
for the servers. Only the CLI and the servers turn errors into output, each at one boundary.

    LooplineError                      exit  HTTP
    ├── UsageError                        2   400   the command line or an argument is wrong
    │   ├── ConfigError                   2   400   loopline.yaml or a LOOPLINE_ variable is wrong
    │   ├── TooLarge                      2   413   a request body or upload over its limit
    │   ├── ProjectNotFound               2   400   no loopline.yaml here or above
    │   └── InvalidReference              2   400   a commit, version or name that cannot be parsed
    ├── Refused                           1   409   a precondition, gate or policy says no
    │   ├── DirtyWorkingTree              1   409
    │   ├── GateFailed                    1   409
    │   ├── TierDisabled                  1   409
    │   ├── NotProvisioned                1   409
    │   ├── DirectoryNotEmpty             1   409
    │   ├── NotAGitRepository             1   409
    │   ├── TrainingFailed                1   409
    │   ├── LockTimeout                   1   409
    │   ├── IntegrityViolation            1   409   files no longer match their content digest
    │   ├── ModelFailed                   1   409   a model's own code failed to load or answer
    │   ├── InvalidData                   1   400   a data file that cannot be read as a table
    │   ├── AuditLogAltered               1   409   the audit log's hash chain does not hold
    │   ├── Forbidden                     1   403   the caller's role does not allow the operation
    │   ├── RateLimited                   1   429   too many failed sign-ins from one address
    │   └── NotFound                      1   404   a model, version or commit that does not exist
    ├── Unauthenticated                   2   401   no token, or a token that is malformed, expired or revoked
    ├── RequestRejected                   1   4xx   a scoring request the server will not answer
    ├── InsufficientEvidence              3   422   monitoring cannot decide yet
    └── StoreUnavailable                  4   503   a database, MLflow server or object store fails
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

__all__ = [
    "ApprovalNeeded",
    "AuditLogAltered",
    "ComputeFailed",
    "ConfigError",
    "DirectoryNotEmpty",
    "DirtyWorkingTree",
    "Forbidden",
    "GateFailed",
    "InsufficientEvidence",
    "IntegrityViolation",
    "InvalidData",
    "InvalidReference",
    "LockTimeout",
    "LooplineError",
    "ModelFailed",
    "NotAGitRepository",
    "NotFound",
    "NotProvisioned",
    "ProjectNotFound",
    "RateLimited",
    "Refused",
    "RemoteError",
    "RequestRejected",
    "StoreUnavailable",
    "TierDisabled",
    "TooLarge",
    "TrainingFailed",
    "Unauthenticated",
    "UsageError",
    "commandless",
    "from_answer",
    "on_path",
    "one_line",
    "shorten",
    "visible",
]

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_INSUFFICIENT_EVIDENCE = 3
EXIT_UNEXPECTED = 4
EXIT_INTERRUPTED = 130


class LooplineError(Exception):
    """Root of every error loopline raises on purpose.

    Subclasses set ``template``; keyword arguments fill it. ``message`` overrides the template.
    """

    template: ClassVar[str] = "{message}"
    exit_code: ClassVar[int] = EXIT_REFUSED
    http_status: ClassVar[int] = 400
    error_code: ClassVar[str] = "LOOPLINE_ERROR"

    def __init__(
        self, message: str | None = None, /, *, details: dict[str, Any] | None = None, **fields: Any
    ) -> None:
        self.fields = fields
        self.details = details or {}
        self.message = bounded(message if message is not None else self.template.format(**fields))
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        """The error as a JSON-ready mapping."""
        data: dict[str, Any] = {
            "error_code": self.error_code,
            "message": self.message,
            "exit_code": self.exit_code,
        }
        if self.details:
            data["details"] = self.details
        return data


class UsageError(LooplineError):
    """The command line or an argument is wrong."""

    exit_code = EXIT_USAGE
    http_status = 400
    error_code = "USAGE_ERROR"


class ConfigError(UsageError):
    """``loopline.yaml`` or a ``LOOPLINE_`` environment variable is wrong."""

    error_code = "CONFIG_ERROR"


class TooLarge(UsageError):
    """A request body or an upload over its limit (refused as it streams past it)."""

    http_status = 413
    error_code = "TOO_LARGE"


class ProjectNotFound(UsageError):
    """No loopline project at or above a folder."""

    template = (
        "no loopline.yaml in {path} or any folder above it; run `loopline init --existing` in a repository "
        "that trains with MLflow to set it up, `loopline init DIR --tier simple` to create a sample project, "
        "or cd into one"
    )
    error_code = "PROJECT_NOT_FOUND"


class InvalidReference(UsageError):
    """A commit, version or name that cannot be parsed."""

    error_code = "INVALID_REFERENCE"


class Refused(LooplineError):
    """A precondition, a gate or a policy says no."""

    exit_code = EXIT_REFUSED
    http_status = 409
    error_code = "REFUSED"


class DirtyWorkingTree(Refused):
    """Uncommitted changes where a commit must identify the model."""

    template = (
        "the working tree has uncommitted changes ({files}); commit them (files your training writes: "
        "list them in .gitignore), or pass --allow-dirty to record the model as dirty"
    )
    error_code = "DIRTY_WORKING_TREE"


class GateFailed(Refused):
    """Metrics did not meet the gate's thresholds."""

    template = "gate failed: {failures}; nothing was registered"
    error_code = "GATE_FAILED"


class ApprovalNeeded(Refused):
    """A release to prod waits for approvals it does not have (or one denied it)."""

    error_code = "APPROVAL_NEEDED"


class TierDisabled(Refused):
    """The instance's tier does not include this step."""

    template = "{what} is not part of the '{tier}' tier; {hint}"
    error_code = "TIER_DISABLED"


class NotProvisioned(Refused):
    """The instance's stores do not exist yet."""

    template = "{what} does not exist yet; run `loopline up` in {project} first"
    error_code = "NOT_PROVISIONED"


class DirectoryNotEmpty(Refused):
    """``init`` refuses to write into a folder that holds files."""

    template = "{path} is not empty ({count} entries); choose a new or empty folder"
    error_code = "DIRECTORY_NOT_EMPTY"


class NotAGitRepository(Refused):
    """A command that ties models to commits was run outside git."""

    template = "{path} is not inside a git repository; run `git init` and commit your project first"
    error_code = "NOT_A_GIT_REPOSITORY"


class TrainingFailed(Refused):
    """The project's training entry point failed."""

    template = "training entry point `{command}` {outcome}; its output is in {log}"
    error_code = "TRAINING_FAILED"


class LockTimeout(Refused):
    """Another process holds a lock for too long."""

    template = (
        "{name} is busy: {owner} has held it since {since}; try again when it is done (if that process is "
        "gone for good, an admin can run `loopline unlock {name}`)"
    )
    error_code = "LOCK_TIMEOUT"


class IntegrityViolation(Refused):
    """Files no longer match the content digest they were registered with."""

    template = (
        "model files at {location} do not match their content digest {expected} (found {actual}); "
        "they were changed after registration, so loopline will not use them"
    )
    error_code = "INTEGRITY_VIOLATION"


class ModelFailed(Refused):
    """A model's own code failed to load or to answer (it ran in a sandbox; see ``loopline.sandbox``)."""

    error_code = "MODEL_FAILED"


class ComputeFailed(Refused):
    """A job on a compute target (a Ray cluster) did not finish; what it wrote stays for a resume."""

    error_code = "COMPUTE_FAILED"


class InvalidData(Refused):
    """A data file that cannot be read as a table (malformed CSV, a broken Parquet file)."""

    http_status = 400
    error_code = "INVALID_DATA"


class AuditLogAltered(Refused):
    """The audit log's hash chain does not hold."""

    template = (
        "the audit log at {where} was altered: {problem}; run `loopline audit verify` for every finding"
    )
    error_code = "AUDIT_LOG_ALTERED"


class Forbidden(Refused):
    """The caller's role does not allow the operation."""

    template = "{user} may not {operation}: it needs the {role} role on {scope}; ask an admin for it"
    http_status = 403
    error_code = "FORBIDDEN"


class RateLimited(Refused):
    """Too many failed sign-ins from one address in a short time."""

    template = "too many failed sign-ins from {address}; wait {seconds} seconds and try again"
    http_status = 429
    error_code = "RATE_LIMITED"


class NotFound(Refused):
    """A model, version or commit that does not exist."""

    http_status = 404
    error_code = "NOT_FOUND"


class Unauthenticated(LooplineError):
    """No token, or one that is malformed, unknown, expired or revoked."""

    template = "{problem}; set LOOPLINE_TOKEN to a valid token (`loopline token create --user NAME`)"
    exit_code = EXIT_USAGE
    http_status = 401
    error_code = "UNAUTHENTICATED"


class RequestRejected(LooplineError):
    """A scoring request the server will not answer; each instance carries its own status and code.

    The message names the problem (a column, a limit, a type) and never repeats the request's content.
    """

    error_code = "BAD_REQUEST"

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.http_status = status  # type: ignore[misc]
        self.error_code = code  # type: ignore[misc]


class InsufficientEvidence(LooplineError):
    """Monitoring has too little or too old evidence to decide."""

    exit_code = EXIT_INSUFFICIENT_EVIDENCE
    http_status = 422
    error_code = "INSUFFICIENT_EVIDENCE"


class StoreUnavailable(LooplineError):
    """A database, MLflow server or object store cannot be reached or fails."""

    template = "{what} at {where} is unavailable: {reason}"
    exit_code = EXIT_UNEXPECTED
    http_status = 503
    error_code = "STORE_UNAVAILABLE"


MESSAGE_RUN, MESSAGE_CHARS = 300, 8000
"""The longest run without a space an error message keeps, and the longest message."""


def bounded(message: str) -> str:
    """``message`` as an error says it, whatever it echoes: a run of over MESSAGE_RUN characters without a
    space (a caller's long name, as sent) cut with an ellipsis, and the whole at most MESSAGE_CHARS (its
    start and its end, where the way out is said)."""
    if len(message) <= MESSAGE_RUN:
        return message
    cut = re.sub(rf"\S{{{MESSAGE_RUN + 1},}}", lambda run: run.group()[: MESSAGE_RUN - 3] + "...", message)
    if len(cut) > MESSAGE_CHARS:
        half = MESSAGE_CHARS // 2 - 3
        cut = f"{cut[:half]} ... {cut[-half:]}"
    return cut


def _written_out(text: str, kept: str = "") -> str:
    """``text`` with each character that does not print, but those ``kept``, written as Python writes it."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in kept else repr(c)[1:-1] for c in text)


def one_line(text: str) -> str:
    """``text`` with what does not print (a newline, a NUL) escaped as Python writes it: one line."""
    return _written_out(text)


@contextmanager
def on_path(action: str, path: object, fix: str) -> Iterator[None]:
    """Where the system refuses a path the caller named (no such folder, no permission, a file where a
    folder must be): a usage error, ``cannot ACTION PATH: REASON; FIX``, not an unexpected one."""
    try:
        yield
    except OSError as exc:
        reason = (exc.strerror or type(exc).__name__).lower()
        raise UsageError(f"cannot {action} {path}: {reason}; {fix}") from None


def visible(text: str) -> str:
    """``text`` with every character that does not print, bar a newline and a tab, written as Python
    writes it (``\\x1b``): shown on a terminal, it sends no escape sequence (clear the screen, set the
    clipboard)."""
    return _written_out(text, kept="\n\t")


_NO_COMMAND = "\u200b"
"""A zero-width space, put inside ``::`` and ``##[`` by :func:`commandless`: a log shows the text as it
was, and GitHub Actions' runner reads no workflow command in it."""


def commandless(text: str) -> str:
    """``text`` with nothing GitHub Actions' runner would take for a workflow command: ``::`` starting a
    line (``::add-mask::``, ``::stop-commands::``; a line can start wherever a console wraps one) or the
    older ``##[command]`` form, read anywhere in a line (also markup-escaped, ``##\\[``)."""
    text = text.replace("::", f":{_NO_COMMAND}:").replace("##[", f"##{_NO_COMMAND}[")
    return text.replace("##\\[", f"##{_NO_COMMAND}\\[")


def shorten(text: str, limit: int = 60) -> str:
    """``text`` for a message: at most ``limit`` characters, cut with an ellipsis (an error never echoes a
    caller's long input back), on one line (``one_line``)."""
    return one_line(text if len(text) <= limit else text[: limit - 3] + "...")


def _subclasses(root: type[LooplineError]) -> list[type[LooplineError]]:
    found = [root]
    for child in root.__subclasses__():
        found += _subclasses(child)
    return found


class RemoteError(LooplineError):
    """An error the control plane answered with: the server's class, code and message, rebuilt here."""

    def __init__(self, message: str, *, error_code: str, exit_code: int, http_status: int) -> None:
        super().__init__(message)
        self.error_code = error_code  # type: ignore[misc]
        self.exit_code = exit_code  # type: ignore[misc]
        self.http_status = http_status  # type: ignore[misc]


def from_answer(data: dict[str, Any], http_status: int) -> LooplineError:
    """The error a control-plane answer carries, as the same class where the code names one."""
    code = str(data.get("error_code", "LOOPLINE_ERROR"))
    message = str(data.get("message", f"the control plane answered {http_status}"))
    details = data.get("details") if isinstance(data.get("details"), dict) else None
    for cls in _subclasses(LooplineError):
        if cls.error_code == code and cls is not RequestRejected and "error_code" in vars(cls):
            return cls(message, details=details)
    exit_code = data.get("exit_code")
    return RemoteError(
        message,
        error_code=code,
        exit_code=exit_code if isinstance(exit_code, int) else EXIT_UNEXPECTED,
        http_status=http_status,
    )

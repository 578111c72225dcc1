"""The sandboxed child (``python -m loopline.sandbox.child REQUEST``): confine, then answer requests.

It confines itself before it imports MLflow or anything of a model's: what it may read is the Python
installation it runs on and the folders the parent names; what it may write is its scratch folder.
Each answer is one JSON line on standard output.
"""

from __future__ import annotations

import json
import os
import site
import sys
import sysconfig
import traceback
from pathlib import Path
from typing import Any

from loopline.sandbox.landlock import confine

_SYSTEM = ("/usr", "/lib", "/lib64", "/bin", "/etc", "/sys", "/dev/null", "/dev/urandom", "/dev/zero")
_PROC = ("/proc/cpuinfo", "/proc/meminfo", "/proc/stat", "/proc/version")


def _python_paths() -> set[Path]:
    """Where this interpreter's code lives: the standard library, site-packages, editable installs."""
    found = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix)}
    found |= {Path(p) for p in sysconfig.get_paths().values()}
    found |= {Path(p) for p in site.getsitepackages()}
    found |= {Path(p) for p in sys.path if p and Path(p).is_dir()}
    found.add(Path(__file__).resolve().parents[2])  # loopline itself (an editable install's src/)
    return found


_ANSWERS = os.fdopen(os.dup(1), "w")  # the protocol's own copy of standard output ...
os.dup2(2, 1)  # ... so that whatever the model prints goes to the log, not into an answer
sys.stdout = sys.stderr


def _reply(**answer: Any) -> None:
    _ANSWERS.write(json.dumps(answer, default=str) + "\n")
    _ANSWERS.flush()


def _first_line(exc: BaseException) -> str:
    text = (str(exc).strip().splitlines() or [""])[0][:300]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def main() -> None:
    """Confine this process as the request says, then answer one request a line until stdin ends."""
    setup = json.loads(sys.argv[1])
    read = {Path(p) for p in (*setup["read"], *_SYSTEM, *_PROC, f"/proc/{os.getpid()}")}
    read |= _python_paths()
    version = confine(read, [Path(setup["write"])], setup.get("connect", ()))
    _reply(ok=True, confinement=f"landlock ABI {version}" if version else "environment only")
    from loopline.errors import LooplineError
    from loopline.sandbox import tasks

    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        try:
            _reply(ok=True, **tasks.run(request))
        except tasks.Refusal as refusal:
            _reply(ok=False, error=str(refusal))
        except LooplineError as error:
            _reply(ok=False, error=error.message)
        except Exception as exc:  # the model's failure is the answer, not the child's end
            print(_model_traceback(exc), file=sys.stderr, flush=True)
            _reply(ok=False, error=_first_line(exc), logged=True)


def _model_traceback(exc: BaseException) -> str:
    """``exc``'s traceback without loopline's own frames: the model's code and its libraries', where the
    reader can fix something."""
    own = str(Path(__file__).resolve().parents[1])
    found = traceback.TracebackException.from_exception(exc)
    for each in (found, found.__cause__, found.__context__):
        if each is not None:
            each.stack = traceback.StackSummary.from_list(
                [frame for frame in each.stack if not str(Path(frame.filename).resolve()).startswith(own)]
            )
    return "".join(found.format())


if __name__ == "__main__":
    main()
    # Every answer is written; skip the interpreter's teardown of MLflow and the model's libraries (about
    # half a second, which the parent would wait for at each close).
    sys.stderr.flush()
    os._exit(0)

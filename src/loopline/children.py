"""Starting child processes that end with loopline and never lose a Ctrl-C on the way.

Starting a child forks, and Python swallows an exception raised by a signal handler while it runs its
after-fork callbacks in the parent ("Exception ignored in _releaseLock"): a Ctrl-C at that moment would
be lost and the command would go on. :func:`start` notices SIGINT and SIGTERM while the child is being
started, and stops the child and raises KeyboardInterrupt when one came.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

__all__ = ["cores", "start", "stop", "streamed"]


def cores() -> int:
    """The cores this process may use: its CPU affinity (which `taskset` and cpusets narrow) within the
    CPU quota of its cgroup (a container's CPU limit), as joblib counts them."""
    from joblib import cpu_count

    return max(1, int(cpu_count()))


def start(argv: list[str], *, parent_death_signal: int, **popen: Any) -> subprocess.Popen[Any]:
    """``subprocess.Popen(argv, **popen)`` whose child gets ``parent_death_signal`` when loopline dies."""
    child: subprocess.Popen[Any] | None = None
    try:
        with _noticing_interrupts() as interrupted:
            child = subprocess.Popen(argv, preexec_fn=_die_with_parent(parent_death_signal), **popen)
        if interrupted.is_set():
            raise KeyboardInterrupt
    except BaseException:
        if child is not None:
            stop(child, new_session=bool(popen.get("start_new_session")))
        raise
    return child


def _die_with_parent(sig: int) -> Callable[[], None]:
    def in_child() -> None:
        """Ask Linux to send ``sig`` to this process when its parent dies, so nothing outlives loopline."""
        if sys.platform.startswith("linux"):
            import ctypes

            with contextlib.suppress(OSError, AttributeError):
                ctypes.CDLL(None, use_errno=True).prctl(1, sig)  # 1 = PR_SET_PDEATHSIG

    return in_child


def stop(child: subprocess.Popen[Any], *, new_session: bool) -> None:
    """Kill ``child`` (and its process group, when it was started in a session of its own) and reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if new_session:
            os.killpg(child.pid, signal.SIGKILL)
        else:
            child.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.wait(timeout=10)


@contextlib.contextmanager
def _noticing_interrupts() -> Iterator[threading.Event]:
    """An event set by SIGINT or SIGTERM, which still act as before (in the main thread only)."""
    interrupted = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield interrupted
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def notice(signum: int, frame: FrameType | None) -> None:
        interrupted.set()
        handler = previous[signal.Signals(signum)]
        if callable(handler):
            handler(signum, frame)
        elif handler != signal.SIG_IGN:
            raise KeyboardInterrupt

    for sig in previous:
        signal.signal(sig, notice)
    try:
        yield interrupted
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def streamed(
    argv: list[str],
    *,
    on_line: Callable[[str], None],
    timeout: float | None,
    stop: threading.Event | None = None,
    **popen: Any,
) -> int | None:
    """Run ``argv`` in a session of its own that dies with loopline, handing each line of its output
    (standard error merged in, newline kept) to ``on_line``; stop it and every process it started at
    ``timeout`` seconds, once ``stop`` is set, and on Ctrl-C. Its exit code; None where the timeout
    stopped it. An ``OSError`` starting it is raised as it is."""
    child = start(
        argv,
        parent_death_signal=signal.SIGKILL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
        **popen,
    )
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        stop_group(child)

    # A daemon: a pending timer must never hold loopline's exit for the rest of the timeout.
    timer = threading.Timer(timeout, expire) if timeout is not None else None
    try:  # from here on, a Ctrl-C wherever it lands stops the child and the timer
        if timer is not None:
            timer.daemon = True
            timer.start()
        if stop is not None:
            threading.Thread(target=_stop_when, args=(stop, child), daemon=True).start()
        assert child.stdout is not None
        for line in child.stdout:
            on_line(line)
        code = child.wait()
    except BaseException:
        stop_group(child)
        raise
    finally:
        if timer is not None:
            timer.cancel()
    return None if expired.is_set() else code


def stop_group(child: subprocess.Popen[Any]) -> None:
    """Kill ``child``, started in a session of its own, with its process group, and reap it."""
    stop(child, new_session=True)


def _stop_when(event: threading.Event, child: subprocess.Popen[Any]) -> None:
    """Stop ``child`` once ``event`` is set; return when the child ends by itself."""
    while child.poll() is None:
        if event.wait(0.2):
            stop_group(child)
            return

"""A training job's entry point on a cluster: the project's command, stopped at its timeout.

python -m loopline.compute.entry --timeout SECONDS [--cwd FOLDER] -- COMMAND
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from loopline.run_script import command_environment, training_argv

__all__ = ["main"]

EXIT_TIMEOUT = 124


def main(argv: list[str] | None = None) -> int:
    """Run the command; its exit code, or 124 when it ran past the timeout."""
    parser = argparse.ArgumentParser(prog="python -m loopline.compute.entry")
    parser.add_argument("--timeout", type=float, required=True)
    parser.add_argument(
        "--cwd", default=None, help="the project's folder in the job's copy of its repository"
    )
    parser.add_argument("command")
    args = parser.parse_args(argv)
    command = training_argv(args.command)  # as a local run: loopline's Python, run_script, a shell line
    with command_environment(command, os.environ) as env:
        child = subprocess.Popen(command, cwd=args.cwd, env=env)  # in this group: stopping the job stops it
        return _wait(child, args.timeout)


def _wait(child: subprocess.Popen[bytes], timeout: float) -> int:
    try:
        return child.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
        print(f"loopline: training ran longer than training.timeout_seconds ({timeout:g} s)", flush=True)
        return EXIT_TIMEOUT


if __name__ == "__main__":
    sys.exit(main())

"""The ``loopline`` command line, with its one error boundary."""

from __future__ import annotations

import atexit
import os
import shlex
import signal
import sys
import threading
import traceback as tb
from typing import Any

# loopline's own process loads no pydantic plugins: discovering them scans every installed package.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

import typer.core
import typer.main
from typer.exceptions import Abort, TyperException

from loopline.errors import EXIT_INTERRUPTED, EXIT_UNEXPECTED, EXIT_USAGE, LooplineError, one_line

__all__ = ["main", "run"]


def _command(args: list[str] | None = None) -> typer.core.TyperGroup:
    """The root command with the commands of ``args`` registered (all of them without ``args``): its
    first word that is not an option names the one module a command line needs."""
    from loopline.cli import commands
    from loopline.cli.app import app

    commands.load(next((arg for arg in args if not arg.startswith("-")), None) if args is not None else None)
    command = typer.main.get_command(app)
    assert isinstance(command, typer.core.TyperGroup)
    commands.arrange(command)
    return command


def _fail(message: str, code: int, json_mode: bool, details: dict[str, object] | None = None) -> int:
    from loopline.cli.output import Output

    output = Output(json_mode)
    from rich.markup import escape

    # One line, whatever a message repeats of the caller's input (a name or value holding a newline).
    line = one_line(message)
    output.err.print(
        f"[bold red]error:[/bold red] {escape(line)}", markup=True, highlight=False, soft_wrap=True
    )
    if json_mode:
        output.emit({"error": {"message": message, "exit_code": code, **(details or {})}}, lambda _c: None)
    return code


def _usage_error(exc: TyperException, json_mode: bool, root: Any, args: list[str]) -> int:
    context = getattr(exc, "ctx", None)
    where = _command_path(root, args)  # the parser's errors (an option without its value) carry no context
    if context is not None:
        where = f"loopline {context.command_path.partition(' ')[2]}".strip()
    if type(exc).__name__ == "NoArgsIsHelpError":  # a group without its command: its help is shown
        return EXIT_USAGE
    message = exc.format_message().replace("Value error, ", "")
    if context is not None and (hint := _as_option(message, context, args)):
        message = message.removesuffix(".") + hint
    if context is not None and message.startswith("No such command"):
        word = message.split("'")[1]
        meant = _regrouped(root, context.command_path.split()[1:], word, args)
        if meant:  # the words typed apart or together: the command meant, not the nearest names
            message = f"{message.partition(' Did you mean')[0]} Did you mean `{meant}`?"
        elif "Did you mean" not in message:
            message += _shortened(word, getattr(context.command, "commands", {}))
    return _fail(f"{message} (see `{where} --help`)", EXIT_USAGE, json_mode, _USAGE)


def _shortened(word: str, commands: dict[str, Any]) -> str:
    """A suggestion where ``word`` is a command written out or cut short (``production`` for ``prod``),
    which the close-match rule misses."""
    found = [name for name in commands if len(name) >= 3 and (word.startswith(name) or name.startswith(word))]
    return f" Did you mean '{found[0]}'?" if len(found) == 1 and len(word) >= 3 else ""


def _as_option(message: str, context: Any, args: list[str]) -> str:
    """Where one word was given where an option was meant (``rollback 3f2a9c1``, ``deployment create churn
    blue 1``, ``data register held inbox://x.csv``): the line as it should have been typed; else empty."""
    names = {p.name for p in context.command.params}
    if "unexpected extra argument" in message:
        extra = message.rpartition("(")[2].rstrip(")")
        if " " in extra or extra not in args:  # several words are not one commit
            return ""
        if extra.isdigit() and len(extra) <= 4 and "version" in names:
            option, what = "--version", "a version"
        elif "commit" in names:
            option, what = "--commit", "a commit"
        else:
            return ""
    elif message.startswith("Missing option '--") and len(extras := _unparsed(context, args)) == 1:
        extra, option, what = extras[0], message.split("'")[1], ""
    else:
        return ""
    at = len(args) - 1 - args[::-1].index(extra)
    line = shlex.join(["loopline", *args[:at], option, extra, *args[at + 1 :]])
    return f"; {what} is named with {option}: `{line}`" if what else f"; give {extra} with it: `{line}`"


def _unparsed(context: Any, args: list[str]) -> list[str]:
    """The words of ``args`` beyond those naming the command, its arguments and its options' values."""
    params = context.command.params
    takes_value = {o for p in params if not getattr(p, "is_flag", True) for o in p.opts}
    words = iter(args)
    plain = []
    for word in words:
        if word.startswith("-"):
            if word in takes_value:
                next(words, None)
            continue
        plain.append(word)
    named = len(context.command_path.split()) - 1
    return plain[named + sum(1 for p in params if p.param_type_name == "argument") :]


def _regrouped(root: Any, group: list[str], word: str, args: list[str]) -> str:
    """The command meant by ``word`` under the commands ``group`` where the words join or split into one
    (``batch endpoint create`` for ``batch-endpoint create``, ``batch-job list`` for ``batch job list``),
    with the commands typed after it; empty where none is."""
    tries = [[*group[:-1], f"{group[-1]}-{word}"]] if group else []
    if "-" in word.strip("-"):
        tries.append([*group, *word.split("-", 1)])
    rest = args[args.index(word) + 1 :] if word in args else []
    for words in tries:
        if _command_path(root, words) == " ".join(["loopline", *words]):
            return _command_path(root, [*words, *rest])
    return ""


def _command_path(root: Any, args: list[str]) -> str:
    """``loopline`` and the commands ``args`` name before their first option or argument."""
    words = ["loopline"]
    command = root
    for word in args:
        command = getattr(command, "commands", {}).get(word)
        if command is None:
            break
        words.append(word)
    return " ".join(words)


def _directories(args: list[str]) -> tuple[list[str], list[str]]:
    """``args`` without the ``-C PATH`` options before the command, and those paths in order."""
    rest: list[str] = []
    paths: list[str] = []
    words = iter(args)
    for word in words:
        if not word.startswith("-") or word == "--":
            rest.append(word)
            rest.extend(words)
            break
        if word == "-C":
            paths.append(next(words, ""))
        else:
            rest.append(word)
    return rest, paths


def _enter(paths: list[str], json_mode: bool) -> int:
    """Change into each of ``paths`` in turn, as ``git -C`` does; a usage error's exit code if one fails."""
    for path in paths:
        if not path:
            return _fail("-C needs a folder: loopline -C PATH COMMAND", EXIT_USAGE, json_mode, _USAGE)
        try:
            os.chdir(path)
        except OSError as exc:
            reason = (exc.strerror or "cannot enter it").lower()
            return _fail(f"-C {path}: {reason}; name a folder", EXIT_USAGE, json_mode, _USAGE)
    return 0


_USAGE: dict[str, object] = {"error_code": "USAGE_ERROR"}


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; turn every error into one line on stderr and a distinct exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    json_mode = "--json" in args
    # --traceback is accepted anywhere on the line, where a user adds it after a failure.
    show_traceback = "--traceback" in args or bool(os.environ.get("LOOPLINE_TRACEBACK"))
    args = [arg for arg in args if arg != "--traceback"]
    args, directories = _directories(args)
    if directories and (entered := _enter(directories, json_mode)):
        return entered
    # MLflow draws a progress bar for every artifact loopline downloads (where tqdm is installed): noise
    # between the command's own steps. Left as set when the caller set it.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    code: int
    root = None
    try:
        root = _command(args)
        result = root.main(args=args, prog_name="loopline", standalone_mode=False)
        code = result if isinstance(result, int) else 0
        if code == EXIT_INTERRUPTED:  # Typer turns Ctrl-C into a quiet exit with this code
            code = _fail("interrupted", EXIT_INTERRUPTED, json_mode, {"error_code": "INTERRUPTED"})
    except TyperException as exc:  # a usage error found while parsing the command line
        code = _usage_error(exc, json_mode, root, args)
    except (Abort, KeyboardInterrupt):
        code = _fail("interrupted", EXIT_INTERRUPTED, json_mode, {"error_code": "INTERRUPTED"})
    except LooplineError as exc:
        code = _fail(exc.message, exc.exit_code, json_mode, exc.to_dict())
    except SystemExit as exc:  # rich exits this way when a reader closes the pipe early
        code = exc.code if isinstance(exc.code, int) else 1
    except Exception as exc:  # the boundary: anything unplanned becomes one line
        if show_traceback:
            tb.print_exc()
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        code = _fail(
            f"unexpected {type(exc).__name__}: {first} (run again with --traceback for details)",
            EXIT_UNEXPECTED,
            json_mode,
            {"error_code": "UNEXPECTED"},
        )
    sys.stdout.flush()
    return code


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def run() -> None:
    """Console-script entry point."""
    # A cancelled CI job sends SIGTERM: unwind as for Ctrl-C, so child processes stop and runs are closed.
    signal.signal(signal.SIGTERM, _interrupt)
    code = main()
    if threading.active_count() > 1:
        sys.exit(code)
    # Nothing else is running: run the exit handlers and leave without tearing down every module one by
    # one, which costs a short command such as `loopline status` a fifth of its time.
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

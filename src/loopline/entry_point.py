"""Which command trains, in a repository that already trains with MLflow: a script or notebook that logs
a model, run as its package, its Makefile, its DVC stage or its shell script runs it, with the arguments
it cannot start without (a configuration file, the sub-command named for training) where they are
known."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

from loopline.dvc_repo import stage_running
from loopline.errors import UsageError
from loopline.repo_setup import code_strings, console_scripts
from loopline.requirements import source_code
from loopline.script_arguments import config_argument, sub_commands, training_sub_command
from loopline.shell_line import run_from_its_folder

__all__ = ["DVC_LOCK", "DVC_REPRO", "entry_point", "find_entry_point", "notebook_command", "runs_notebook"]

DVC_REPRO = "dvc repro "  # a training command that runs DVC's pipeline
DVC_LOCK = "dvc.lock"  # what `dvc repro` rewrites where a stage's outputs change
_SKIPPED_DIRS = frozenset(
    {".git", ".venv", "venv", "env", "node_modules", "site-packages", "build", "dist", "__pycache__"}
)


def _training_files(root: Path, depth: int = 3) -> list[Path]:
    """The Python scripts and Jupyter notebooks under ``root``, ``depth`` folders down at the most."""
    found: list[Path] = []
    folders = [root]
    for _ in range(depth + 1):
        nested: list[Path] = []
        for folder in folders:
            for entry in sorted(folder.iterdir()):
                if entry.is_dir() and entry.name not in _SKIPPED_DIRS and not entry.name.startswith("."):
                    nested.append(entry)
                elif entry.suffix in {".py", ".ipynb"} and entry.is_file():
                    found.append(entry)
        folders = nested
    return found


def notebook_command(notebook: Path) -> str:
    """The command that runs ``notebook`` (relative to the repository) top to bottom as Jupyter would: in
    its own folder, on the kernel of the Python loopline runs in (whatever kernel the notebook was saved
    with), its cells' output in the training log; papermill runs it, and the executed copy is dropped."""
    argv = ["python", "-m", "papermill", str(notebook), os.devnull]
    if notebook.parent != Path("."):
        argv += ["--cwd", str(notebook.parent)]
    return shlex.join(
        [*argv, "--log-output", "--no-progress-bar", "--kernel", "python3", "--language", "python"]
    )


def runs_notebook(command: str) -> bool:
    """Whether ``command`` runs a notebook with papermill (the workflows then install it and a kernel)."""
    try:
        argv = shlex.split(command)
    except ValueError:
        return False
    return "papermill" in argv[:3]


def find_entry_point(root: Path) -> str:
    """The command that trains: a Python script that logs an MLflow model (preferring ``train*.py``), a
    notebook that does where no script does, or a Makefile's ``train`` target."""
    return entry_point(root)[0]


def entry_point(root: Path) -> tuple[str, list[str]]:
    """``find_entry_point``'s command, and notes on what it added to it (a configuration file the script
    cannot start without)."""
    scored = []
    for path in _training_files(root):
        relative = path.relative_to(root)
        if relative.parts[0] in {"tests", "test"} or path.name.startswith("test_"):
            continue
        text = source_code(path)
        if text is None or "mlflow" not in text or not _logs_model(text):
            continue
        named = "train" in path.stem.lower()
        script = path.suffix == ".py"
        main = not script or "__main__" in text or not re.search(r"^def |^class ", text, re.M)
        scored.append((named, main, script, -len(relative.parts), str(relative)))
    if scored:
        scored.sort(reverse=True)
        best = scored[0]
        ties = [s for s in scored if s[:4] == best[:4]]
        if len(ties) > 1:
            listed = ", ".join(s[4] for s in ties[:5])
            raise UsageError(
                f"several files could be the training entry point ({listed}); name it with "
                "--command 'python PATH'"
            )
        found = _script_command(root, Path(best[4])) if best[2] else notebook_command(Path(best[4]))
        if best[2] and not best[1]:  # functions, none called when it runs: the package's command calls one
            found = _console_script(root, Path(best[4])) or found
        if wrapped := _wrapper(root, best[4], found):
            return wrapped, _wrapper_notes(wrapped)
        if not best[2]:
            return found, []
        found, notes = _with_arguments(root, found, root / best[4])
        # arguments added name files from the top folder (a configuration file): it runs there
        return (found, notes) if notes else _in_own_folder(root, found, Path(best[4]))
    if "train" in _make_targets(root):
        return "make train", []
    raise UsageError(
        f"no script or notebook in {root} logs an MLflow model (mlflow.<flavor>.log_model, autolog, or "
        "save_model with log_artifacts); "
        "name the training command with --command 'python PATH'"
    )


def _logs_model(code: str) -> bool:
    """Whether ``code`` logs an MLflow model: ``log_model``, autolog, or a model saved with ``save_model``
    and logged as artifacts (``mlflow.log_artifacts(folder, "model")``, as Azure ML's first tutorials did)."""
    return bool(
        re.search(r"log_model|autolog\(", code)
        or (re.search(r"save_model\(", code) and re.search(r"log_artifacts?\(", code))
    )


def _with_arguments(root: Path, found: str, script: Path) -> tuple[str, list[str]]:
    """``found``, the command running ``script``, with the sub-command that trains (a group of them) or
    the configuration file it cannot start without, where either is known; and notes on what was added."""
    source = source_code(script) or ""
    if grouped := _sub_command(found, source):
        return grouped
    configured = config_argument(root, source)
    if configured is None:
        return found, []
    arguments, note = configured
    return shlex.join([*shlex.split(found), *arguments]), [f"{note}; pass another in training.command"]


def _sub_command(found: str, source: str) -> tuple[str, list[str]] | None:
    """``found`` with the sub-command that trains, where the script is a group of sub-commands (click,
    Typer, argparse's sub-parsers) and exactly one is named for training; and a note saying so."""
    names = sub_commands(source)
    chosen = training_sub_command(names) if names else None
    if chosen is None:
        return None
    listed = ", ".join(names or ())
    return f"{found} {shlex.quote(chosen)}", [
        f"the script is a group of sub-commands ({listed}): the training runs its {chosen}; name another "
        "in training.command"
    ]


def _console_script(root: Path, script: Path) -> str | None:
    """The command of the repository's package (``pyproject.toml``'s scripts) that calls a function of
    ``script``, a module of the package (at the top or under ``src/``)."""
    parts = script.with_suffix("").parts
    module = ".".join(parts[1:] if parts[0] == "src" else parts)
    named = [name for name, target in console_scripts(root).items() if target.partition(":")[0] == module]
    return min(named, key=lambda name: ("train" not in name, name)) if named else None


def _make_targets(root: Path) -> dict[str, tuple[list[str], list[str]]]:
    """The rules of the repository's Makefile: each target's prerequisites and recipe lines."""
    makefile = next((root / n for n in ("GNUmakefile", "makefile", "Makefile") if (root / n).is_file()), None)
    rules: dict[str, tuple[list[str], list[str]]] = {}
    recipe: list[str] | None = None
    for line in makefile.read_text(errors="replace").replace("\\\n", " ").splitlines() if makefile else []:
        if line.startswith("\t") or not line.strip() or line.startswith("#"):
            if line.startswith("\t") and recipe is not None:
                recipe.append(line.strip())
            continue
        recipe = None
        if rule := re.match(r"^([\w.\-/ ]+?)\s*::?(?![=:])\s*([^;#]*)", line):
            recipe = []
            for target in rule.group(1).split():
                rules[target] = (rule.group(2).split(), recipe)  # targets of one rule share its recipe
    return rules


def _wrapper(root: Path, script: str, command: str) -> str | None:
    """How the repository says to run ``script`` (that ``command`` runs), where it wraps it: the Makefile's
    ``train`` target, itself or through the targets it depends on (a data step, say), else the stage of
    DVC's pipeline (``dvc.yaml``) that runs it, with the stages it depends on, else a shell script
    ``train*.sh`` at the top or in ``scripts/``."""
    names = {script, command.partition("python ")[2] or script}
    runs = re.compile("|".join(rf"(?<![\w/.-]){re.escape(name)}(?![\w.-])" for name in names))
    rules, seen, todo = _make_targets(root), set(), ["train"]
    while todo:
        target = todo.pop()
        if target in seen or target not in rules:
            continue
        seen.add(target)
        prerequisites, recipe = rules[target]
        if any(runs.search(line) for line in recipe):
            return "make train"
        todo.extend(prerequisites)
    if stage := stage_running(root, script):  # forced: DVC skips a stage whose inputs did not change
        return f"dvc repro --force {shlex.quote(stage)}"
    for shell in [*sorted(root.glob("train*.sh")), *sorted(root.glob("scripts/train*.sh"))]:
        lines = shell.read_text(errors="replace").splitlines()
        if any(runs.search(line) for line in lines if not line.lstrip().startswith("#")):
            return f"bash {shlex.quote(str(shell.relative_to(root)))}"
    return None


def _wrapper_notes(command: str) -> list[str]:
    if not command.startswith(DVC_REPRO):
        return []
    return [
        f"the training command runs DVC's stage {shlex.split(command)[-1]} (dvc.yaml) and the stages it "
        "depends on: forced (--force), since `dvc repro` skips a stage whose dependencies did not change and "
        f"the inner loop trains at every commit; it rewrites {DVC_LOCK} where a stage's outputs change, "
        f"which training.paths leaves out, so a commit of {DVC_LOCK} alone trains nothing"
    ]


def _script_command(root: Path, script: Path) -> str:
    """``python -m PACKAGE.MODULE`` for a script of a package that imports the package (relatively or by
    its name), which only runs as a module of it; ``python SCRIPT`` for any other."""
    packages = [folder for folder in script.parents[:-1] if (root / folder / "__init__.py").is_file()]
    if packages and packages[0] == script.parent:
        top = next((p for p in packages if not (root / p.parent / "__init__.py").is_file()), packages[-1])
        dotted = ".".join(script.with_suffix("").relative_to(top.parent).parts)
        code = source_code(root / script) or ""
        if re.search(rf"^\s*from\s+\.|^\s*(from|import)\s+{re.escape(top.name)}\b", code, re.M):
            return f"python -m {dotted}"
    return f"python {shlex.quote(str(script))}"


def _paths_named(source: str | None) -> list[str]:
    """The string constants of ``source`` that could name a file of the repository relative to where the
    script runs (``../data/train.csv``, ``params.yaml``): no URL, no absolute path, no blank."""
    return sorted(
        value
        for value in code_strings(source)
        if len(value) <= 200
        and value.strip(". /")
        and not re.search(r"\s|://", value)
        and not os.path.isabs(value)
    )


def _in_own_folder(root: Path, command: str, script: Path) -> tuple[str, list[str]]:
    """``command`` run from ``script``'s folder (``cd training && python train.py``) where the script
    names files relative to that folder (``../data/houses.csv``), which run from the repository's top
    folder it would not find; else as it is. And a note saying so."""
    moved = run_from_its_folder(command, script.as_posix())
    if script.parent == Path() or moved is None:
        return command, []
    named = _paths_named(source_code(root / script))
    here = [name for name in named if (root / script.parent / name).exists()]
    at_top = [name for name in named if (root / name).exists()]
    own = [name for name in here if name not in at_top]
    if not own or any(name not in here for name in at_top):
        return command, []
    return moved, [f"{script} reads {own[0]} from its own folder, so the training runs there: `{moved}`"]

"""What a training imports, as the distributions installed here: for the requirements ``init --existing``
writes, so that the workflows' jobs install what the training needs and not only what the model needs.

The training's file (a script, a module run with ``-m``, or a notebook's code cells) is read, with the
repository's own modules it imports, without running anything; each imported name that is not the
repository's own or Python's is looked up among the distributions installed here, pinned to the version
installed (as MLflow pins a model's requirements).
"""

from __future__ import annotations

import ast
import json
import re
import sys
from collections.abc import Sequence
from importlib.metadata import packages_distributions, version
from pathlib import Path

from loopline.shell_line import python_runs, python_words

__all__ = ["source_code", "training_file", "training_files", "training_requirements"]

_MAGIC = re.compile(r"^\s*[%!]")  # IPython's magics and shell lines: not Python
_MOST_FILES = 200  # the repository's own modules read at the most, following imports


def source_code(path: Path) -> str | None:
    """The code of a script, or of a notebook's code cells; None where it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    if path.suffix != ".ipynb":
        return text
    try:
        cells = json.loads(text)["cells"]
        return "\n".join(
            "".join(cell["source"]) for cell in cells if cell.get("cell_type") == "code"
        )  # nbformat 4 writes a cell's source as a list of lines or as one string: both join
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def training_file(root: Path, command: str) -> Path | None:
    """The file ``command`` runs: ``python SCRIPT``, ``python -m MODULE``, or papermill's notebook; of a
    line of shell syntax that runs several, the one that imports MLflow (the training, not a step that
    prepares its data), else the last."""
    files = training_files(root, command)
    if len(files) < 2:
        return files[0] if files else None
    return next((path for path in files if "mlflow" in _imported(source_code(path) or "")), files[-1])


def training_files(root: Path, command: str) -> list[Path]:
    """The files each Python command of ``command`` runs, in order (see ``training_file``)."""
    runs = python_runs(command) or [(".", python_words(command))]
    found = [_run_file(root / folder, argv) for folder, argv in runs]
    return [path for path in found if path is not None]


def _run_file(root: Path, argv: list[str]) -> Path | None:
    if len(argv) < 2 or not argv[0].startswith("python"):
        return None
    if argv[1:3] == ["-m", "papermill"] and len(argv) > 3:
        return root / argv[3]
    if argv[1] == "-m" and len(argv) > 2:  # a module of the repository at its top or under src/
        bases = [folder.joinpath(*argv[2].split(".")) for folder in (root, root / "src")]
        files = [path for base in bases for path in (base.with_suffix(".py"), base / "__main__.py")]
        return next((path for path in files if path.is_file()), None)
    return root / argv[1] if argv[1].endswith(".py") else None


def _imported(code: str) -> set[str]:
    """The top-level names of what ``code`` imports (absolute imports only)."""
    lines = "\n".join("" if _MAGIC.match(line) else line for line in code.splitlines())
    try:
        tree = ast.parse(lines)
    except SyntaxError:
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def _own(root: Path, folder: Path, name: str) -> list[Path]:
    """The repository's files of module ``name`` as the training would find it (beside the file, at the
    top, or under ``src/``); none when it is not the repository's."""
    for base in dict.fromkeys((folder, root, root / "src")):
        if (base / f"{name}.py").is_file():
            return [base / f"{name}.py"]
        if (base / name).is_dir() and any((base / name).glob("*.py")):
            return sorted((base / name).rglob("*.py"))
    return []


def training_requirements(root: Path, command: str, scripts: Sequence[str] = ()) -> list[str]:
    """``NAME==VERSION`` of each installed distribution the training's files (and ``scripts``, from the
    root: the steps of a pipeline it runs), or the repository's modules they import, import (Python's own
    modules and loopline left out)."""
    starts = [*training_files(root, command), *(root / script for script in scripts)]
    files = list(dict.fromkeys(path for path in starts if path is not None and path.is_file()))
    if not files:
        return []
    distributions = packages_distributions()
    seen, queue, outside = set(files), list(files), set[str]()
    while queue and len(seen) <= _MOST_FILES:
        path = queue.pop()
        for name in _imported(source_code(path) or ""):
            own = _own(root, path.parent, name)
            if own:
                queue += [p for p in own if p not in seen]
                seen.update(own)
            elif name not in sys.stdlib_module_names:
                outside.add(name)
    pinned: dict[str, str] = {}
    for name in sorted(outside):
        found = distributions.get(name, [])
        # A name several distributions provide: the one named alike (mlflow, not mlflow-skinny), if any.
        chosen = [d for d in found if d.lower().replace("_", "-") == name.lower().replace("_", "-")]
        chosen = chosen or (found if len(set(found)) == 1 else [])
        for distribution in chosen[:1]:
            if distribution.lower() != "loopline":  # a local label (torch's +cu121) is no index's
                pinned[distribution] = f"{distribution}=={version(distribution).split('+', 1)[0]}"
    return list(pinned.values())

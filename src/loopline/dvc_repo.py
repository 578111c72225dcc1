"""What a repository that keeps its data and pipeline with DVC says, read from its files (without DVC):
the default remote of ``.dvc/config``, the stage of ``dvc.yaml`` that runs the training, and the paths DVC
keeps (each ``.dvc`` file's, and the stages' outputs), which git ignores and ``dvc pull`` or the
pipeline brings."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

__all__ = ["default_remote", "kept_by_dvc", "stage_running"]


def default_remote(config: Path) -> tuple[str, str]:
    """The name and URL of the default remote in DVC's ``config`` (either empty where none is set)."""
    section, values = "", {}
    for raw in config.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.strip()
        if header := re.fullmatch(r"\[\s*'?(.*?)'?\s*\]", line):
            section = header[1]
            continue
        key, equals, value = line.partition("=")
        if equals and not line.startswith(("#", ";")):
            values[(section, key.strip())] = value.strip()
    name = values.get(("core", "remote"), "")
    return name, values.get((f'remote "{name}"', "url"), "") if name else ""


def _stages(root: Path) -> dict[str, dict[str, Any]]:
    """The stages of ``root``'s ``dvc.yaml`` with a command of their own (not ``foreach``/``matrix``
    templates, whose commands take their items); none where there is no readable file."""
    try:
        document = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8", errors="replace"))
    except (OSError, yaml.YAMLError):
        return {}
    stages = document.get("stages") if isinstance(document, dict) else None
    if not isinstance(stages, dict):
        return {}
    return {
        str(name): stage
        for name, stage in stages.items()
        if isinstance(stage, dict) and isinstance(stage.get("cmd"), str | list)
    }


def stage_running(root: Path, script: str) -> str | None:
    """The stage of ``root``'s ``dvc.yaml`` whose command runs ``script`` (a path relative to ``root``),
    from the stage's working directory (``wdir``); the first, in the file's order, where several do."""
    for name, stage in _stages(root).items():
        wdir = str(stage.get("wdir") or ".")
        relative = os.path.relpath(root / script, root / wdir)
        runs = re.compile(rf"(?<![\w/.-])(\./)?{re.escape(relative)}(?![\w.-])")
        commands = stage["cmd"] if isinstance(stage["cmd"], list) else [stage["cmd"]]
        if any(runs.search(str(command)) for command in commands):
            return name
    return None


def _outputs(root: Path) -> set[str]:
    """The paths (relative to ``root``) the stages of ``dvc.yaml`` write and DVC keeps."""
    found = set()
    for stage in _stages(root).values():
        wdir = str(stage.get("wdir") or ".")
        for key in ("outs", "metrics", "plots"):
            entries = stage.get(key)
            for entry in entries if isinstance(entries, list) else []:
                path = next(iter(entry), None) if isinstance(entry, dict) else entry
                if isinstance(path, str):
                    found.add(os.path.normpath(os.path.join(wdir, path)))
    return found


def kept_by_dvc(root: Path, paths: Iterable[str]) -> set[str]:
    """Those of ``paths`` (relative to ``root``, a trailing ``/`` for a folder) that DVC keeps: a ``.dvc``
    file beside them or a folder above them names them, or a stage of ``dvc.yaml`` writes them."""
    outputs = _outputs(root)
    kept = set()
    for path in paths:
        parts = Path(path.rstrip("/")).parts
        prefixes = [str(Path(*parts[:n])) for n in range(1, len(parts) + 1)]
        if any(p in outputs or (root / f"{p}.dvc").is_file() for p in prefixes):
            kept.add(path)
    return kept

"""Templates shipped in the package (the sample project, the workflow files), rendered by one function."""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

__all__ = ["render_templates"]


# What tools leave in a template folder of a checkout (Python, ruff or pytest run there): never copied.
_CACHES = frozenset({"__pycache__", ".ruff_cache", ".pytest_cache", ".mypy_cache", ".ipynb_checkpoints"})


def _walk(folder: Traversable, prefix: str = "") -> list[tuple[str, Traversable]]:
    found = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name in _CACHES:
            continue
        name = f"{prefix}{entry.name}"
        if entry.is_dir():
            found.extend(_walk(entry, f"{name}/"))
        else:
            found.append((name, entry))
    return found


def render_templates(group: str, context: dict[str, Any]) -> dict[str, bytes]:
    """Every file of template group ``group`` rendered: ``*.j2`` through Jinja2, ``dot-x`` named ``.x``."""
    import jinja2

    environment = jinja2.Environment(keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    rendered: dict[str, bytes] = {}
    for name, entry in _walk(resources.files("loopline") / "templates" / group):
        target = "/".join(
            part.replace("dot-", ".", 1) if part.startswith("dot-") else part for part in name.split("/")
        )
        if target.endswith(".j2"):
            text = environment.from_string(entry.read_text(encoding="utf-8")).render(**context)
            rendered[target.removesuffix(".j2")] = text.encode()
        else:
            rendered[target] = entry.read_bytes()
    return rendered

"""The lifecycle demo: a fresh sample project driven through loopline, step by step."""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loopline.domain import Tier
from loopline.git import run_git
from loopline.progress import NullReporter, Reporter

__all__ = ["DemoResult", "run_demo"]


@dataclass(frozen=True)
class DemoResult:
    """What the demo did and where everything stands at its end."""

    path: Path
    kept: bool
    tier: Tier
    seconds: float
    steps: tuple[str, ...]
    models: tuple[dict[str, Any], ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "path": str(self.path),
            "kept": self.kept,
            "tier": self.tier.value,
            "seconds": round(self.seconds, 1),
            "steps": list(self.steps),
            "models": list(self.models),
        }


def _commit(root: Path, message: str) -> str:
    run_git(root, "add", "-A")
    run_git(
        root,
        "-c",
        "user.name=loopline demo",
        "-c",
        "user.email=demo@loopline.invalid",
        "commit",
        "--quiet",
        "-m",
        message,
    )
    return run_git(root, "rev-parse", "HEAD").strip()


def run_demo(
    tier: Tier = Tier.FULL, keep: Path | None = None, reporter: Reporter | None = None
) -> DemoResult:
    """Create a sample project, provision it, and register its first model through the inner loop."""
    from loopline import api

    report = reporter or NullReporter()
    started = time.monotonic()
    path = keep.expanduser().resolve() if keep else Path(tempfile.mkdtemp(prefix="loopline-demo-")) / "demo"
    steps: list[str] = []

    def step(message: str) -> None:
        steps.append(message)
        report.step(message)

    try:
        created = api.init(path, tier, project="demo")
        step(f"created the sample project in {created.path} ({tier.value} tier)")
        commit = _commit(path, "Sample project from loopline init")
        step(f"committed it as {commit[:7]}")
        provisioned = api.up(path, reporter=report)
        step(f"provisioned {len(provisioned.created)} stores and folders")
        result = api.inner_loop(path, reporter=report)
        step(f"inner loop: {result.message}")
        models = tuple(m.to_dict() for m in api.status(path).models)
    finally:
        if keep is None:
            shutil.rmtree(path.parent, ignore_errors=True)
    return DemoResult(
        path=path,
        kept=keep is not None,
        tier=tier,
        seconds=time.monotonic() - started,
        steps=tuple(steps),
        models=models,
    )

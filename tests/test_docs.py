"""The docs are executable: the README's tour and "Bring your own project" run as written, command by
command and in order, in an empty folder, with the `loopline` a user would have."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[1]
_BLOCK = re.compile(r"(?P<before>[^\n]*)\n```(?P<lang>bash|python)\n(?P<code>.*?)\n```", re.S)


def blocks(page: Path) -> list[tuple[str, str]]:
    """The page's bash and python blocks in order, except those under a ``<!-- docs-test: skip ... -->``."""
    text = "\n" + page.read_text()
    return [
        (m["lang"], m["code"])
        for m in _BLOCK.finditer(text)
        if not m["before"].strip().startswith("<!-- docs-test: skip")
    ]


def script(page: Path) -> str:
    """One bash script running the page's blocks in turn; background jobs end with it."""
    lines = ["set -euo pipefail", "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT"]
    for lang, code in blocks(page):
        if lang == "bash":
            lines.append(code)
        else:
            lines.append(f"python - <<'PYTHON'\n{code}\nPYTHON")
    return "\n".join(lines) + "\n"


def run_page(page: Path, folder: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    (folder / ".venv").symlink_to(Path(sys.executable).parents[1])  # as ./scripts/demo made it
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        # Servers of this test on ports of their own: other tests may be serving at the same time.
        "LOOPLINE_WORKSPACES__DEV__ENDPOINTS_URL": f"http://127.0.0.1:{free_port()}",
        "LOOPLINE_WORKSPACES__PROD__ENDPOINTS_URL": f"http://127.0.0.1:{free_port()}",
    }
    done = subprocess.run(
        ["bash", "-c", script(page)],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{page.name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def said(done: subprocess.CompletedProcess[str]) -> str:
    """What the commands printed, with the console's line wrapping undone."""
    return " ".join(done.stdout.split())


@pytest.mark.long
def test_the_readme_tour_runs_as_written(tmp_path: Path) -> None:
    done = said(run_page(ROOT / "README.md", tmp_path, timeout=600))
    assert "is already registered (dev v2, registry v2); nothing to do" in done
    assert "rolled churn back" in done
    assert "200 from blue" in done  # the invoked endpoint answered
    assert (tmp_path / "churn" / "request.json").is_file()


@pytest.mark.long
def test_bring_your_own_project_runs_as_written(tmp_path: Path) -> None:
    done = run_page(ROOT / "docs" / "bring-your-own-project.md", tmp_path, timeout=600)
    project = tmp_path / "churn-model"
    config = (project / "loopline.yaml").read_text()
    assert "command: python train.py" in config and "experiment: churn-experiments" in config
    assert "accuracy" in (project / "gate.yaml").read_text()
    assert "registered churn-model-model" in said(done)
    assert not (project / "mlruns").exists()
    # set up from a run made by hand, which init read rather than training again
    from_run = (tmp_path / "churn-hours" / "gate.yaml").read_text()
    assert "written from the training's run " in from_run and "accuracy" in from_run


def test_every_page_block_is_bash_or_python_and_none_is_skipped_without_a_reason() -> None:
    for page in (ROOT / "README.md", ROOT / "docs" / "bring-your-own-project.md"):
        text = page.read_text()
        assert blocks(page), page
        for skip in re.findall(r"<!-- docs-test: skip(.*?)-->", text):
            assert skip.strip(" ()"), f"{page.name}: a skipped block needs a reason"

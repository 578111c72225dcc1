"""The docs are executable: the README's tour and "Bring your own project" run as written, command by
command and in order, in an empty folder, with the `loopline` a user would have; the pages that continue
from the tour run as written in the tour's project; every other block of a page says why it cannot run
here."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from loopline.instance import Instance
from tests.conftest import clone_project, shared_once
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


def script(*pages: Path) -> str:
    """One bash script running the pages' blocks in turn; background jobs end with it."""
    lines = ["set -euo pipefail", "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT"]
    for lang, code in (block for page in pages for block in blocks(page)):
        if lang == "bash":
            lines.append(code)
        else:
            lines.append(f"python - <<'PYTHON'\n{code}\nPYTHON")
    return "\n".join(lines) + "\n"


def run_page(
    page: Path, folder: Path, timeout: float, *then: Path, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``page`` (and the pages ``then``) run in ``cwd`` (default ``folder``), with the virtual environment
    in ``folder/.venv`` as the README's two commands make it."""
    (folder / ".venv").symlink_to(Path(sys.executable).parents[1])  # as ./scripts/demo made it
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        # Servers of this test on ports of their own: other tests may be serving at the same time.
        "LOOPLINE_WORKSPACES__DEV__ENDPOINTS_URL": f"http://127.0.0.1:{free_port()}",
        "LOOPLINE_WORKSPACES__PROD__ENDPOINTS_URL": f"http://127.0.0.1:{free_port()}",
    }
    done = subprocess.run(
        ["bash", "-c", script(page, *then)],
        cwd=cwd or folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    names = ", ".join(p.name for p in (page, *then))
    assert done.returncode == 0, f"{names} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def said(done: subprocess.CompletedProcess[str], *, stderr: bool = False) -> str:
    """What the commands printed (on stdout, and with ``stderr`` there too), with the console's line wrapping
    undone."""
    return " ".join((done.stdout + (done.stderr if stderr else "")).split())


def tour(factory: pytest.TempPathFactory) -> Path:
    """The folder in which the README's tour ran as written, once for the whole run: ``churn`` as the tour
    leaves it, and what the tour printed in ``said.txt``."""

    def build(folder: Path) -> None:
        folder.mkdir()
        done = run_page(ROOT / "README.md", folder, timeout=600)
        (folder / "said.txt").write_text(said(done))

    return shared_once(factory, "readme-tour", "tour", build)


@pytest.mark.long
def test_the_readme_tour_runs_as_written(tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tour(tmp_path_factory)
    done = (folder / "said.txt").read_text()
    assert "is already registered (dev v2, registry v2); nothing to do" in done
    assert "rolled churn back" in done
    assert "200 from blue" in done  # the invoked endpoint answered
    assert (folder / "churn" / "request.json").is_file()


@pytest.mark.long
def test_bring_your_own_project_runs_as_written(tmp_path: Path) -> None:
    done = run_page(ROOT / "docs" / "bring-your-own-project.md", tmp_path, timeout=600)
    project = tmp_path / "churn-model"
    config = (project / "loopline.yaml").read_text()
    assert "command: python train.py" in config and "experiment: churn-experiments" in config
    assert "accuracy" in (project / "gate.yaml").read_text()
    assert "registered churn-model-model" in said(done)
    assert "Runs ranked by ranking.yaml" in said(done)  # what init wrote ranks the runs
    assert not (project / "mlruns").exists()
    # set up from a run made by hand, which init read rather than training again
    from_run = (tmp_path / "churn-hours" / "gate.yaml").read_text()
    assert "written from the training's run " in from_run and "accuracy" in from_run


@pytest.mark.long
def test_the_readme_init_writes_into_a_full_tier_project_runs_as_written(tmp_path: Path) -> None:
    """The project's own README (the full tier's holds every command of the other tiers' and more)."""
    import loopline

    project = tmp_path / "churn"
    loopline.init(project, "full")
    done = run_page(project / "README.md", tmp_path, timeout=600, cwd=project)
    shown = said(done)
    assert "registered churn-classifier from" in shown and "passed validation" in shown
    assert "released churn-classifier v1" in shown and shown.count('"predictions": [ 1, 1 ]') == 2
    served = {(e["workspace"], e["name"]): e["traffic"] for e in loopline.status(project).endpoints}
    assert served[("dev", "churn")] == {"blue": 100} and served[("prod", "churn")] == {
        next(iter(served[("prod", "churn")])): 100
    }


@pytest.mark.long
def test_the_sdk_page_runs_as_written_and_the_sdk_prints_nothing(tmp_path: Path) -> None:
    done = run_page(ROOT / "docs" / "sdk.md", tmp_path, timeout=600)
    assert done.stderr == "", f"the SDK printed:\n{done.stderr[-3000:]}"
    printed = said(done)
    assert "True registered churn-classifier from " in printed and "dev v1, registry v1 True" in printed
    assert "('shared', 'churn-classifier', 1, " in printed
    assert re.search(
        r"\{'C': [0-9.]+, 'max_iter': \d+\} registered churn-classifier from \w+: dev v2", printed
    )
    # ranked; the sweep's trials are, not their parent run (which holds best_log_loss, no log_loss)
    assert "[(1, '" in printed and "no log_loss" not in printed
    assert " gate-evaluated " in printed and " registered " in printed
    # the notebook's run went to dev's store, in the project's experiment
    settings = Instance.open(tmp_path / "churn").settings
    client = MlflowClient(settings.store("dev").tracking_uri)
    experiment = client.get_experiment_by_name(settings.experiment)
    assert experiment is not None
    logged = [run.data.params for run in client.search_runs([experiment.experiment_id], "params.C = '0.5'")]
    assert {"C": "0.5"} in logged, logged
    assert not (tmp_path / "mlruns").exists()


# The pages that continue from the tour: each runs whole in the tour's `churn` folder as the tour leaves it
# (simple tier; dev and the registry hold versions 1 and 2; prod serves 1 after the rollback, with 2 beside
# it at no traffic; no server running), with what its run must print.
FROM_THE_TOUR = {
    "docs/endpoints.md": (
        "200 from blue (model v1",
        '{"predictions":[',
        "churn-api: blue 90%, green 10%",
        "Deleted churn-api/green.",
        "churn-online dev",
        "new primary key: ll_",
    ),
    "docs/data-and-batch.md": (
        "heldout:1",
        "114 rows scored by blue (v1,",
        "keep label",
        "scorer scores with green (was blue)",
        "scorer scores with blue again (was green)",
        "churn-classifier@latest is version 2 in dev",
        "churn-batch: deployments batch-dp; default batch-dp",
    ),
    "docs/tiers.md": ("Tier simple → full", "Added workspaces: test"),
    "docs/workflows.md": (
        "already registered (dev v2, registry v2); nothing to do",
        "outer-loop-prod (workflow_dispatch) succeeded",
        "watched 50%",  # the canary's steps, each watched the workflow's input of a second
        "rolled churn back to churn-classifier v1",
        "model-rollback (workflow_dispatch) succeeded",
    ),
    "docs/notifications.md": (),
    "docs/security.md": ("checkpoint of event #", "audit log intact"),
}
# The workflows' own pages, one after another in one such folder (outer-loop-test is off in the simple
# tier; the release page releases the tour's second commit again, the rollback page goes back to its first).
WORKFLOW_PAGES = (
    "inner-loop",
    "python-ci",
    "outer-loop-test",
    "outer-loop-prod",
    "model-rollback",
    "monitoring",
)


@pytest.fixture
def toured(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the tour's `churn` as the tour leaves it."""
    return clone_project(tour(tmp_path_factory) / "churn", tmp_path / "churn")


@pytest.mark.parametrize("page", sorted(FROM_THE_TOUR))
def test_a_page_that_continues_from_the_tour_runs_as_written(page: str, toured: Path) -> None:
    done = said(run_page(ROOT / page, toured.parent, 300, cwd=toured), stderr=True)
    for expected in FROM_THE_TOUR[page]:
        assert expected in done, f"{page}: {expected!r} not in what it printed:\n{done[-3000:]}"


def test_the_workflow_pages_run_as_written_one_after_another(toured: Path) -> None:
    first, *rest = (ROOT / "docs" / "workflows" / f"{name}.md" for name in WORKFLOW_PAGES)
    done = said(run_page(first, toured.parent, 300, *rest, cwd=toured), stderr=True)
    for name in WORKFLOW_PAGES:
        assert re.search(rf"\b{name} \(\w+\) succeeded", done), f"{name}: {done[:3000]}"
    assert "released churn-classifier v2" in done and "watched 50%" in done
    assert "is already live in prod; nothing to do" in done  # the release event of the same commit
    assert "rolled churn back to churn-classifier v1" in done


def test_every_block_of_every_page_runs_in_a_test_or_says_why_not() -> None:
    running = {"README.md", "docs/bring-your-own-project.md", "docs/sdk.md", *FROM_THE_TOUR}
    running |= {f"docs/workflows/{name}.md" for name in WORKFLOW_PAGES}
    for page in sorted([ROOT / "README.md", *(ROOT / "docs").glob("**/*.md")]):
        name = page.relative_to(ROOT).as_posix()
        text = "\n" + page.read_text()
        for skip in re.findall(r"<!-- docs-test: skip(.*?)-->", text):
            assert skip.strip(" ()"), f"{name}: a skipped block needs a reason"
        if blocks(page):
            assert name in running, (
                f"{name} has blocks to run: run the page in a test, or skip each with a reason"
            )
        if name in running:
            assert blocks(page), f"{name} runs in a test but has no block to run"

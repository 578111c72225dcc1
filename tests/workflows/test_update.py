"""`loopline workflow update`: workflow files an older loopline wrote, brought to today's templates with the
team's edits kept, on real repositories and git's own merge."""

from __future__ import annotations

from dataclasses import replace
from importlib import resources
from pathlib import Path

import pytest
import yaml

import loopline
from loopline.workflows.files import DvcFetch, WorkflowLayout, WorkflowSetup, digest, fit, templates
from loopline.workflows.update import HISTORY
from tests.helpers import actionlint, cli, commit_all, git

PROD = ".github/workflows/outer-loop-prod.yml"
# The outer-loop-prod template loopline shipped before it listened to GitHub's `released`.
EARLIER = "f27f2ab03b0f3f71"


def earlier_template() -> str:
    return (
        resources.files("loopline") / "templates" / HISTORY / "outer-loop-prod" / f"{EARLIER}.yml"
    ).read_text()


def written_by_an_earlier_loopline(tmp_path: Path) -> Path:
    """A sample project whose outer-loop-prod file an earlier loopline wrote, committed."""
    project = loopline.init(tmp_path / "churn", "simple").path
    layout = WorkflowLayout(project, "", "churn")
    (project / PROD).write_text(fit("outer-loop-prod.yml", earlier_template(), layout, WorkflowSetup()))
    commit_all(project, "loopline init, by an earlier loopline")
    return project


TEAM_STEP = """\
      - name: Tell the team
        run: echo "releasing ${{ github.sha }}"
"""


def test_a_file_an_earlier_loopline_wrote_gets_today_s_template_and_keeps_the_team_s_edits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = written_by_an_earlier_loopline(tmp_path)
    text = (project / PROD).read_text()
    assert "types: [published]" in text and text.startswith(
        f"# Written by loopline from its template {EARLIER};"
    )
    anchor = "        run: loopline workflow enabled outer-loop-prod\n"
    (project / PROD).write_text(text.replace(anchor, anchor + TEAM_STEP, 1))
    commit_all(project, "Tell the team")

    checked = cli(capsys, "-C", str(project), "workflow", "update", "--check")
    assert checked.exit_code == 1, checked
    assert f"would be merged {PROD}" in checked.stdout and "would be" not in checked.stdout.replace(
        f"would be merged {PROD}", ""
    )
    assert git(project, "status", "--porcelain") == ""  # a check writes nothing

    done = cli(capsys, "-C", str(project), "workflow", "update")
    assert done.exit_code == 0, done
    assert f"merged {PROD}" in done.stdout and "unchanged .github/workflows/inner-loop.yml" in done.stdout
    merged = (project / PROD).read_text()
    document = yaml.safe_load(merged)
    assert document[True]["release"] == {"types": ["released"]}
    assert TEAM_STEP in merged and document["jobs"]["gate"]["steps"][-1]["name"] == "Tell the team"
    today = templates()["outer-loop-prod.yml"].decode()
    assert merged.startswith(f"# Written by loopline from its template {digest(today)};")
    assert git(project, "diff", "--name-only") == PROD
    assert actionlint(project) == ""
    commit_all(project, "loopline workflow update")

    again = cli(capsys, "-C", str(project), "workflow", "update", "--json")
    assert again.exit_code == 0
    assert {f["outcome"] for f in again.json()["files"]} == {"unchanged"}


def test_an_edit_of_the_lines_the_template_changes_is_marked_as_a_conflict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = written_by_an_earlier_loopline(tmp_path)
    text = (project / PROD).read_text()
    (project / PROD).write_text(text.replace("types: [published]", "types: [published, edited]"))
    refused = cli(capsys, "-C", str(project), "workflow", "update")
    assert refused.exit_code == 2  # uncommitted: the update's change would be mixed with it
    assert "commit or stash them first" in refused.stderr and "Traceback" not in refused.stderr
    commit_all(project, "Releases edited too")

    done = cli(capsys, "-C", str(project), "workflow", "update")
    assert done.exit_code == 1
    assert f"1 conflict(s) to resolve {PROD}" in done.stdout
    assert f"error: {PROD}: resolve the blocks between <<<<<<< and >>>>>>>" in done.stderr
    marked = (project / PROD).read_text()
    ours, theirs = marked.split("<<<<<<< yours\n", 1)[1].split("\n=======\n", 1)
    assert "types: [published, edited]" in ours and "types: [released]" in theirs.split(">>>>>>>")[0]


def test_a_file_written_before_files_named_their_template_is_taken_as_first_committed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = loopline.init(tmp_path / "churn", "simple").path
    folder = project / ".github" / "workflows"
    for path in folder.iterdir():  # as loopline wrote them before their first line named the template
        path.write_text(path.read_text().split("\n", 1)[1])
    (project / PROD).write_text(earlier_template())
    (folder / "monitoring.yml").unlink()
    commit_all(project, "loopline init, long ago")
    ci = folder / "python-ci.yml"
    ci.write_text(
        ci.read_text().replace("python -m ruff check .", "python -m ruff check --output-format=github .")
    )
    commit_all(project, "Annotate lint findings")

    done = cli(capsys, "-C", str(project), "workflow", "update", "--json")
    assert done.exit_code == 0, done
    outcomes = {f["file"].rsplit("/", 1)[1]: f["outcome"] for f in done.json()["files"]}
    assert outcomes == {
        "inner-loop.yml": "updated",
        "python-ci.yml": "merged",
        "outer-loop-test.yml": "updated",
        "outer-loop-prod.yml": "updated",
        "model-rollback.yml": "updated",
        "monitoring.yml": "created",  # never in the repository: a workflow this loopline adds
    }
    assert "ruff check --output-format=github ." in ci.read_text()
    assert "types: [released]" in (project / PROD).read_text()
    commit_all(project, "loopline workflow update")
    (folder / "monitoring.yml").unlink()
    commit_all(project, "No monitoring here")
    assert cli(capsys, "-C", str(project), "workflow", "update", "--check").exit_code == 0  # left deleted


def test_each_template_loopline_shipped_is_kept_by_its_digest() -> None:
    """A changed template must leave the one it replaces in templates/workflow-history/, or a file made from
    that one could not be updated."""
    root = resources.files("loopline") / "templates" / HISTORY
    listed = dict(line.split() for line in (root / "current.txt").read_text().splitlines())
    today = {name.removesuffix(".yml"): digest(t.decode()) for name, t in templates().items()}
    for name, shipped in listed.items():
        assert today[name] == shipped, (
            f"the {name} template changed: copy the one shipped (git show HEAD:src/loopline/templates/"
            f"workflows/{name}.yml) to templates/{HISTORY}/{name}/{shipped}.yml, and list {today[name]} in "
            "current.txt"
        )
    assert set(listed) == set(today)
    for folder in (f for f in root.iterdir() if f.is_dir()):
        for kept in folder.iterdir():
            assert kept.name == f"{digest(kept.read_text())}.yml", kept.name


@pytest.mark.parametrize("folder", ["", "ml/churn"])
def test_how_a_file_fits_its_repository_is_read_back_from_it(folder: str) -> None:
    """The install command, Python, branch, lint, Git LFS and DVC a file was fitted with make it again, so
    an update changes only what the template changed."""
    from loopline.workflows.files import CRITICAL_LINT
    from loopline.workflows.update import setup_of

    layout = WorkflowLayout(Path("/repository"), folder, "churn")
    fitted = WorkflowSetup(
        branch="develop",
        python="3.12",
        install="pip install uv && uv export --frozen --no-hashes > /tmp/r.txt && pip install -r /tmp/r.txt",
        lint=CRITICAL_LINT,
        lfs=True,
        dvc=DvcFetch("dvc[s3]", ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")),
    )
    for setup in (WorkflowSetup(), fitted):
        for name, template in templates().items():
            text = fit(name, template.decode(), layout, setup)
            assert fit(name, template.decode(), layout, setup_of(text, "main")) == text, name
    edited = fit("inner-loop.yml", templates()["inner-loop.yml"].decode(), layout, fitted)
    edited = edited.replace('branches: ["develop"]', "branches: [develop, 'release/*']")
    assert setup_of(edited.replace("dvc[s3]", "'dvc[s3]"), "main").branch == "develop"  # never a traceback
    earlier = edited.replace("dvc pull --allow-missing", "dvc pull")  # as an earlier loopline wrote it
    assert earlier != edited and setup_of(earlier, "main").dvc == replace(fitted.dvc, allow_missing=False)


def test_an_earlier_loopline_s_plain_dvc_pull_becomes_today_s_and_the_team_s_edits_stay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = loopline.init(tmp_path / "churn", "simple").path
    inner = project / ".github" / "workflows" / "inner-loop.yml"
    earlier = WorkflowSetup(dvc=DvcFetch("dvc[s3]", ("AWS_ACCESS_KEY_ID",), allow_missing=False))
    text = fit(
        "inner-loop.yml",
        templates()["inner-loop.yml"].decode(),
        WorkflowLayout(project, "", "churn"),
        earlier,
    )
    assert "&& dvc pull\n" in text
    anchor = "          AWS_ACCESS_KEY_ID: ${{ secrets.AWS_ACCESS_KEY_ID }}\n"
    inner.write_text(text.replace(anchor, anchor + TEAM_STEP, 1))
    commit_all(project, "An earlier loopline's files, with the team's step")

    done = cli(capsys, "-C", str(project), "workflow", "update")
    assert done.exit_code == 0, done
    assert "merged .github/workflows/inner-loop.yml" in done.stdout, done.stdout
    updated = inner.read_text()
    assert "        run: pip install 'dvc[s3]' && dvc pull --allow-missing\n" in updated
    assert anchor + TEAM_STEP in updated and "&& dvc pull\n" not in updated
    commit_all(project, "loopline workflow update")
    again = cli(capsys, "-C", str(project), "workflow", "update", "--json")
    assert {f["outcome"] for f in again.json()["files"]} == {"unchanged"}


def test_a_project_in_a_folder_of_its_repository_is_updated_in_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    top = tmp_path / "monorepo"
    top.mkdir()
    git(top, "init", "--quiet", "--initial-branch=main")
    project = loopline.init(top / "ml" / "churn", "simple").path
    commit_all(top, "churn")
    done = cli(capsys, "-C", str(project), "workflow", "update", "--json")
    assert done.exit_code == 0, done
    files = done.json()["files"]
    assert {f["outcome"] for f in files} == {"unchanged"}
    assert {f["file"] for f in files} >= {".github/workflows/churn-inner-loop.yml"}


def test_a_file_from_a_template_this_loopline_does_not_know_is_left_as_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = loopline.init(tmp_path / "churn", "simple").path
    text = (project / PROD).read_text().split("\n", 1)[1]
    newer = f"# Written by loopline from its template {'0' * 16}; by a newer loopline.\n{text}"
    (project / PROD).write_text(newer.replace("name: Release to prod", "name: Release it"))
    commit_all(project, "Set up by a newer loopline, then edited")
    done = cli(capsys, "-C", str(project), "workflow", "update")
    assert done.exit_code == 1
    said = " ".join(done.stdout.split())  # as one line, whatever the width the console wraps at
    assert f"unknown base {PROD} (made from a template (0000000000000000) this loopline does not know" in said
    assert done.stderr.strip() == f"error: {PROD}: not updated, as said above"
    assert (project / PROD).read_text() == newer.replace("name: Release to prod", "name: Release it")

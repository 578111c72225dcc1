"""The workflow files: identical in every tier, clean under actionlint, switched by the tier."""

from __future__ import annotations

from pathlib import Path

import pytest

import loopline
from loopline.errors import Refused, UsageError
from tests.conftest import ProjectFactory
from tests.helpers import actionlint, cli, commit_all, company_repository, git

WORKFLOWS = [
    "inner-loop.yml",
    "model-rollback.yml",
    "monitoring.yml",
    "outer-loop-prod.yml",
    "outer-loop-test.yml",
    "python-ci.yml",
]


def files(project: Path) -> dict[str, bytes]:
    folder = project / ".github" / "workflows"
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_init_writes_the_same_six_files_in_every_tier(tmp_path: Path) -> None:
    written = {
        tier: files(loopline.init(tmp_path / tier, tier).path)
        for tier in ("experimentation", "simple", "full")
    }
    assert list(written["full"]) == WORKFLOWS
    assert written["experimentation"] == written["simple"] == written["full"]


def test_the_files_pass_actionlint_with_no_findings(tmp_path: Path) -> None:
    project = loopline.init(tmp_path / "p", "full").path
    assert actionlint(project) == ""


def test_the_triggers_are_those_of_the_product(tmp_path: Path) -> None:
    import yaml

    project = loopline.init(tmp_path / "p", "simple").path
    on = {
        name: yaml.load((project / ".github" / "workflows" / name).read_text(), Loader=yaml.BaseLoader)["on"]
        for name in WORKFLOWS
    }
    # The merge queue registers before the merge; a push to main registers where there is no queue.
    assert on["inner-loop.yml"] == {
        "merge_group": "",
        "push": {"branches": ["main"]},
        "workflow_dispatch": "",
    }
    assert set(on["python-ci.yml"]) == {"pull_request", "push"}
    # Test follows the inner loop of a push to main, so the merged commit's version exists by then.
    assert on["outer-loop-test.yml"] == {
        "workflow_run": {"workflows": ["inner-loop"], "types": ["completed"], "branches": ["main"]}
    }
    assert set(on["outer-loop-prod.yml"]) == {"release", "workflow_dispatch"}
    # GitHub's `published` fires for a pre-release (v1.3.0-rc1) and not when it is made a release later;
    # `released` fires for a release published at once or from a draft and for a pre-release made one.
    assert on["outer-loop-prod.yml"]["release"] == {"types": ["released"]}
    assert (
        "if"
        not in yaml.safe_load((project / ".github/workflows/outer-loop-prod.yml").read_text())["jobs"]["gate"]
    )
    assert set(on["monitoring.yml"]) == {"schedule", "workflow_dispatch"}
    rollback = on["model-rollback.yml"]["workflow_dispatch"]["inputs"]
    assert rollback["commit"]["required"] == "true" and rollback["reason"]["required"] == "false"


def test_prod_jobs_are_bound_to_the_prod_environment_and_never_cancel_one_another(tmp_path: Path) -> None:
    import yaml

    project = loopline.init(tmp_path / "p", "full").path
    groups = []
    for name in ("outer-loop-prod.yml", "model-rollback.yml", "monitoring.yml"):
        document = yaml.safe_load((project / ".github" / "workflows" / name).read_text())
        # GitHub cancels a run waiting in a group when another run of the group is queued: a rollback
        # waiting behind a release must not be cancelled by the hourly monitoring run, nor a release by it.
        assert document["concurrency"]["cancel-in-progress"] is False
        groups.append(document["concurrency"]["group"])
        assert document["permissions"] == {"contents": "read"}
        jobs = [job for job_id, job in document["jobs"].items() if job_id != "gate"]
        assert all(job["environment"] == "prod" for job in jobs)
        # Only the release reads its run's deployment reviews (an approval of the prod environment).
        wider = {"contents": "read", "actions": "read"} if name == "outer-loop-prod.yml" else None
        assert all(job.get("permissions") == wider for job in jobs)
    assert len(set(groups)) == len(groups), groups  # loopline's lock serialises them instead
    # Each commit's registration and validation have a group of their own: a third merge in a row must not
    # cancel the second one's, waiting behind the first.
    for name, commit in (
        ("inner-loop.yml", "github.sha"),
        ("outer-loop-test.yml", "github.event.workflow_run.head_sha"),
    ):
        document = yaml.safe_load((project / ".github" / "workflows" / name).read_text())
        assert document["concurrency"]["group"].endswith(f"-${{{{ {commit} }}}}"), document["concurrency"]


def test_python_ci_runs_the_project_s_code_without_any_store_credential(tmp_path: Path) -> None:
    """Its tests are a pull request's code: with the stores' secrets in its environment, any test could
    read prod's database URL or the object store's key. The other workflows map them at their top."""
    import yaml

    project = loopline.init(tmp_path / "p", "full").path
    folder = project / ".github" / "workflows"
    text = (folder / "python-ci.yml").read_text()
    assert "secrets." not in text, text
    assert yaml.safe_load(text)["env"] == {"PYTHONUNBUFFERED": "1"}
    inner = yaml.safe_load((folder / "inner-loop.yml").read_text())["env"]
    assert inner["LOOPLINE_TOKEN"] == "${{ secrets.LOOPLINE_TOKEN }}"


def test_the_jobs_that_look_back_through_history_check_out_all_of_it(tmp_path: Path) -> None:
    """actions/checkout fetches one commit (and no tag) unless told otherwise; the inner loop
    (training.paths), the outer loops and rollback (a commit without a version takes its ancestor's; a tag
    names a commit) compare a commit with its ancestors."""
    import yaml

    project = loopline.init(tmp_path / "p", "full").path
    looking_back = set()
    for name in WORKFLOWS:
        document = yaml.safe_load((project / ".github" / "workflows" / name).read_text())
        for job_id, job in document["jobs"].items():
            runs = " ".join(str(step.get("run", "")) for step in job["steps"])
            checkout = next(
                step for step in job["steps"] if str(step.get("uses")).startswith("actions/checkout")
            )
            full = checkout.get("with", {}).get("fetch-depth") == 0
            if any(f"loopline {verb}" in runs for verb in ("inner-loop", "outer-loop", "rollback")):
                looking_back.add(name)
                assert full, f"{name}: job {job_id}"
            else:
                assert not full, f"{name}: job {job_id} needs no history"
    assert looking_back == {
        "inner-loop.yml",
        "outer-loop-test.yml",
        "outer-loop-prod.yml",
        "model-rollback.yml",
    }


def test_python_ci_passes_a_project_without_tests_yet_and_fails_a_failing_test(
    new_project: ProjectFactory,
) -> None:
    project = new_project("experimentation")
    git(project, "rm", "-r", "--quiet", "tests")
    commit_all(project, "No tests yet")
    run = loopline.workflow_run("python-ci", event="push", project=project)
    assert run.succeeded, [job.to_dict() for job in run.jobs]
    (project / "tests").mkdir()
    (project / "tests" / "test_model.py").write_text("def test_the_model():\n    assert 1 + 1 == 3\n")
    commit_all(project, "A failing test")
    failed = loopline.workflow_run("python-ci", event="push", project=project)
    steps = {step.id: step.status for job in failed.jobs for step in job.steps}
    assert not failed.succeeded and steps["lint"] == "success" and steps["test"] == "failure"


@pytest.mark.parametrize(
    ("tier", "on"),
    [
        ("experimentation", {"inner-loop", "python-ci"}),
        ("simple", {"inner-loop", "python-ci", "outer-loop-prod", "model-rollback", "monitoring"}),
        (
            "full",
            {"inner-loop", "python-ci", "outer-loop-prod", "model-rollback", "outer-loop-test", "monitoring"},
        ),
    ],
)
def test_workflow_enabled_answers_for_each_tier(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    tier: str,
    on: set[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project = loopline.init(tmp_path / "p", tier).path
    outputs = tmp_path / "outputs"
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    for name in (w.removesuffix(".yml") for w in WORKFLOWS):
        result = cli(capsys, "workflow", "enabled", name, "-C", str(project), "--json")
        assert result.exit_code == 0
        assert result.json()["enabled"] == (name in on)
    lines = outputs.read_text().splitlines()
    assert [line for line in lines if line.startswith("enabled=")] == [
        f"enabled={str(w.removesuffix('.yml') in on).lower()}" for w in WORKFLOWS
    ]


def test_dropping_a_workspace_that_serves_traffic_is_refused(trained_project: ProjectFactory) -> None:
    project = trained_project("simple")
    loopline.outer_loop_prod(project)
    before = files(project)
    with pytest.raises(Refused, match="workspace prod still serves traffic on endpoint 'proj'"):
        loopline.set_tier("experimentation", project=project)
    assert "tier: simple" in (project / "loopline.yaml").read_text()
    loopline.delete_endpoint("proj", force=True, project=project)
    change = loopline.set_tier("experimentation", project=project)
    assert change.dropped == ("prod",)
    assert files(project) == before
    commit_all(project, "Down to experimentation")


def test_a_project_in_a_folder_of_a_repository_has_its_workflows_at_the_top_and_they_run(
    tmp_path: Path,
) -> None:
    """GitHub reads workflows only at the top of a repository: a project in ml/churn gets them there,
    named after it, running in its folder; the local runner runs them the same way."""
    import yaml

    top = company_repository(tmp_path)
    git(top, "branch", "-m", "master")  # the company's merges land on master
    result = loopline.init(top / "ml" / "churn", "simple")
    project = result.path
    assert not (project / ".github").exists()
    assert sorted(p.name for p in (top / ".github" / "workflows").iterdir()) == [
        f"churn-{n}" for n in WORKFLOWS
    ]
    assert "../../.github/workflows/churn-inner-loop.yml" in result.files
    plain = files(loopline.init(tmp_path / "alone", "simple").path)
    for name in WORKFLOWS:
        document = yaml.load(
            (top / ".github" / "workflows" / f"churn-{name}").read_text(), Loader=yaml.BaseLoader
        )
        original = yaml.load(plain[name], Loader=yaml.BaseLoader)
        assert document["defaults"] == {"run": {"working-directory": "ml/churn"}}
        assert document["name"] == f"churn {original['name']}"
        assert document["jobs"].keys() == original["jobs"].keys()
        groups = [document.get("concurrency"), *(job.get("concurrency") for job in document["jobs"].values())]
        for group in filter(None, groups):  # two projects' runs never cancel or queue behind each other
            assert group["group"].startswith("churn-"), group
    ci = yaml.load(
        (top / ".github" / "workflows" / "churn-python-ci.yml").read_text(), Loader=yaml.BaseLoader
    )
    paths = ["ml/churn/**", ".github/workflows/churn-python-ci.yml"]
    assert ci["on"] == {"pull_request": {"paths": paths}, "push": {"paths": paths}}
    test = yaml.load(
        (top / ".github/workflows/churn-outer-loop-test.yml").read_text(), Loader=yaml.BaseLoader
    )
    assert test["on"]["workflow_run"] == {
        "workflows": ["churn inner-loop"],  # the inner loop's name in this repository
        "types": ["completed"],
        "branches": ["master"],
    }
    inner = yaml.load((top / ".github/workflows/churn-inner-loop.yml").read_text(), Loader=yaml.BaseLoader)
    assert inner["name"] == "churn inner-loop" and inner["on"]["push"] == {"branches": ["master"]}
    config = yaml.safe_load((project / "loopline.yaml").read_text())
    assert config["registry"]["attestation"]["workflow"] == ".github/workflows/churn-inner-loop.yml"
    assert actionlint(top) == ""

    # A second project of the same name elsewhere in the repository would overwrite them: refused first.
    with pytest.raises(UsageError, match=r"has \.github/workflows/churn-inner-loop\.yml, .* already"):
        loopline.init(top / "research" / "churn", "simple")
    assert not (top / "research").exists()

    loopline.up(project)
    commit_all(top, "Churn model")
    run = loopline.workflow_run("inner-loop", event="merge_group", project=project)
    assert run.succeeded and run.workflow == "churn inner-loop"
    assert run.jobs[-1].outputs["registered"] == "true"
    assert [m.version for m in loopline.status(project).models if m.workspace == "dev"] == [1]


def test_outer_loop_test_runs_only_after_a_successful_inner_loop_of_a_push(tmp_path: Path) -> None:
    import yaml

    from loopline.workflows.expressions import evaluate, truthy

    project = loopline.init(tmp_path / "p", "full").path
    document = yaml.safe_load((project / ".github" / "workflows" / "outer-loop-test.yml").read_text())
    condition = document["jobs"]["gate"]["if"]

    def runs(conclusion: str, event: str) -> bool:
        run = {"conclusion": conclusion, "event": event, "head_sha": "f" * 40}
        return truthy(evaluate(condition, {"github": {"event": {"workflow_run": run}}}))

    assert runs("success", "push")
    assert not runs("failure", "push")  # the gate failed: nothing to validate
    assert not runs("success", "pull_request")  # a pull request's run, a fork's branch named main included
    assert not runs("success", "merge_group")  # the push that follows the queue brings it here

"""Training jobs and batch scoring on a real local Ray cluster, against the local executor."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pandas as pd
import pytest
from ray.job_submission import JobStatus, JobSubmissionClient

import loopline
from loopline.compute import ray_jobs as ray_jobs_module
from loopline.compute.chunks import part_name, plan
from loopline.compute.ray_batch import score_on_ray
from loopline.compute.targets import resolve
from loopline.config import load_config
from loopline.errors import ComputeFailed, UsageError
from loopline.instance import Instance
from tests.batch.test_jobs import big_csv, predictions
from tests.compute.conftest import Cluster
from tests.conftest import ProjectFactory
from tests.helpers import TRAINING_SCRIPTS, cli_process, commit_all, company_repository, edit_yaml, use_script

pytestmark = [pytest.mark.slow, pytest.mark.cluster]

SLOW_TRAIN = """\
import time

print("training started", flush=True)
time.sleep(300)
"""


def on_ray(project: Path, cluster: Cluster, **settings: object) -> None:
    """Name the cluster ``lab`` in the project's compute targets, and commit."""
    target = {"kind": "ray", "address": cluster.address, **settings}
    edit_yaml(project / "loopline.yaml", compute={"default": "local", "targets": {"lab": target}})
    commit_all(project, "A Ray cluster to train and score on")


def ray_jobs(cluster: Cluster) -> list[object]:
    return [job for job in JobSubmissionClient(cluster.address).list_jobs() if job.metadata.get("loopline")]


def shares_code(top: Path, project: Path) -> None:
    """Make the training of ``project`` (in a folder of the repository ``top``) import the repository's
    shared code, as monorepo trainings do, and name it in training.paths."""
    (top / "common").mkdir()
    (top / "common" / "features.py").write_text('VERSION = "features-2"\n')
    train = (project / "train.py").read_text()
    here = "HERE = Path(__file__).resolve().parent\n"
    shared = "sys.path.insert(0, str(HERE.parents[1]))\nfrom common import features  # noqa: E402\n"
    train = train.replace(here, f"{here}{shared}").replace("import json\n", "import json\nimport sys\n", 1)
    train = train.replace(
        "        mlflow.log_params(params)\n",
        '        mlflow.log_params(params)\n        mlflow.set_tag("features", features.VERSION)\n',
    )
    (project / "train.py").write_text(train)
    training = load_config(project).config.training
    edit_yaml(
        project / "loopline.yaml", training={"command": training.command, "paths": [".", "../../common"]}
    )


def test_training_on_ray_registers_the_same_kind_of_version_as_a_local_run(
    tmp_path: Path, ray_cluster: Cluster
) -> None:
    """Of a project in a folder of a larger repository whose training imports the repository's shared
    code: the job gets that code in its place, as a local run has it."""
    top = company_repository(tmp_path)
    project = loopline.init(top / "ml" / "churn", "simple").path
    shares_code(top, project)
    loopline.up(project)
    on_ray(project, ray_cluster)
    before = len(ray_jobs(ray_cluster))
    result = loopline.inner_loop(project, compute="lab")
    assert result.created and result.trained and result.dev.version == 1 and result.shared.version == 1
    instance = Instance.open(project)
    run = instance.store("dev").run(result.run_id)
    # the run carries loopline's tags, set on the cluster by loopline's MLflow plugin, as a local run does
    assert run.tags["mlflow.source.git.commit"] == result.git_commit
    assert run.tags["loopline.session"] and run.status == "FINISHED"
    assert run.tags["features"] == "features-2"  # the repository's shared code, at the commit
    assert result.dev.provenance == "built-here" and result.dev.git_commit == result.git_commit
    assert result.log_path is not None and "Running entrypoint for job" in Path(result.log_path).read_text()
    jobs = ray_jobs(ray_cluster)
    assert len(jobs) == before + 1 and jobs[-1].status == JobStatus.SUCCEEDED
    # The log came over Ray's log tail: nothing lost, nothing repeated.
    client = JobSubmissionClient(ray_cluster.address)
    assert Path(result.log_path).read_text() == client.get_job_logs(jobs[-1].submission_id)
    # once per commit: a rerun registers nothing and submits no job
    again = loopline.inner_loop(project, compute="lab")
    assert not again.created and not again.trained and again.dev.version == 1
    assert len(ray_jobs(ray_cluster)) == before + 1


def test_a_training_on_ray_reads_its_data_assets_among_the_job_s_files(
    tmp_path: Path, ray_cluster: Cluster
) -> None:
    from tests.test_inputs import project_reading, rows, trained_on

    project = project_reading(tmp_path)  # python train.py --data {inputs.train}; train: rows
    loopline.upload_data("rows", rows(tmp_path, 300), project=project)
    with (project / ".gitignore").open("a") as ignored:  # as projects keep their data out of git
        ignored.write("*.csv\n")
    on_ray(project, ray_cluster)
    result = loopline.inner_loop(project, compute="lab")
    assert result.created and result.trained
    assert trained_on(project, 1)["train"].startswith("rows:1 sha256:")
    # the copy went with the job's files; the command and LOOPLINE_INPUTS name it there
    assert result.log_path is not None
    said = Path(result.log_path).read_text()
    assert "rows 300 inputs {'train': '.loopline-inputs/train/train.csv'}" in said
    assert "RAY_RUNTIME_ENV_IGNORE_GITIGNORE" not in os.environ  # set only while the job's files are packed


class BrokenTail(JobSubmissionClient):  # type: ignore[misc]
    """A real client whose log tail breaks after its first chunk, as a dropped connection does."""

    async def tail_job_logs(self, job_id: str) -> AsyncIterator[str]:
        async for chunk in super().tail_job_logs(job_id):
            yield chunk
            raise RuntimeError("WebSocket connection closed unexpectedly")


def test_a_job_log_whose_stream_breaks_is_read_to_its_end_by_polling(
    ray_cluster: Cluster, tmp_path: Path
) -> None:
    client = BrokenTail(ray_cluster.address)
    script = "import time\nfor i in range(300):\n    print(f'line {i}', flush=True)\n    time.sleep(0.005)\n"
    job_id = client.submit_job(entrypoint=f"python -c {shlex.quote(script)}")
    seen: list[str] = []
    with (tmp_path / "job.log").open("w") as log:
        status = ray_jobs_module._follow(client, job_id, log, seen.append, timeout=120)
    assert status == JobStatus.SUCCEEDED
    whole = client.get_job_logs(job_id)
    assert (tmp_path / "job.log").read_text() == whole
    assert seen == whole.splitlines() and [x for x in seen if x.startswith("line ")] == [
        f"line {i}" for i in range(300)
    ]


def test_a_sweep_on_ray_trains_each_trial_as_a_job_with_its_own_values_and_stops_a_pruned_one(
    new_project: ProjectFactory, ray_cluster: Cluster
) -> None:
    project = new_project("simple", "swept", commit=False)
    # The epoch-by-epoch script, reading its label noise from the trial's params.yaml.
    source = (TRAINING_SCRIPTS / "epochs.py").read_text()
    flag = 'parser.add_argument("--noise", type=float, default=0.0, help="share of training labels flipped")'
    assert flag in source
    from_file = (
        'parser.add_argument("--noise", type=float, default=yaml.safe_load(open("params.yaml"))["noise"])'
    )
    source = source.replace(flag, from_file).replace("import time\n", "import time\n\nimport yaml\n", 1)
    edit_yaml(project / "params.yaml", noise=0.0)
    use_script(project, "epochs.py", {"accuracy": {"min": 0.8}}, source=source)
    edit_yaml(
        project / "loopline.yaml",
        sweep={
            "trials": 2, "seed": 10, "objective": {"metric": "accuracy"},
            "parameters": {"noise": {"choices": [0.0, 0.45]}},
            "command": "python epochs.py --epochs 12",
            "pruning": {"startup_trials": 1, "warmup_steps": 1},
        },
    )  # fmt: skip
    on_ray(project, ray_cluster)
    before = len(ray_jobs(ray_cluster))

    result = loopline.sweep(project, compute="lab")

    states = {t.number: (t.params["noise"], t.state) for t in result.trials}
    assert states == {0: (0.0, "complete"), 1: (0.45, "pruned")}
    jobs = sorted(ray_jobs(ray_cluster), key=lambda job: job.start_time or 0)[before:]  # type: ignore[attr-defined]
    assert [job.status for job in jobs] == [JobStatus.SUCCEEDED, JobStatus.STOPPED]
    runs = Instance.open(project).store("dev").search_all_runs(f"tags.`loopline.sweep` = '{result.study}'")
    trial_runs = {run.tags["loopline.sweep_trial"]: run for run in runs if "loopline.sweep_trial" in run.tags}
    for trial in result.trials:  # the values went to the cluster over the job's copy of params.yaml
        assert float(trial_runs[str(trial.number)].params["noise"]) == trial.params["noise"]
    assert trial_runs["1"].status == "FAILED" and "pruned at step" in (result.trials[1].note or "")
    assert result.best is not None and result.best.params == {"noise": 0.0}
    assert result.inner_loop.created and result.inner_loop.run_id == result.best.run_id


def test_interrupting_or_killing_loopline_stops_the_ray_job(
    new_project: ProjectFactory, ray_cluster: Cluster
) -> None:
    project = new_project("simple", "slow")
    (project / "slow_train.py").write_text(SLOW_TRAIN)
    edit_yaml(project / "loopline.yaml", **{"training": {"command": "python slow_train.py"}})
    on_ray(project, ray_cluster)
    client = JobSubmissionClient(ray_cluster.address)
    for stop in (signal.SIGINT, signal.SIGKILL):
        known = {job.submission_id for job in ray_jobs(ray_cluster)}
        child = subprocess.Popen(
            [str(Path(sys.executable).with_name("loopline")), "inner-loop", "--compute", "lab"],
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert child.stdout is not None
        for line in child.stdout:  # the script runs on the cluster, its output streamed back
            if "training started" in line:
                break
        job = next(job for job in ray_jobs(ray_cluster) if job.submission_id not in known)
        assert client.get_job_status(job.submission_id) == JobStatus.RUNNING
        child.send_signal(stop)
        child.wait(timeout=60)
        deadline = time.monotonic() + 60
        while client.get_job_status(job.submission_id) != JobStatus.STOPPED and time.monotonic() < deadline:
            time.sleep(0.5)
        assert client.get_job_status(job.submission_id) == JobStatus.STOPPED, stop


def test_a_cluster_on_another_machine_is_refused_while_dev_is_a_local_file(
    new_project: ProjectFactory,
) -> None:
    project = new_project("simple")
    target = {"kind": "ray", "address": "http://10.0.0.7:8265"}
    edit_yaml(project / "loopline.yaml", compute={"default": "local", "targets": {"far": target}})
    commit_all(project, "A remote cluster")
    with pytest.raises(UsageError, match="compute target 'far' is another machine, and dev's MLflow store"):
        loopline.inner_loop(project, compute="far")
    unknown = cli_process("inner-loop", "--compute", "nowhere", cwd=project)
    assert unknown.exit_code == 2
    assert "--compute names 'nowhere', which is not a compute target (known: local, far)" in unknown.stderr


@pytest.fixture
def scored_on_ray(trained_project: ProjectFactory, ray_cluster: Cluster) -> Path:
    project = trained_project("simple")
    edit_yaml(project / "loopline.yaml", batch={"chunk_rows": 10_000, "max_chunk_mb": 64})
    on_ray(project, ray_cluster, workers=2)
    big_csv(project, project / ".loopline" / "datastores" / "inbox" / "big")
    loopline.register_data("big", "inbox://big", project=project)
    loopline.create_batch_endpoint("scorer", "dev", project=project)
    loopline.create_batch_deployment("scorer", "local", version=1, project=project)
    loopline.create_batch_deployment("scorer", "ray", version=1, compute="lab", project=project)
    return project


def output_of(project: Path, job_id: str) -> Path:
    return project / ".loopline" / "datastores" / "predictions" / "scorer" / job_id


def test_a_batch_job_on_ray_killed_midway_resumes_to_the_local_output_row_for_row(
    scored_on_ray: Path,
) -> None:
    project = scored_on_ray
    # the parts carry an input column beside the answers, on Ray as here
    kept = str(pd.read_csv(project / "data" / "inbox" / "heldout.csv", nrows=0).columns[0])
    here = loopline.batch_invoke("scorer", "big", keep=[kept], project=project)
    expected = predictions(output_of(project, here.id))
    assert here.compute == "local" and expected["row"].tolist() == list(range(60_000))
    assert expected.columns[:2].tolist() == ["row", kept]
    # on the deployment's target (lab); the driver dies once the first part is recorded
    crashed = cli_process(
        "batch",
        "invoke",
        "scorer",
        "--input",
        "big",
        "--deployment",
        "ray",
        "--keep",
        kept,
        cwd=project,
        env={"LOOPLINE_FAILPOINT": "batch-after-chunk"},
    )
    assert crashed.exit_code == 137, crashed.stderr
    job = loopline.batch_jobs("scorer", project=project)[0]
    assert job.status == "failed" and job.compute == "lab" and job.chunks_done == 1
    folder = output_of(project, job.id)
    assert not (folder / "_lineage.json").exists()
    # resumed where it ran: only the missing parts are scored, and the output is the local one
    resumed = cli_process("batch", "job", "resume", job.id, "--json", cwd=project)
    assert resumed.exit_code == 0, resumed.stderr
    assert resumed.json()["status"] == "succeeded" and resumed.json()["compute"] == "lab"
    pd.testing.assert_frame_equal(predictions(folder), expected)
    local, ray = (
        json.loads((output_of(project, j) / "_lineage.json").read_text()) for j in (here.id, job.id)
    )
    assert (ray["compute"], ray["chunks"], ray["parts"]) == ("lab", local["chunks"], local["parts"])
    assert ray["chunks"] == 6 and ray["rows"] == 60_000 and ray["input"] == local["input"]


def test_a_batch_job_on_ray_refused_by_the_model_says_why_as_a_local_one_does(scored_on_ray: Path) -> None:
    project = scored_on_ray
    data = big_csv(project, project / ".loopline" / "datastores" / "inbox" / "holes")
    rows = pd.read_csv(data)
    rows.loc[31_415, rows.columns[2]] = None
    rows.to_csv(data, index=False)
    loopline.register_data("holes", "inbox://holes", project=project)
    reason = f"column '{rows.columns[2]}' row 31,415 is null, and the model requires a value there"
    for deployment in ("local", "ray"):
        failed = cli_process(
            "batch", "invoke", "scorer", "--input", "holes", "--deployment", deployment, cwd=project
        )
        assert (failed.exit_code, failed.stderr.splitlines()[-1]) == (1, f"error: {reason}"), failed.stderr
        job = loopline.batch_jobs("scorer", project=project)[0]
        assert (job.status, job.error, job.deployment) == ("failed", reason, deployment)


def test_a_folder_written_partitioned_is_scored_on_ray_as_here(scored_on_ray: Path) -> None:
    project = scored_on_ray
    rows = pd.read_csv(project / "data" / "inbox" / "heldout.csv").drop(columns=["label"])
    rows["region"] = (["north", "south", "east"] * len(rows))[: len(rows)]
    rows.to_parquet(project / ".loopline" / "datastores" / "inbox" / "regions", partition_cols=["region"])
    loopline.register_data("regions", "inbox://regions", project=project)
    outputs = []
    for deployment in ("local", "ray"):
        job = loopline.batch_invoke(
            "scorer", "regions", deployment=deployment, keep=["region"], project=project
        )
        assert job.status == "succeeded" and job.rows == len(rows), job.error
        outputs.append(predictions(output_of(project, job.id)))
    pd.testing.assert_frame_equal(*outputs)
    assert outputs[0]["region"].tolist() == sorted(rows["region"])  # file by file: east, north, south


def test_a_part_the_ray_job_announced_but_did_not_leave_is_never_taken_as_scored(
    scored_on_ray: Path, tmp_path: Path
) -> None:
    project = scored_on_ray
    instance = Instance.open(project)
    inbox, predictions_store = instance.datastore("inbox"), instance.datastore("predictions")
    deployment = next(d for d in loopline.get_batch_endpoint("scorer", project=project).deployments)
    chunks = plan(inbox, inbox.files("big"), 10_000)
    lost: list[int] = []

    def landed(index: int, rows: int, size: int) -> None:  # the part goes missing after it was announced
        if not lost:
            (output_of(project, "lost").parent.parent / part_name("lost", index)).unlink()
            lost.append(index)

    with pytest.raises(ComputeFailed, match=r"without writing the part of chunk \d+ \(1 of 6 missing\)"):
        score_on_ray(
            resolve(load_config(project).config.compute, "lab"),  # type: ignore[arg-type]
            chunks,
            source_uri=deployment.source_uri,
            content_digest=deployment.content_digest,
            inbox=inbox,
            predictions=predictions_store,
            folder="lost",
            log_path=tmp_path / "job.log",
            on_chunk=landed,
        )
    assert len(lost) == 1 and not predictions_store.exists(part_name("lost", lost[0]))

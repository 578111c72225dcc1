"""What a training job on Ray gets of the repository: the files git sees, submodules included."""

from __future__ import annotations

from pathlib import Path

from loopline.compute.ray_jobs import snapshot
from tests.helpers import add_submodule, git


def repository(path: Path, files: dict[str, str]) -> Path:
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    git(path, "add", ".")
    git(path, "-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-q", "-m", "files")
    return path


def test_the_copy_holds_tracked_untracked_and_submodule_files_but_not_ignored_ones(tmp_path: Path) -> None:
    shared = repository(tmp_path / "features", {"features/__init__.py": "VERSION = 2\n"})
    repo = repository(
        tmp_path / "repo", {"train.py": "from features import VERSION\n", ".gitignore": ".venv/\n"}
    )
    # a team's shared feature code, as a submodule of the repository
    add_submodule(repo, shared, "vendor/features")
    git(repo, "-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-q", "-m", "features")
    (repo / "notes.py").write_text("# not committed yet\n")
    (repo / ".venv" / "lib").mkdir(parents=True)
    (repo / ".venv" / "lib" / "big.so").write_text("binary")
    with snapshot(repo) as (folder, cwd):
        copied = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        assert cwd == ""
        assert (folder / "vendor/features/features/__init__.py").read_text() == "VERSION = 2\n"
    assert copied == [
        ".gitignore",
        ".gitmodules",
        "notes.py",
        "train.py",
        "vendor/features/features/__init__.py",
    ]


def test_files_over_ray_s_upload_limit_are_refused_naming_the_largest(tmp_path: Path) -> None:
    from loopline.compute.ray_jobs import _OVER_RAY_S_LIMIT, _too_large
    from loopline.compute.targets import RayTarget
    from loopline.config.sections import RayTargetConfig

    job = tmp_path / "job"
    (job / ".loopline-inputs" / "train").mkdir(parents=True)
    (job / ".loopline-inputs" / "train" / "train.csv").write_bytes(b"1" * 3 * 2**20)
    (job / "weights.bin").write_bytes(b"1" * 2**20)
    (job / "train.py").write_text("print('training')\n")
    # What the job client raises when the dashboard refuses the package (Ray's own wording).
    answer = (
        "Request failed with status code 500: Traceback (most recent call last): ... ValueError: Package "
        "size (612.40MiB) exceeds the maximum size of 512.00MiB. To exclude large files, add them to "
        "'.gitignore' or '.rayignore' files, ..."
    )
    found = _OVER_RAY_S_LIMIT.search(answer)
    assert found is not None
    target = RayTarget(name="lab", settings=RayTargetConfig(kind="ray", address="http://127.0.0.1:8265"))
    message = _too_large(target, job, found[0]).message
    assert message.startswith(
        "the job's files for Ray cluster 'lab' (the commit's files and the training's inputs) are over what "
        "Ray takes (Package size (612.40MiB) exceeds the maximum size of 512.00MiB); the largest: "
        ".loopline-inputs/train/train.csv (3.0 MiB), weights.bin (1.0 MiB), train.py (0.0 MiB). Keep "
    )


def test_files_training_paths_leaves_out_still_go_and_shared_code_it_names_too(tmp_path: Path) -> None:
    from loopline.git import repository_paths

    repo = repository(
        tmp_path / "repo",
        {
            "ml/churn/train.py": "",
            "ml/churn/README.md": "",
            "ml/churn/tests/t.py": "",
            "libs/f.py": "",
            "x.py": "",
        },
    )
    project = repo / "ml" / "churn"
    named = repository_paths(project, [".", "!*.md", "!tests", "../../libs"])
    with snapshot(project, named) as (folder, cwd):
        copied = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert cwd == "ml/churn"
    assert copied == ["libs/f.py", "ml/churn/README.md", "ml/churn/tests/t.py", "ml/churn/train.py"]

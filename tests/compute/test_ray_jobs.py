"""What a training job on Ray gets of the repository: the files git sees, submodules included."""

from __future__ import annotations

from pathlib import Path

from loopline.compute.ray_jobs import snapshot
from tests.helpers import git


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
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(shared), "vendor/features")
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

"""loopline as it ships: the wheel a user installs and the build context of the image (Dockerfile)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]

# What a developer's checkout holds beside the tracked files once the scripts have run: neither the
# wheel nor the image's build context may carry any of it.
CHECKOUT_LEFTOVERS = (
    ".venv/bin/python",
    ".tools/node_modules/azurite/package.json",
    ".loopline/state.db",
    "test-artifacts/services.log",
    "src/loopline/__pycache__/api.cpython-311.pyc",
    "src/loopline/templates/project/__pycache__/train.cpython-311.pyc",
    "src/loopline.egg-info/PKG-INFO",
)


def tracked(*paths: str) -> list[str]:
    """The files git tracks under ``paths`` of the repository."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--", *paths], cwd=ROOT, capture_output=True, check=True
    ).stdout
    return [name for name in listed.decode().split("\0") if name]


def checkout(tmp_path: Path, paths: tuple[str, ...] = ()) -> Path:
    """A copy of the repository's tracked files (those under ``paths``, else all) with a developer's
    leftovers beside them."""
    root = tmp_path / "checkout"
    for name in tracked(*paths):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, root / name)
    for name in CHECKOUT_LEFTOVERS:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"left over")
    return root


def build_wheel(source: Path, out: Path) -> Path:
    """The wheel of ``source``, built as a user's ``uv build`` (or ``pip wheel``) builds it."""
    uv = Path(sys.executable).with_name("uv")
    if uv.exists():
        argv = [str(uv), "build", "--wheel", "--quiet", "--out-dir", str(out), str(source)]
    else:
        argv = [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "--wheel-dir",
            str(out),
            str(source),
        ]
    subprocess.run(argv, check=True, capture_output=True, timeout=300)
    (wheel,) = out.glob("loopline-*.whl")
    return wheel


@pytest.mark.slow
def test_the_wheel_holds_every_file_of_the_package_and_nothing_a_checkout_left(tmp_path: Path) -> None:
    source = checkout(tmp_path, ("pyproject.toml", "README.md", "src"))
    wheel = build_wheel(source, tmp_path / "dist")
    with zipfile.ZipFile(wheel) as opened:
        packaged = {name for name in opened.namelist() if not name.startswith("loopline-")}
    # every tracked file of the package (templates, migrations, the dashboard's pages) and nothing else
    assert packaged == {name.removeprefix("src/") for name in tracked("src/loopline")}


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_the_image_s_build_context_holds_what_the_dockerfile_copies_and_nothing_a_checkout_left(
    tmp_path: Path,
) -> None:
    from docker.utils.build import exclude_paths  # docker's own reading of .dockerignore

    root = checkout(tmp_path)
    sent = {path for path in exclude_paths(str(root), dockerignore_patterns()) if (root / path).is_file()}
    copied = re.findall(r"^COPY (.+) \S+$", (ROOT / "Dockerfile").read_text(), flags=re.MULTILINE)
    sources = {source for line in copied for source in line.split()}
    assert sources == {"pyproject.toml", "README.md", "src"}
    # the builder always reads the Dockerfile and .dockerignore themselves; COPY takes neither
    expected = {name for name in tracked("pyproject.toml", "README.md", "src")} | {
        "Dockerfile",
        ".dockerignore",
    }
    assert sent == expected

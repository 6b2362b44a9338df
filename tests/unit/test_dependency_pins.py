"""Installed packages honour the pins and the security floors of the requirements files."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
FILES = ("requirements.txt", "requirements-dev.txt", "constraints.txt")
# package: (first fixed version, last vulnerable one). The vulnerable ones must never come back.
SECURITY_FLOORS = {
    "cryptography": ("46.0.6", "46.0.5"),
    "requests": ("2.33.0", "2.32.5"),
    "pyopenssl": ("26.0.0", "25.3.0"),
}


def requirements() -> list[tuple[str, Requirement]]:
    found = []
    for name in FILES:
        for raw in (ROOT / name).read_text().splitlines():
            line = raw.split("#", 1)[0].strip()
            if line and not line.startswith("-"):
                found.append((name, Requirement(line)))
    return found


def installed_version(name: str) -> Version | None:
    try:
        return Version(metadata.version(name))
    except metadata.PackageNotFoundError:
        return None


@pytest.mark.parametrize(("source", "requirement"), requirements(),
                         ids=lambda value: str(value) if isinstance(value, Requirement) else None)
def test_installed_version_satisfies(source: str, requirement: Requirement) -> None:
    version = installed_version(requirement.name)
    if version is None:
        # constraints.txt holds floors "where installed"; the requirements files must be met.
        assert source == "constraints.txt", f"{requirement.name} from {source} is not installed"
        return
    assert requirement.specifier.contains(version, prereleases=True), \
        f"{requirement.name} {version} does not satisfy {requirement.specifier} ({source})"


def test_every_direct_dependency_is_pinned_exactly() -> None:
    for source, requirement in requirements():
        if source != "constraints.txt":
            assert len(requirement.specifier) == 1
            assert next(iter(requirement.specifier)).operator == "==", requirement


@pytest.mark.parametrize("package", sorted(SECURITY_FLOORS))
def test_security_floor_is_declared_and_held(package: str) -> None:
    floor, vulnerable = SECURITY_FLOORS[package]
    declared = [req for _, req in requirements()
                if canonicalize_name(req.name) == canonicalize_name(package)]
    assert declared, f"{package} has no pin or floor"
    assert all(not req.specifier.contains(vulnerable) for req in declared)
    version = installed_version(package)
    if version is not None:
        assert version >= Version(floor)

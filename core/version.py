"""The API's version: the project's own, read from pyproject.toml once at start-up (the app runs from the
repository root and is never installed, so there is no package metadata to ask).

CHANGELOG.md says what each version changed for clients; clients/schema/released/ holds each role's SDL as last
released, and tests/test_schema_versions.py fails a breaking change made without a new version and its entry.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def read_version(path: Path = PYPROJECT) -> str:
    """`[project] version` of a pyproject.toml."""
    with path.open("rb") as handle:
        version = tomllib.load(handle)["project"]["version"]
    if not isinstance(version, str) or not version:
        raise ValueError(f"{path}: [project] version is missing")
    return version


VERSION = read_version()

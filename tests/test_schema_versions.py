"""Versions: serverInfo reports the project's version; a change that breaks a client of the last released SDL
(clients/schema/released/, graphql-core's find_breaking_changes) needs a new version and its CHANGELOG.md entry."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from core.version import VERSION, read_version
from schema.export import RELEASED, allows_breaking, breaking_changes, released_version, render_all, write_release
from tests.conftest import GraphQLClient

ROOT = Path(__file__).resolve().parents[1]
RELEASED_DIR = ROOT / "clients" / "schema" / RELEASED
CHANGELOG = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")


def changelog_versions(text: str = CHANGELOG) -> list[str]:
    """The versions CHANGELOG.md has a section for (`## [X.Y.Z] - date`), newest first."""
    return re.findall(r"^## \[(\d+\.\d+\.\d+[^\]]*)\] - \d{4}-\d{2}-\d{2}$", text, re.MULTILINE)


async def test_server_info_reports_the_projects_version(client: GraphQLClient) -> None:
    with (ROOT / "pyproject.toml").open("rb") as handle:
        expected = tomllib.load(handle)["project"]["version"]
    assert VERSION == expected
    assert (await client.data("{ serverInfo { name version } }"))["serverInfo"]["version"] == expected
    status = (await client.data("{ serverStatus { version } }", as_="admin"))["serverStatus"]
    assert status["version"] == expected


def test_read_version_reads_any_pyproject(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text('[project]\nname = "x"\nversion = "2.3.4"\n', encoding="utf-8")
    assert read_version(path) == "2.3.4"


def test_every_role_has_a_released_baseline_and_the_changelog_the_current_version() -> None:
    names = sorted(render_all())
    assert sorted(p.name for p in RELEASED_DIR.glob("*.graphql")) == names
    versions = {released_version(p.read_text(encoding="utf-8")) for p in RELEASED_DIR.glob("*.graphql")}
    assert len(versions) == 1 and None not in versions, versions
    released = versions.pop()
    assert released is not None
    listed = changelog_versions()
    assert released in listed, f"CHANGELOG.md has no section for the released version {released}"
    assert VERSION in listed or VERSION == released, f"CHANGELOG.md needs a section for version {VERSION}"
    assert listed == sorted(listed, key=lambda v: tuple(int(p) for p in re.findall(r"\d+", v)), reverse=True)
    assert "## [Unreleased]" in CHANGELOG


def test_no_breaking_change_without_a_new_version() -> None:
    """The running schema of every role against the last released one: a breaking change needs a major version
    (minor before 1.0) above the released one, with its CHANGELOG.md entry."""
    rendered = render_all()
    report: list[str] = []
    for name, current in rendered.items():
        path = RELEASED_DIR / name
        released_text = path.read_text(encoding="utf-8")
        released = released_version(released_text)
        assert released is not None, path
        changes = breaking_changes(released_text, current)
        if changes and not (allows_breaking(released, VERSION) and VERSION in changelog_versions()):
            report += [f"{name}: {change.type.name}: {change.description}" for change in changes]
    assert not report, (
        "breaking changes against clients/schema/released/ (the last release); deprecate instead, or release a "
        "new major version (minor before 1.0) with a CHANGELOG.md entry (see 'Releasing a version' there):\n"
        + "\n".join(report)
    )


def test_the_check_finds_a_removed_field_and_an_argument_made_required() -> None:
    released = "type Query { a: Int, b(x: Int): String }"
    assert breaking_changes(released, "type Query { a: Int, b(x: Int): String, c: Int }") == []
    removed = breaking_changes(released, "type Query { b(x: Int): String }")
    assert [c.type.name for c in removed] == ["FIELD_REMOVED"]
    required = breaking_changes(released, "type Query { a: Int, b(x: Int!): String }")
    assert [c.type.name for c in required] == ["ARG_CHANGED_KIND"]


def test_which_versions_may_break() -> None:
    assert allows_breaking("0.1.0", "0.2.0") and allows_breaking("0.9.3", "1.0.0") and allows_breaking("1.4.0", "2.0.0")
    assert not allows_breaking("0.1.0", "0.1.1") and not allows_breaking("1.4.0", "1.5.0")
    assert not allows_breaking("1.0.0", "0.9.0") and not allows_breaking("0.1.0", "0.1.0")


def test_release_writes_every_role_with_its_version(tmp_path: Path) -> None:
    rendered = render_all()
    target = write_release(tmp_path, rendered, version="9.9.9")
    for name, text in rendered.items():
        written = (target / name).read_text(encoding="utf-8")
        assert released_version(written) == "9.9.9" and written.endswith(text)
        assert breaking_changes(written, text) == []

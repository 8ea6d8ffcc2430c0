"""Each role set's schema as SDL, from the default policy (what a freshly migrated server serves).

    python server.py export-schema --all --out clients/schema           every role set, one file each
    python server.py export-schema --all --out clients/schema --check   exit 1, with a diff, where a file differs
    python server.py export-schema --role physician                     one role set, to standard output
    python server.py export-schema --release --out clients/schema       the release baseline (released/)
(`python -m schema.export ...` runs the same.)

Role sets and file names: schema/engine/sdl.py (ROLE_SETS). The running server's schemas are compared with
the checked-in files by tests/test_schema_sdl.py; a policy changed through the admin API changes the running
schema, not these files.

Releases: clients/schema/released/ holds each role set's SDL as of the last released version (pyproject.toml's
version, core/version.py), written by `--release` when a version is released. tests/test_schema_versions.py
compares the schema with it through graphql-core's `find_breaking_changes`: a breaking change needs a new version
(major, or minor before 1.0) with its CHANGELOG.md entry. The procedure is in CHANGELOG.md's head.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from functools import cache
from pathlib import Path

from graphql import BreakingChange, build_schema, find_breaking_changes
from packaging.version import Version

from core.settings import Settings
from core.version import VERSION
from schema.engine.builder import SchemaRegistry
from schema.engine.sdl import REGENERATE, ROLE_SETS, default_policy, role_sdl
from schema.root import Mutation, Query, Subscription


@cache  # the default policy and the types do not change while a process runs
def render_all() -> dict[str, str]:
    """File name -> SDL for every role set of ROLE_SETS."""
    policy = default_policy()
    registry = SchemaRegistry(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        policy=policy,
        settings=Settings(_env_file=None),  # type: ignore[call-arg]
    )
    return {f"{name}.graphql": role_sdl(registry.for_roles(roles), roles) for name, roles in ROLE_SETS.items()}


def differences(expected: str, actual: str, name: str) -> list[str]:
    """A unified diff from the file on disk to the schema, empty when they agree."""
    return list(
        difflib.unified_diff(
            expected.splitlines(keepends=True), actual.splitlines(keepends=True), f"{name} (file)", f"{name} (schema)"
        )
    )


RELEASED = "released"
_RELEASE_HEADER = re.compile(r"^# Released in version (\S+)\.", re.MULTILINE)


def release_header(version: str) -> str:
    return (
        f"# Released in version {version}. The baseline of tests/test_schema_versions.py; written by\n"
        "# python server.py export-schema --release --out clients/schema (see CHANGELOG.md: releasing).\n"
    )


def released_version(text: str) -> str | None:
    """The version a released SDL file was released in (its header), or None."""
    found = _RELEASE_HEADER.search(text)
    return found.group(1) if found else None


def breaking_changes(released: str, current: str) -> list[BreakingChange]:
    """What a client built against `released` (SDL) would find broken in `current` (SDL): graphql-core's
    find_breaking_changes (a type, field, argument or enum value removed, a type changed, an argument made
    required...)."""
    return find_breaking_changes(build_schema(released), build_schema(current))


def allows_breaking(released: str, current: str) -> bool:
    """Whether version `current` may break clients of `released`: a higher major number (semantic versioning),
    or, before 1.0.0, a higher minor one."""
    old, new = Version(released), Version(current)
    if new.major != old.major:
        return new.major > old.major
    return old.major == 0 and new.minor > old.minor


def write_release(out: Path, rendered: dict[str, str], version: str = VERSION) -> Path:
    """Each role set's SDL as released in `version`, under `out`/released/."""
    target = out / RELEASED
    target.mkdir(parents=True, exist_ok=True)
    for name, text in rendered.items():
        (target / name).write_text(release_header(version) + text, encoding="utf-8")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every role set, one file each (needs --out)")
    which.add_argument("--role", choices=sorted(ROLE_SETS), help="one role set, to standard output")
    which.add_argument(
        "--release", action="store_true", help=f"every role set as released in version {VERSION} (OUT/released/)"
    )
    parser.add_argument("--out", type=Path, help="the directory of the .graphql files")
    parser.add_argument("--check", action="store_true", help="compare with the files instead of writing them")
    args = parser.parse_args(argv)
    rendered = render_all()
    if args.role:
        sys.stdout.write(rendered[f"{args.role}.graphql"])
        return 0
    if args.out is None:
        parser.error("--all and --release need --out DIRECTORY")
    if args.release:
        print(f"{write_release(args.out, rendered)}: {len(rendered)} schemas released in version {VERSION}")
        return 0
    if args.check:
        diff: list[str] = []
        for name, text in rendered.items():
            path = args.out / name
            diff += differences(path.read_text(encoding="utf-8") if path.exists() else "", text, name)
        sys.stdout.writelines(diff)
        if diff:
            print(f"\nthe schema differs from {args.out}: regenerate with {REGENERATE}")
        return 1 if diff else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in rendered.items():
        (args.out / name).write_text(text, encoding="utf-8")
    print(f"{args.out}: {len(rendered)} schemas")
    return 0


if __name__ == "__main__":
    sys.exit(main())

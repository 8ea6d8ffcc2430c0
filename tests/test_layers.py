"""The architecture, checked: layer contracts (import-linter), and domain code reaching the database only
through the scoped repository (`ctx.data`).

ruff's banned-api rule (pyproject.toml) keeps statement builders and the engine out of domain modules; this test
catches what an import rule cannot see: a session, a connection or the engine reached through an attribute, and
unscoped statements outside the modules that do system work.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MACHINERY = ("resolvers/data", "resolvers/audit", "resolvers/demo", "schema/engine")
# Attributes through which code would reach the database around the repository.
FORBIDDEN_ATTRIBUTES = {"db", "session", "reads", "connection", "transaction"}
# Modules whose system work may use ctx.data.unscoped(...), and why.
UNSCOPED_ALLOWED = {
    "resolvers/patient/own.py": "a binding code reaches the record it was issued for",
    "resolvers/integrity.py": "break the glass; closing one's own account",
    "resolvers/auth/login.py": "logging in (the account found by its username), the lockout count, a TOTP code's claim",
    "resolvers/auth/sessions.py": "refreshing (the session found by its token); a replayed token ends its session",
    "resolvers/auth/wechat.py": "WeChat login: the account found, or made on first sight, by its openid",
    "resolvers/role.py": "the policy's own tables (policy lines, role links), after the schema and may_assign allowed",
    "resolvers/learning/assignment.py": "lazy assignment of open learning tasks to a department's joiners",
    "resolvers/operations/runs.py": "claiming, marking and finishing job runs: the platform's own work, no caller",
    "resolvers/operations/scheduler.py": "the scheduler reads every job and creates the system jobs",
    "resolvers/operations/system.py": "the platform's own jobs (missed follow-ups, expired sessions, old figures)",
    "resolvers/operations/jobs.py": "a deleted job's runs go with it",
    "resolvers/appointment/notify.py": "a booked patient's conversation with the session's physician, to tell them",
    "resolvers/appointment/sessions.py": "a cancelled session's appointments, whoever's patients they are",
    "resolvers/appointment/jobs.py": "the platform's appointment jobs (missed appointments, reminders)",
    "resolvers/fhir/jobs.py": "the export job picks up every waiting export (each then runs as its requester)",
}


def _domain_modules() -> list[Path]:
    found = []
    for folder in ("resolvers", "schema"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if not relative.startswith(MACHINERY):
                found.append(path)
    return found


def test_import_contracts_hold() -> None:
    command = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    result = subprocess.run(
        [sys.executable, "-c", command, "--no-cache", str(ROOT / ".importlinter")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "Contracts: 2 kept, 0 broken" in result.stdout, result.stdout[-2000:]


def test_nothing_imports_the_server_module() -> None:
    """Nor the operator's command line (cli.py): both sit on top of every layer."""
    offenders = []
    for folder in ("schema", "resolvers", "policies", "models", "core"):
        for path in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom):
                    names = [node.module or ""]
                if {"server", "cli"} & set(names):
                    offenders.append(path.relative_to(ROOT).as_posix())
    assert offenders == []


def test_domain_code_reaches_the_database_only_through_ctx_data() -> None:
    offenders = []
    for path in _domain_modules():
        relative = path.relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRIBUTES:
                offenders.append(f"{relative}:{node.lineno} .{node.attr}")
            if isinstance(node, ast.Attribute) and node.attr == "unscoped" and relative not in UNSCOPED_ALLOWED:
                offenders.append(f"{relative}:{node.lineno} .unscoped (not a module doing system work)")
    assert offenders == [], "\n".join(offenders)


def test_unscoped_allowances_are_used() -> None:
    """An allowance nobody needs any more is taken away."""
    for relative in UNSCOPED_ALLOWED:
        assert ".unscoped(" in (ROOT / relative).read_text(encoding="utf-8"), relative

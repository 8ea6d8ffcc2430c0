"""The checked-in SDL of each role set (clients/schema/) is the schema the server runs, and the mini-program's
documents are valid against its role's file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from graphql import build_schema, parse, validate

from schema.engine.sdl import REGENERATE, ROLE_SETS, role_set_sdl
from schema.export import differences, main, render_all

CLIENTS = Path(__file__).resolve().parents[1] / "clients"
SDL_DIR = CLIENTS / "schema"


def _diff_against_files(rendered: dict[str, str]) -> str:
    diff: list[str] = []
    for name, text in rendered.items():
        path = SDL_DIR / name
        diff += differences(path.read_text(encoding="utf-8") if path.exists() else "", text, name)
    return "".join(diff)


async def test_checked_in_sdl_is_the_running_schema(app: Any) -> None:
    services = app.state.services  # the policy as a migrated database holds it, the websocket's Subscription
    running = {f"{name}.graphql": role_set_sdl(services.registry, roles) for name, roles in ROLE_SETS.items()}
    diff = _diff_against_files(running)
    assert not diff, f"the running schema differs from clients/schema:\n{diff}\nregenerate with: {REGENERATE}"
    # each role set's file holds what that role may do, and no more
    assert "Subscription" not in running["anonymous.graphql"]
    assert "assignRoles" in running["admin.graphql"] and "assignRoles" not in running["physician.graphql"]
    assert "messageAdded" in running["patient.graphql"]


def test_the_export_command_checks_and_writes_the_same_files(tmp_path: Path, capsys: Any) -> None:
    assert main(["--all", "--out", str(SDL_DIR), "--check"]) == 0
    assert main(["--all", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in SDL_DIR.glob("*.graphql"))
    (tmp_path / "physician.graphql").write_text("type Query { stale: Int }\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["--all", "--out", str(tmp_path), "--check"]) == 1
    out = capsys.readouterr().out
    assert "-type Query { stale: Int }" in out and REGENERATE in out


def test_the_sdl_files_are_whole_schemas() -> None:
    for name, text in render_all().items():
        schema = build_schema(text)  # the HTTP schema and the websocket's Subscription, valid together
        assert schema.query_type is not None, name
        assert (schema.subscription_type is not None) == ("messageAdded" in text), name


def test_mini_program_documents_are_valid_for_the_patient_role() -> None:
    schema = build_schema((SDL_DIR / "patient.graphql").read_text(encoding="utf-8"))
    problems = {
        path.name: [error.message for error in errors]
        for path in sorted((CLIENTS / "mini-program").glob("*.graphql"))
        if (errors := validate(schema, parse(path.read_text(encoding="utf-8"))))
    }
    assert problems == {}

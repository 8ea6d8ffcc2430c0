"""The README's graphql-codegen example works from the checked-in files alone (no running server): typed clients
for the console (chief physician, admin) and the mini-program (its trusted documents, the subscription included).

npm installs the exact versions of clients/codegen/package-lock.json (`npm ci`, from the npm registry); the test
fails, never skips, when npm or the registry cannot be reached."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = ROOT / "clients"


def npm(*args: str, cwd: Path) -> str:
    found = shutil.which("npm")
    assert found, "npm is needed for the client code generation test (Debian: apt-get install npm)"
    result = subprocess.run([found, *args], cwd=cwd, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, f"npm {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def test_codegen_builds_typed_clients_from_the_checked_in_sdl(tmp_path: Path) -> None:
    # the layout of clients/ as a client team clones it: the SDL, the mini-program's documents, the codegen project
    clients = tmp_path / "clients"
    shutil.copytree(CLIENTS / "schema", clients / "schema")
    shutil.copytree(CLIENTS / "mini-program", clients / "mini-program")
    shutil.copytree(
        CLIENTS / "codegen", clients / "codegen", ignore=shutil.ignore_patterns("node_modules", "generated")
    )
    project = clients / "codegen"
    npm("ci", "--no-audit", "--no-fund", cwd=project)
    npm("run", "generate", cwd=project)
    npm("run", "check", cwd=project)  # tsc --strict over the generated types and example.ts

    generated = {path.stem: path.read_text(encoding="utf-8") for path in (project / "generated").glob("*.ts")}
    assert sorted(generated) == ["admin", "chief", "mini-program"]
    assert "export type ChiefPatientsQuery = " in generated["chief"]
    assert "export type AdminAssignRolesMutation = " in generated["admin"]
    assert "assignRoles" not in generated["chief"]  # each client against its own role's schema
    mini = generated["mini-program"]
    assert "export type MessageAddedSubscription = " in mini and "MessageAddedDocument" in mini
    for path in sorted((CLIENTS / "mini-program").glob("*.graphql")):
        operation = re.search(r"^(query|mutation|subscription)\s+(\w+)", path.read_text(encoding="utf-8"), re.M)
        assert operation is not None, path
        kind, name = operation.group(1).capitalize(), operation.group(2)
        assert f"export type {name}{kind} = " in mini, f"{path.name}: no {name}{kind} type"

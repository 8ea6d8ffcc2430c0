"""`python server.py export-fhir`: the same export from the command line, as a named account, with a progress bar."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import select

from core.db import Database
from models.audit import Event
from models.fhir import FhirExport
from tests.clinical_helpers import user_id
from tests.fhir_helpers import check_files
from tests.test_fhir_export import _department_of, _patients_in

ROOT = Path(__file__).resolve().parent.parent


def _run(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "APP_MODE": "demo", "FHIR_EXPORT_BATCH": "5"}
    return subprocess.run(
        [sys.executable, "server.py", "export-fhir", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _files(out: Path) -> dict[str, list[dict[str, Any]]]:
    """The files the manifest lists, each with as many lines as it says."""
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    files: dict[str, list[dict[str, Any]]] = {}
    for output in manifest["output"]:
        lines = [orjson.loads(line) for line in Path(output["url"]).read_bytes().splitlines()]
        assert len(lines) == output["count"]
        files[output["type"]] = lines
    return files


async def test_export_fhir_writes_the_department_as_the_named_account(
    app: Any, db: Database, database_url: str, tmp_path: Path
) -> None:
    department = await _department_of(db, "chief")
    out = tmp_path / "out"
    done = _run(database_url, "--department", str(department), "--out", str(out), "--user", "chief")
    assert done.returncode == 0, done.stderr
    files = _files(out)
    check_files(files)
    expected = await _patients_in(db, department)
    assert {int(p["id"]) for p in files["Patient"]} == set(expected)
    chief = await user_id(db, "chief")
    async with db.session() as session:
        export = (await session.execute(select(FhirExport))).scalar_one()
        assert (export.status, export.requested_by_id, export.done_patients) == ("completed", chief, len(expected))
        read = set((await session.execute(select(Event.patient_id).where(Event.action == "export"))).scalars())
    assert read == set(expected)


async def test_export_fhir_refusals(app: Any, db: Database, database_url: str, tmp_path: Path) -> None:
    department = await _department_of(db, "chief")
    outside = _run(database_url, "--department", str(department), "--out", str(tmp_path / "a"), "--user", "physician2")
    assert outside.returncode != 0 and "outside your data scope" in outside.stderr
    nobody = _run(database_url, "--department", str(department), "--out", str(tmp_path / "b"), "--user", "nobody")
    assert nobody.returncode != 0 and "no account nobody" in nobody.stderr

"""A bulk export survives a restart: it resumes after its last saved step, on the platform scheduler of another
app instance, and writes nothing twice (lines written after the last saved step are cut back first)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from core.db import Database
from core.ids import encode_id
from core.timeutil import utcnow
from models.fhir import FhirExport
from models.operations import JobRun, RunStatus, RunTrigger, ScheduledJob
from models.user import User
from resolvers.fhir.jobs import TARGET, save_progress
from resolvers.fhir.runner import run_export
from resolvers.operations.runs import system_context
from resolvers.operations.scheduler import ensure_system_jobs
from server import create_app
from tests.conftest import GraphQLClient, make_settings
from tests.fhir_helpers import check_files, download, kick_off, wait
from tests.test_fhir_export import _patients_in


@pytest.fixture
def settings_overrides(tmp_path: Path) -> dict[str, Any]:
    return {"fhir_export_dir": str(tmp_path / "exports"), "fhir_export_batch": 3}


class Killed(Exception):
    pass


async def test_an_export_resumes_after_a_restart(
    app: Any,
    client: GraphQLClient,
    db: Database,
    database_url: str,
    settings_overrides: dict[str, Any],
    monkeypatch: Any,
) -> None:
    services = app.state.services
    async with db.session() as session:
        department = (await session.execute(select(User.department_id).where(User.username == "chief"))).scalar_one()
    expected = set(await _patients_in(db, department))
    assert len(expected) > 6

    # The kick-off is accepted, but this instance dies before the job starts on it ...
    async def not_now(_ctx: Any, _target: str) -> None:
        return None

    monkeypatch.setattr(services.scheduler, "run_target_now", not_now)
    response = await kick_off(client, f"/fhir/Group/{encode_id('Department', department)}/$export", "chief")
    assert response.status_code == 202
    status_url = response.headers["Content-Location"]
    export_id = status_url.rsplit("/", 1)[1]

    # ... then a run gets two steps in, and dies after writing the second step's lines, before saving them.
    saves = 0

    async def save_then_die(ctx: Any, export: FhirExport, **values: Any) -> bool:
        nonlocal saves
        saves += 1
        if saves == 3:  # 1: counted the patients; 2: the first step; 3: the second step
            raise Killed
        return await save_progress(ctx, export, **values)

    async with db.session() as session:
        row = (await session.execute(select(FhirExport).where(FhirExport.id == export_id))).scalar_one()
    with pytest.raises(Killed):
        await run_export(services, row, save=save_then_die)
    async with db.session() as session:
        row = (await session.execute(select(FhirExport).where(FhirExport.id == export_id))).scalar_one()
    assert (row.status, row.done_patients, row.total_patients) == ("running", 3, len(expected))
    patients_file = Path(settings_overrides["fhir_export_dir"]) / export_id / "Patient.ndjson"
    assert len(patients_file.read_bytes().splitlines()) == 6  # three of them not saved
    progress = await client.http.get(status_url, headers={"Authorization": f"Bearer {await client.token('chief')}"})
    assert progress.status_code == 202 and progress.headers["X-Progress"].startswith(f"{300 // len(expected)}% (3 of")

    # A restarted instance: its scheduler fires the export job, which resumes the export where it stopped.
    restarted = create_app(make_settings(database_url, **settings_overrides))
    async with restarted.router.lifespan_context(restarted):
        scheduler = restarted.state.services.scheduler
        ctx = system_context(restarted.state.services, "test")
        await ensure_system_jobs(ctx)
        async with db.session() as session:
            job_id = (await session.execute(select(ScheduledJob.id).where(ScheduledJob.target == TARGET))).scalar_one()
        claimed = await scheduler.fire(job_id, utcnow(), RunTrigger.SCHEDULE)
        assert claimed is not None
    async with db.session() as session:
        run = (await session.execute(select(JobRun).where(JobRun.id == claimed.run_id))).scalar_one()
    assert run.status == RunStatus.SUCCEEDED.value and run.rows_affected == len(expected) - 3

    done = await wait(client, status_url, "chief")
    assert done.status_code == 200
    files = await download(client, done.json(), "chief")
    check_files(files)  # unique ids: nothing written twice
    assert {int(p["id"]) for p in files["Patient"]} == expected


LOGOUT = "mutation { logout }"


async def test_an_export_stops_when_its_session_ends(
    app: Any, client: GraphQLClient, db: Database, monkeypatch: Any
) -> None:
    """The export reads as its requester's session: logging out (or a revoked session) stops it at its next run."""
    services = app.state.services

    async def not_now(_ctx: Any, _target: str) -> None:
        return None

    monkeypatch.setattr(services.scheduler, "run_target_now", not_now)
    async with db.session() as session:
        department = (await session.execute(select(User.department_id).where(User.username == "chief"))).scalar_one()
    response = await kick_off(client, f"/fhir/Group/{encode_id('Department', department)}/$export", "chief")
    assert response.status_code == 202
    status_url = response.headers["Content-Location"]
    await client.data(LOGOUT, as_="chief")
    client.forget("chief")
    ctx = system_context(services, "test")
    await ensure_system_jobs(ctx)
    async with db.session() as session:
        job_id = (await session.execute(select(ScheduledJob.id).where(ScheduledJob.target == TARGET))).scalar_one()
    claimed = await services.scheduler.fire(job_id, utcnow(), RunTrigger.SCHEDULE)
    assert claimed is not None
    async with db.session() as session:
        export = (await session.execute(select(FhirExport))).scalar_one()
    assert (export.status, export.done_patients) == ("failed", 0)
    assert export.message == "The session that asked for this has ended"
    # logged in again (a new session): the export is still theirs to look at, failed, as an OperationOutcome
    failed = await client.http.get(status_url, headers={"Authorization": f"Bearer {await client.token('chief')}"})
    assert failed.status_code == 500 and failed.json()["issue"][0]["diagnostics"] == export.message

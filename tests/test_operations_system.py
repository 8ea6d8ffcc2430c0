"""The platform's own jobs do real work, run through the API (runJobNow) as an admin would: follow-ups past
their window become missed (audited, with history; answered and recent ones stay); ended sessions, their refresh
tokens and expired binding codes are purged (live ones stay); read events get sealed; old audit events are
archived when switched on; old runs and figures are purged."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select, text, update

from core.db import Database
from core.ids import encode_id
from core.timeutil import clinic_today, utcnow
from models.audit import Event
from models.auth import AuthSession, RefreshToken
from models.clinical import FollowUp
from models.operations import JobRun, RequestMinute, ScheduledJob
from models.patient import Patient, PatientBindingCode
from resolvers.audit.chain import maintenance, seal_pending, verify_chain
from tests.conftest import GraphQLClient, error_codes
from tests.operations_helpers import JOBS, PAUSE, RUN_NOW, SCHEDULER_ON, UPDATE, events, job_id, wait_for_run

HISTORY = "query ($id: ID!) { history(entityType: FOLLOW_UP, entityId: $id) { kind reason by changes } }"
ISSUE = "mutation ($id: ID!) { issuePatientBindingCode(patientId: $id) { code } }"
ME = "{ me { id } }"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return dict(SCHEDULER_ON)


async def run_job(client: GraphQLClient, name: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    job = await job_id(client, name)
    if args is not None:
        await client.data(UPDATE, {"id": job, "input": {"args": args}}, as_="admin")
    run = (await client.data(RUN_NOW, {"id": job}, as_="admin"))["runJobNow"]
    return await wait_for_run(client, job, run["id"])


async def scalar(db: Database, statement: Any) -> Any:
    async with db.session() as session:
        return (await session.execute(statement)).scalar()


async def _open_follow_ups(db: Database, before: date) -> int:
    return int(
        await scalar(
            db,
            select(func.count())
            .select_from(FollowUp)
            .where(
                FollowUp.status == "scheduled",
                FollowUp.voided_at.is_(None),
                FollowUp.response_at.is_(None),
                FollowUp.due_date < before,
            ),
        )
    )


async def test_follow_ups_past_their_window_become_missed(client: GraphQLClient, db: Database) -> None:
    today = clinic_today("Asia/Shanghai")
    async with db.session() as session:
        ids = list((await session.execute(select(FollowUp.id).order_by(FollowUp.id).limit(4))).scalars())
    late, answered, recent, voided = ids
    async with db.transaction() as session:  # four follow-ups arranged around the 14-day window
        await session.execute(
            update(FollowUp).where(FollowUp.id.in_(ids)).values(status="scheduled", response_at=None, voided_at=None)
        )
        await session.execute(
            update(FollowUp)
            .where(FollowUp.id.in_([late, answered, voided]))
            .values(due_date=today - timedelta(days=20))
        )
        await session.execute(update(FollowUp).where(FollowUp.id == recent).values(due_date=today - timedelta(days=5)))
        await session.execute(
            update(FollowUp).where(FollowUp.id == answered).values(response_at=utcnow(), response_text="好多了")
        )
        await session.execute(
            update(FollowUp).where(FollowUp.id == voided).values(voided_at=utcnow(), void_reason="test")
        )
    expected = await _open_follow_ups(db, today - timedelta(days=14))
    assert expected >= 1

    done = await run_job(client, "followups.mark_missed")
    assert done["status"] == "SUCCEEDED" and done["rowsAffected"] == expected
    statuses = dict((await _statuses(db, ids)).items())
    assert statuses == {late: "missed", answered: "scheduled", recent: "scheduled", voided: "scheduled"}
    assert await _open_follow_ups(db, today - timedelta(days=14)) == 0
    history = (await client.data(HISTORY, {"id": encode_id("FollowUp", late)}, as_="admin"))["history"]
    change = history[-1]
    assert change["kind"] == "update" and change["by"] is None
    assert change["changes"]["status"] == {"before": "SCHEDULED", "after": "MISSED"}  # as the API shows the enum
    assert change["reason"] == "not done within 14 days of its due date (marked by the platform)"
    marked = [event for event in await events(db, "markFollowUpMissed") if event.outcome == "success"]
    assert len(marked) == expected and all(event.actor_id is None and event.patient_id for event in marked)
    assert str(late) in {event.entity_id for event in marked}

    again = await run_job(client, "followups.mark_missed", {"afterDays": 3})  # a shorter window: the recent one too
    assert again["rowsAffected"] == 1 and (await _statuses(db, [recent]))[recent] == "missed"
    bad = await client.run(
        UPDATE, {"id": await job_id(client, "followups.mark_missed"), "input": {"args": {"afterDays": -1}}}, as_="admin"
    )
    assert error_codes(bad) == ["BAD_USER_INPUT"]


async def _statuses(db: Database, ids: list[int]) -> dict[int, str]:
    async with db.session() as session:
        rows = await session.execute(select(FollowUp.id, FollowUp.status).where(FollowUp.id.in_(ids)))
        return {int(row_id): str(status) for row_id, status in rows.all()}


async def test_ended_sessions_tokens_and_expired_codes_are_purged(client: GraphQLClient, db: Database) -> None:
    live = await client.token("physician")
    client.forget("physician")
    await client.token("physician")  # a second session of the same account, which will have ended long ago
    async with db.session() as session:
        kept_id, ended_id = [
            row for row in (await session.execute(select(AuthSession.id).order_by(AuthSession.created_at))).scalars()
        ][:2]
    async with db.session() as session:
        expired, fresh = (await session.execute(select(Patient.id).order_by(Patient.id).limit(2))).scalars().all()
    codes = [
        (await client.data(ISSUE, {"id": encode_id("Patient", pk)}, as_="admin"))["issuePatientBindingCode"]
        for pk in (expired, fresh)
    ]
    long_ago = utcnow() - timedelta(days=40)
    async with db.transaction() as session:
        await session.execute(update(AuthSession).where(AuthSession.id == ended_id).values(expires_at=long_ago))
        await session.execute(
            update(PatientBindingCode).where(PatientBindingCode.patient_id == expired).values(expires_at=long_ago)
        )
    tokens_of_ended = int(
        await scalar(db, select(func.count()).select_from(RefreshToken).where(RefreshToken.session_id == ended_id))
    )

    done = await run_job(client, "sessions.purge_expired")
    assert done["status"] == "SUCCEEDED" and done["rowsAffected"] == 1 + tokens_of_ended + 1
    assert await scalar(db, select(AuthSession.id).where(AuthSession.id == ended_id)) is None
    assert await scalar(db, select(AuthSession.id).where(AuthSession.id == kept_id)) == kept_id
    assert (
        await scalar(db, select(func.count()).select_from(RefreshToken).where(RefreshToken.session_id == ended_id)) == 0
    )
    assert await _codes(db) == [fresh]
    assert (await client.data(ME, token=live))["me"]["id"]  # a live session goes on
    assert len(codes) == 2
    purged = [event for event in await events(db, "purgeSessions") if event.outcome == "success"]
    assert purged and purged[0].detail == {"sessions": 1, "refreshTokens": tokens_of_ended}


async def _codes(db: Database) -> list[int]:
    async with db.session() as session:
        return [int(pk) for pk in (await session.execute(select(PatientBindingCode.patient_id))).scalars()]


async def test_read_events_get_sealed(client: GraphQLClient, db: Database) -> None:
    """Reads leave events no write has sealed. A write seals one batch (1,000) inline in the tests; the job seals
    the rest, however many."""
    await client.data("{ patients(first: 5) { edges { node { id name } } } }", as_="physician")
    job = await job_id(client, "audit.seal_pending")  # the admin logs in now: a login is a write, and seals too
    # No firing of its own (every 10 minutes) nor another job's claim (a write, which seals a batch) may seal the
    # events below before the run counts them: every job is paused, a manual run still runs.
    for edge in (await client.data(JOBS, as_="admin"))["jobs"]["edges"]:
        if edge["node"]["enabled"]:
            await client.data(PAUSE, {"id": edge["node"]["id"]}, as_="admin")
    now = utcnow()
    rows = [
        {
            "occurred_at": now,
            "actor_id": 1,
            "action": "read",
            "operation": "patients",
            "entity_type": "Patient",
            "entity_id": str(n),
            "request_id": f"r{n}",
            "ip": "127.0.0.1",
            "outcome": "success",
        }
        for n in range(2500)
    ]
    async with db.transaction() as session:
        for start in range(0, len(rows), 500):
            await session.execute(insert(Event).values(rows[start : start + 500]))
    unsealed = (await verify_chain(db)).unsealed
    assert unsealed >= 2500
    run = (await client.data(RUN_NOW, {"id": job}, as_="admin"))["runJobNow"]  # its claim seals one batch
    done = await wait_for_run(client, job, run["id"])
    assert done["status"] == "SUCCEEDED" and done["rowsAffected"] >= unsealed - 1000
    checked = await verify_chain(db)
    assert checked.ok and checked.unsealed <= 1  # at most the run's own end, sealed as its write unit returns


async def test_archiving_is_skipped_while_switched_off(client: GraphQLClient) -> None:
    done = await run_job(client, "audit.archive")
    assert done["status"] == "SKIPPED" and done["note"] == "switched off (AUDIT_ARCHIVE_ENABLED=false)"
    assert done["error"] is None


@pytest.fixture
def archive_dir(tmp_path: Path) -> Path:
    return tmp_path / "archive"


@pytest.mark.parametrize(
    "settings_overrides",
    [{**SCHEDULER_ON, "audit_archive_enabled": True, "audit_archive_after_days": 30, "audit_archive_dir": "ARCHIVE"}],
)
async def test_old_audit_events_are_archived_when_switched_on(
    client: GraphQLClient,
    db: Database,
    settings_overrides: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # AUDIT_ARCHIVE_DIR is relative: the archive lands in tmp_path/ARCHIVE
    async with maintenance(db, reason="test: an audit trail that starts in 2020") as session:
        for table in ("event", "event_seal", "audit_seal_state", "audit_seal_gap"):
            await session.execute(text(f"DELETE FROM {table}"))
    old = datetime(2020, 3, 1, 8, 0, tzinfo=UTC)
    async with db.transaction() as session:
        for n in range(6):
            await session.execute(
                insert(Event).values(
                    occurred_at=old,
                    actor_id=1,
                    action="read",
                    operation="test",
                    entity_type="Patient",
                    entity_id=str(n),
                    request_id=f"old-{n}",
                    ip="127.0.0.1",
                    outcome="success",
                )
            )
    await seal_pending(db)
    await client.data(ME, as_="admin")

    done = await run_job(client, "audit.archive")
    assert done["status"] == "SUCCEEDED" and done["rowsAffected"] == 6
    [archive] = list((tmp_path / "ARCHIVE").glob("audit-before-*.jsonl"))
    assert len(archive.read_text(encoding="utf-8").splitlines()) == 6 + 2  # header, six events, footer
    assert (
        await scalar(
            db, select(func.count()).select_from(Event).where(Event.occurred_at < datetime(2021, 1, 1, tzinfo=UTC))
        )
        == 0
    )
    assert (await verify_chain(db)).ok


async def test_old_runs_and_figures_are_purged(client: GraphQLClient, db: Database) -> None:
    await client.data(ME, as_="physician")
    seal = await run_job(client, "audit.seal_pending")
    long_ago = utcnow() - timedelta(days=200)
    async with db.transaction() as session:
        await session.execute(update(JobRun).where(JobRun.status != "running").values(started_at=long_ago))
        await session.execute(
            insert(RequestMinute).values(
                minute=long_ago.replace(second=0, microsecond=0),
                instance="gone",
                kind="role",
                key="physician",
                code="",
                requests=3,
            )
        )
    assert client.services.figures is not None
    await client.services.figures.flush()
    recent = int(
        await scalar(db, select(func.count()).select_from(RequestMinute).where(RequestMinute.instance != "gone"))
    )
    done = await run_job(client, "operations.purge_history")
    assert done["rowsAffected"] == 2  # the old run, the old figure row
    assert await scalar(db, select(func.count()).select_from(JobRun).where(JobRun.id == int(_pk(seal["id"])))) == 0
    assert int(await scalar(db, select(func.count()).select_from(RequestMinute))) >= recent
    seal_job = await scalar(db, select(ScheduledJob.run_count).where(ScheduledJob.name == "audit.seal_pending"))
    assert seal_job == 1  # the execution count stays


def _pk(run_id: str) -> int:
    from core.ids import decode_id

    return decode_id("JobRun", run_id)

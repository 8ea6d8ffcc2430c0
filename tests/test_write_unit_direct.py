"""A write unit on a MySQL driver sends its kept statements, amendments and event through the driver itself
(core/db.py driver_run, resolvers/audit/unit.py), as a request's reads do."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from core.db import Database
from models.clinical import FollowUp
from tests.conftest import GraphQLClient
from tests.test_clinical_followups import scheduled_follow_ups
from tests.test_clinical_visits import one, patient_pks, pk_of
from tests.test_compiled_inputs import OUTCOME


async def test_a_write_units_statements_run_through_the_driver_on_mariadb(client: GraphQLClient, db: Database) -> None:
    """On a MySQL driver a write unit's kept statements (the row it reads, its guarded UPDATE) and its amendment and
    event INSERTs run through the driver itself (core/db.py driver_run: the engine's cursor events fire without an
    execution context); a correction (an amendment) and a stale write (CONFLICT, nothing kept) behave as before."""
    if db.dialect != "mysql" or not client.services.settings.statement_reuse:
        pytest.skip(
            "SQLite, or the speed-ups off (TEST_SPEEDUPS=off): SQLAlchemy's execution path, tested by every write"
        )
    from sqlalchemy import event

    pks = await patient_pks(db)
    [first, *_rest] = await scheduled_follow_ups(client, db, pks[2])
    seen: list[tuple[str, bool]] = []

    def watch(_conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool) -> None:
        seen.append((" ".join(statement.split())[:40], context is None))

    engine = client.services.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", watch)
    try:
        await client.data(OUTCOME, {"id": first}, as_="physician")
        corrected = OUTCOME.replace(
            "{ recordFollowUpOutcome(followUpId: $id,", '{ recordFollowUpOutcome(followUpId: $id, reason: "录入错误",'
        )
        await client.data(corrected.replace("painScore: 3", "painScore: 5"), {"id": first}, as_="physician")
    finally:
        event.remove(engine, "before_cursor_execute", watch)
    unit = [
        (sql, direct) for sql, direct in seen if not sql.startswith(("SELECT audit_seal", "INSERT INTO event_seal"))
    ]
    kinds = [sql.split(" (")[0].split(" SET")[0] for sql, _direct in unit]
    assert "UPDATE follow_up" in kinds and "INSERT INTO amendment" in kinds and "INSERT INTO event" in kinds, kinds
    assert all(
        direct for sql, direct in unit if sql.startswith(("SELECT follow_up", "UPDATE follow_up", "INSERT INTO"))
    )
    row = await one(db, select(FollowUp).where(FollowUp.id == pk_of("FollowUp", first)))
    assert (row.pain_score, row.version) == (5, 3)

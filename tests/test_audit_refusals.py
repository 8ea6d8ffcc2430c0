"""A refused mutation is recorded under the field's real name, whatever the caller called it, and recording
never fails on the size of what the caller sent."""

from __future__ import annotations

from sqlalchemy import select

from core.db import Database
from models.audit import Event
from tests.clinical_helpers import gid, patients_of
from tests.conftest import GraphQLClient, error_codes


async def _refusals(db: Database) -> list[Event]:
    async with db.session() as session:
        rows = await session.execute(select(Event).where(Event.outcome != "success").order_by(Event.id))
        return list(rows.scalars().all())


async def test_a_refusal_is_recorded_under_the_field_name_not_the_alias(client: GraphQLClient, db: Database) -> None:
    patient = (await patients_of(db, "physician"))[0]
    for alias in ("logout_harmless", "a" * 300):
        document = f'mutation ($p: ID!) {{ {alias}: revealField(patientId: $p, field: PHONE, reason: "x") }}'
        result = await client.run(document, {"p": gid("Patient", patient.id)}, as_="physician")
        assert error_codes(result) == ["BAD_USER_INPUT"]  # the reason is too short: refused before any write
    recorded = [event for event in await _refusals(db) if event.outcome == "bad_user_input"]
    assert [event.operation for event in recorded][-2:] == ["revealField", "revealField"]
    assert all("logout" not in event.operation and "aaa" not in event.operation for event in recorded)

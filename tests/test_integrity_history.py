"""Amendment history and voiding: every change kept with before/after; nothing clinical deleted."""

from __future__ import annotations

from sqlalchemy import func, select

from core.db import Database
from models.clinical import Visit
from models.integrity import Amendment
from tests.clinical_helpers import gid, patients_of
from tests.conftest import GraphQLClient, error_codes

HISTORY = """
query ($t: RecordType!, $id: ID!) { history(entityType: $t, entityId: $id) { kind reason changes by } }
"""
UPDATE = """
mutation ($id: ID!, $v: Int!, $input: UpdatePatientInput!, $r: String) {
  updatePatient(id: $id, version: $v, input: $input, reason: $r) { version }
}
"""
VOID = "mutation ($t: RecordType!, $id: ID!, $r: String!) { voidRecord(entityType: $t, id: $id, reason: $r) { voidedAt reason } }"
LIST = "query ($v: Boolean!) { patients(first: 100, filter: {includeVoided: $v}) { edges { node { id voided { reason by } } } } }"


async def test_updates_keep_before_and_after_and_hide_encrypted_values(client: GraphQLClient, db: Database) -> None:
    own = (await patients_of(db, "physician"))[0]
    pid = gid("Patient", own.id)
    await client.data(
        UPDATE,
        {"id": pid, "v": own.version, "input": {"allergies": "碘过敏", "phone": "13900001111"}, "r": "患者更正"},
        as_="physician",
    )
    entries = (await client.data(HISTORY, {"t": "PATIENT", "id": pid}, as_="physician"))["history"]
    update = entries[-1]
    assert update["kind"] == "update" and update["reason"] == "患者更正" and update["by"].startswith("陈医生")
    assert update["changes"]["allergies"] == {"before": own.allergies, "after": "碘过敏"}
    assert update["changes"]["phone"]["after"] == "(changed)"
    assert "13900001111" not in str(entries) and (own.phone or "") not in str(entries)


async def test_history_is_scoped(client: GraphQLClient, db: Database) -> None:
    stranger = (await patients_of(db, "physician2"))[0]
    result = await client.run(HISTORY, {"t": "PATIENT", "id": gid("Patient", stranger.id)}, as_="physician")
    assert error_codes(result) == ["NOT_FOUND"]
    patient_schema = await client.run(HISTORY, {"t": "PATIENT", "id": gid("Patient", stranger.id)}, as_="patient")
    assert set(error_codes(patient_schema)) == {"GRAPHQL_VALIDATION_FAILED"}


async def test_voiding_a_visit_keeps_it_with_its_reason(client: GraphQLClient, db: Database) -> None:
    own = (await patients_of(db, "physician"))[0]
    async with db.session() as session:
        visit = (await session.execute(select(Visit).where(Visit.patient_id == own.id))).scalars().first()
        total = (await session.execute(select(func.count()).select_from(Visit))).scalar_one()
    assert visit is not None
    vid = gid("Visit", visit.id)
    missing_reason = await client.run(VOID, {"t": "VISIT", "id": vid, "r": "  "}, as_="physician")
    assert error_codes(missing_reason) == ["BAD_USER_INPUT"]
    refused = await client.run(VOID, {"t": "VISIT", "id": vid, "r": "录入错误"}, as_="physician2")
    assert error_codes(refused) == ["NOT_FOUND"]
    done = await client.data(VOID, {"t": "VISIT", "id": vid, "r": "录入错误"}, as_="physician")
    assert done["voidRecord"]["reason"] == "录入错误"
    again = await client.run(VOID, {"t": "VISIT", "id": vid, "r": "录入错误"}, as_="physician")
    assert error_codes(again) == ["CONFLICT"]
    async with db.session() as session:
        assert (await session.execute(select(func.count()).select_from(Visit))).scalar_one() == total
        row = await session.get(Visit, visit.id)
        kinds = (await session.execute(select(Amendment.kind).where(Amendment.entity_id == visit.id))).scalars().all()
    assert row is not None and row.voided_at is not None and row.void_reason == "录入错误"
    assert "void" in kinds


async def test_a_voided_patient_leaves_lists_but_stays_readable(client: GraphQLClient, db: Database) -> None:
    own = (await patients_of(db, "physician"))[1]
    pid = gid("Patient", own.id)
    await client.data(VOID, {"t": "PATIENT", "id": pid, "r": "重复建档"}, as_="physician")
    listed = await client.data(LIST, {"v": False}, as_="physician")
    assert pid not in {edge["node"]["id"] for edge in listed["patients"]["edges"]}
    with_void = await client.data(LIST, {"v": True}, as_="physician")
    marked = {edge["node"]["id"]: edge["node"]["voided"] for edge in with_void["patients"]["edges"]}
    assert marked[pid]["reason"] == "重复建档"
    single = await client.data(
        "query ($id: ID!) { patient(id: $id) { voided { reason } } }", {"id": pid}, as_="physician"
    )
    assert single["patient"]["voided"]["reason"] == "重复建档"
    stale = await client.run(UPDATE, {"id": pid, "v": own.version, "input": {"allergies": "x"}}, as_="physician")
    assert error_codes(stale) == ["CONFLICT"]


PLAN_UPDATE = """
mutation ($id: ID!, $v: Int!, $r: String) {
  updateTreatmentPlan(id: $id, version: $v, input: {description: "调整方案"}, reason: $r) { version }
}
"""


async def test_a_signed_off_plan_is_amended_only_with_a_reason(client: GraphQLClient, db: Database) -> None:
    from models.clinical import TreatmentPlan

    own = (await patients_of(db, "physician"))[0]
    async with db.transaction() as session:
        plan = (
            (await session.execute(select(TreatmentPlan).where(TreatmentPlan.patient_id == own.id))).scalars().first()
        )
        assert plan is not None
        plan.status = "completed"
        session.add(plan)
    pid = gid("TreatmentPlan", plan.id)
    refused = await client.run(PLAN_UPDATE, {"id": pid, "v": plan.version}, as_="physician")
    assert error_codes(refused) == ["BAD_USER_INPUT"]
    await client.data(PLAN_UPDATE, {"id": pid, "v": plan.version, "r": "随访后修订"}, as_="physician")
    entries = (await client.data(HISTORY, {"t": "TREATMENT_PLAN", "id": pid}, as_="physician"))["history"]
    assert entries[-1]["reason"] == "随访后修订"
    assert entries[-1]["changes"]["description"]["after"] == "调整方案"

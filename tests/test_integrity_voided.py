"""Voided records come back only to callers holding `records.voided` whose schema shows the type's `voided`
field (policies/voided.py), so a voided record is never shown unmarked: on every path that hands out records
(a patient's histories, the list's look-ahead, FHIR, the follow-up lists, the patient list and a patient by id).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from core.db import Database
from models.clinical import FollowUp
from tests.clinical_helpers import gid
from tests.conftest import GraphQLClient, error_codes
from tests.test_clinical_followups import clinic_today
from tests.test_clinical_visits import patient_pks, pk_of

VOID = (
    "mutation ($t: RecordType!, $id: ID!, $r: String!) { voidRecord(entityType: $t, id: $id, reason: $r) { reason } }"
)
GRANT = (
    "mutation ($r: String!, $o: String!, $a: String!) { grantPermission(roleKey: $r, object: $o, action: $a) { key } }"
)
REVOKE = (
    "mutation ($r: String!, $o: String!, $a: String!) { revokePermission(roleKey: $r, object: $o, action: $a) { key } }"
)
CAPABILITY = "capability:records.voided"
RECORD = """
query ($id: ID!) { patient(id: $id) {
  visits { id voided { reason } diagnoses { id voided { reason } } }
  diagnoses { id voided { reason } } examReports { id voided { reason } } treatmentPlans { id voided { reason } }
  followUps { id voided { reason } }
} }
"""
LIST = """
{ patients(first: 100) { edges { node { id
  visits { id voided { reason } diagnoses { id voided { reason } } } followUps { id voided { reason } } } } } }
"""
VOIDED_PATIENTS = "{ patients(first: 100, filter: {includeVoided: true}) { edges { node { id voided { reason } } } } }"
OVERDUE = "{ overdueFollowUps(first: 100) { edges { node { id voided { reason } } } } }"
BUNDLE = "query ($id: ID!) { patientFhirBundle(id: $id) }"
MY_RECORD = """
{ myRecord { id visits { id diagnoses { id } } diagnoses { id } examReports { id } treatmentPlans { id } followUps { id } }
  myFollowUps { id } }
"""
MY_RECORD_MARKED = """
{ myRecord { id visits { id diagnoses { id } } diagnoses { id voided { reason } }
             examReports { id voided { reason } } treatmentPlans { id voided { reason } } followUps { id } }
  myFollowUps { id } }
"""
SUBMIT = 'mutation ($id: ID!) { submitFollowUpResponse(followUpId: $id, input: {text: "好多了", painScore: 1}) { id } }'
KINDS = ("visits", "diagnoses", "examReports", "treatmentPlans", "followUps")
RECORD_TYPES = {
    "visits": "VISIT",
    "diagnoses": "DIAGNOSIS",
    "examReports": "EXAM_REPORT",
    "treatmentPlans": "TREATMENT_PLAN",
    "followUps": "FOLLOW_UP",
}


async def _void_one_of_each(client: GraphQLClient, db: Database, patient_pk: int) -> dict[str, str]:
    """Void the patient's first record of each kind (the follow-up made overdue first); their ids by kind."""
    record = (await client.data(RECORD, {"id": gid("Patient", patient_pk)}, as_="physician"))["patient"]
    assert all(record[kind] for kind in KINDS), record
    voided = {kind: record[kind][0]["id"] for kind in KINDS}
    # a diagnosis of another visit than the voided one, so it is not only reached through its visit
    others = [d["id"] for visit in record["visits"][1:] for d in visit["diagnoses"]]
    if others:
        voided["diagnoses"] = others[0]
    async with db.transaction() as session:
        await session.execute(
            update(FollowUp)
            .where(FollowUp.id == pk_of("FollowUp", voided["followUps"]))  # type: ignore[arg-type]
            .values(status="scheduled", due_date=clinic_today() - timedelta(days=3))
        )
    for kind, record_id in voided.items():
        await client.data(VOID, {"t": RECORD_TYPES[kind], "id": record_id, "r": f"录入错误 {kind}"}, as_="physician")
    return voided


def _ids(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {item["id"]: (item.get("voided") or {}).get("reason") for item in items}


def _entry_ids(bundle: dict[str, Any], kind: str) -> dict[str, str]:
    return {
        e["resource"]["id"]: e["resource"].get("status", "")
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == kind
    }


async def _seen_by_physician(client: GraphQLClient, patient_pk: int) -> dict[str, dict[str, Any]]:
    """Each kind's records as the physician's patient(id) shows them: id -> void reason (None when not void)."""
    record = (await client.data(RECORD, {"id": gid("Patient", patient_pk)}, as_="physician"))["patient"]
    seen = {kind: _ids(record[kind]) for kind in KINDS}
    seen["visitDiagnoses"] = _ids([d for visit in record["visits"] for d in visit["diagnoses"]])
    listed = (await client.data(LIST, as_="physician"))["patients"]["edges"]
    (node,) = [edge["node"] for edge in listed if edge["node"]["id"] == gid("Patient", patient_pk)]
    seen["listedVisits"] = _ids(node["visits"])
    seen["listedFollowUps"] = _ids(node["followUps"])
    seen["listedVisitDiagnoses"] = _ids([d for visit in node["visits"] for d in visit["diagnoses"]])
    seen["overdue"] = _ids(
        [edge["node"] for edge in (await client.data(OVERDUE, as_="physician"))["overdueFollowUps"]["edges"]]
    )
    bundle = (await client.data(BUNDLE, {"id": gid("Patient", patient_pk)}, as_="physician"))["patientFhirBundle"]
    seen["encounters"] = _entry_ids(bundle, "Encounter")
    seen["conditions"] = _entry_ids(bundle, "Condition")
    return seen


async def test_the_physician_sees_voided_records_marked_everywhere(client: GraphQLClient, db: Database) -> None:
    patient = (await patient_pks(db))[0]
    voided = await _void_one_of_each(client, db, patient)
    seen = await _seen_by_physician(client, patient)
    for kind in KINDS:
        assert seen[kind][voided[kind]] == f"录入错误 {kind}", kind
        assert [reason for reason in seen[kind].values() if reason] == [f"录入错误 {kind}"], kind
    assert seen["listedVisits"][voided["visits"]] == "录入错误 visits"
    assert seen["listedFollowUps"][voided["followUps"]] == "录入错误 followUps"
    assert voided["diagnoses"] in seen["visitDiagnoses"] and voided["diagnoses"] in seen["listedVisitDiagnoses"]
    assert seen["overdue"][voided["followUps"]] == "录入错误 followUps"
    assert seen["encounters"][str(pk_of("Visit", voided["visits"]))] == "entered-in-error"
    assert str(pk_of("Diagnosis", voided["diagnoses"])) in seen["conditions"]


async def test_without_the_capability_voided_records_do_not_come_back(client: GraphQLClient, db: Database) -> None:
    pks = await patient_pks(db)
    voided = await _void_one_of_each(client, db, pks[0])
    await client.data(VOID, {"t": "PATIENT", "id": gid("Patient", pks[1]), "r": "重复建档"}, as_="physician")
    await client.data(REVOKE, {"r": "physician", "o": CAPABILITY, "a": "execute"}, as_="admin")
    # The `voided` fields are still in the physician's schema (the queries validate), the records are not there.
    seen = await _seen_by_physician(client, pks[0])
    for kind in KINDS:
        assert voided[kind] not in seen[kind] and not any(seen[kind].values()), kind
    assert voided["visits"] not in seen["listedVisits"] and voided["followUps"] not in seen["listedFollowUps"]
    assert voided["diagnoses"] not in seen["visitDiagnoses"] and voided["diagnoses"] not in seen["listedVisitDiagnoses"]
    assert voided["followUps"] not in seen["overdue"]
    assert str(pk_of("Visit", voided["visits"])) not in seen["encounters"]
    assert str(pk_of("Diagnosis", voided["diagnoses"])) not in seen["conditions"]
    assert seen["followUps"]  # the others still come back
    listed = (await client.data(VOIDED_PATIENTS, as_="physician"))["patients"]["edges"]
    assert gid("Patient", pks[1]) not in {edge["node"]["id"] for edge in listed}
    single = await client.run(
        "query ($id: ID!) { patient(id: $id) { id } }", {"id": gid("Patient", pks[1])}, as_="physician"
    )
    assert error_codes(single) == ["NOT_FOUND"]

    # Granted back: there again, marked.
    await client.data(GRANT, {"r": "physician", "o": CAPABILITY, "a": "execute"}, as_="admin")
    seen = await _seen_by_physician(client, pks[0])
    assert all(seen[kind][voided[kind]] == f"录入错误 {kind}" for kind in KINDS)
    listed = (await client.data(VOIDED_PATIENTS, as_="physician"))["patients"]["edges"]
    assert {edge["node"]["id"]: edge["node"]["voided"] for edge in listed}[gid("Patient", pks[1])] == {
        "reason": "重复建档"
    }


async def test_the_patient_sees_voided_records_only_with_the_capability_and_the_mark(
    client: GraphQLClient, db: Database
) -> None:
    voided = await _void_one_of_each(client, db, (await patient_pks(db))[0])
    # The patient's role has neither the capability nor VoidInfo (so no `voided` field anywhere): before, the voided
    # diagnosis, exam report and plan came back unmarked (their schema decision said `Diagnosis.*`).
    mine = await client.data(MY_RECORD, as_="patient")
    record = mine["myRecord"]
    for kind in KINDS:
        assert voided[kind] not in _ids(record[kind]), kind
    assert voided["diagnoses"] not in _ids([d for visit in record["visits"] for d in visit["diagnoses"]])
    assert voided["followUps"] not in _ids(mine["myFollowUps"])
    assert record["followUps"]  # the others come back

    # The capability alone changes nothing: a voided record would still be shown unmarked.
    await client.data(GRANT, {"r": "patient", "o": CAPABILITY, "a": "execute"}, as_="admin")
    record = (await client.data(MY_RECORD, as_="patient"))["myRecord"]
    assert all(voided[kind] not in _ids(record[kind]) for kind in KINDS)

    # With the mark in their schema too, the voided records of the types whose `voided` field it shows come back
    # marked; visits and follow-ups (no `voided` field in the patient's schema) stay out.
    await client.data(GRANT, {"r": "patient", "o": "VoidInfo.*", "a": "read"}, as_="admin")
    mine = await client.data(MY_RECORD_MARKED, as_="patient")
    record = mine["myRecord"]
    for kind in ("diagnoses", "examReports", "treatmentPlans"):
        assert _ids(record[kind])[voided[kind]] == f"录入错误 {kind}", kind
    assert voided["visits"] not in _ids(record["visits"]) and voided["followUps"] not in _ids(record["followUps"])
    assert voided["followUps"] not in _ids(mine["myFollowUps"])

    # The mark without the capability: out again.
    await client.data(REVOKE, {"r": "patient", "o": CAPABILITY, "a": "execute"}, as_="admin")
    record = (await client.data(MY_RECORD_MARKED, as_="patient"))["myRecord"]
    assert all(voided[kind] not in _ids(record[kind]) for kind in KINDS)


async def test_a_voided_follow_up_cannot_be_answered(client: GraphQLClient, db: Database) -> None:
    voided = await _void_one_of_each(client, db, (await patient_pks(db))[0])
    refused = await client.run(SUBMIT, {"id": voided["followUps"]}, as_="patient")
    assert error_codes(refused) == ["NOT_FOUND"]
    async with db.session() as session:
        row = (
            await session.execute(select(FollowUp).where(FollowUp.id == pk_of("FollowUp", voided["followUps"])))
        ).scalar_one()
    assert row.response_at is None and row.response_text is None
    # One of theirs that is not void, due: answered.
    record = (await client.data(MY_RECORD, as_="patient"))["myRecord"]
    others = [f["id"] for f in record["followUps"]]
    assert others
    async with db.transaction() as session:
        await session.execute(
            update(FollowUp)
            .where(FollowUp.id == pk_of("FollowUp", others[0]))  # type: ignore[arg-type]
            .values(status="scheduled", due_date=clinic_today())
        )
    assert (await client.data(SUBMIT, {"id": others[0]}, as_="patient"))["submitFollowUpResponse"]["id"] == others[0]


OUTCOME = """
mutation ($id: ID!) { recordFollowUpOutcome(followUpId: $id, input: {painScore: 1}, reason: "复诊") { id } }
"""
HISTORY = "query ($t: RecordType!, $id: ID!) { history(entityType: $t, entityId: $id) { kind reason } }"


async def test_a_voided_records_history_goes_where_the_record_goes(client: GraphQLClient, db: Database) -> None:
    voided = await _void_one_of_each(client, db, (await patient_pks(db))[0])
    variables = {"t": "TREATMENT_PLAN", "id": voided["treatmentPlans"]}
    entries = (await client.data(HISTORY, variables, as_="physician"))["history"]
    assert entries[-1] == {"kind": "void", "reason": "录入错误 treatmentPlans"}
    await client.data(REVOKE, {"r": "physician", "o": CAPABILITY, "a": "execute"}, as_="admin")
    assert error_codes(await client.run(HISTORY, variables, as_="physician")) == ["NOT_FOUND"]
    # a record that is not void keeps its history
    record = (await client.data(RECORD, {"id": gid("Patient", (await patient_pks(db))[0])}, as_="physician"))["patient"]
    kept = record["followUps"][0]["id"]
    await client.data(OUTCOME, {"id": kept}, as_="physician")
    entries = (await client.data(HISTORY, {"t": "FOLLOW_UP", "id": kept}, as_="physician"))["history"]
    assert entries[-1] == {"kind": "update", "reason": "复诊"}

"""`history(...).changes` in API terms, per role: GraphQL field names, opaque ids, enum values by name, and each
value through the caller's field decision (hidden fields left out, masked ones masked)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from core.db import Database
from models.clinical import FollowUp, Visit
from models.integrity import Amendment
from tests.clinical_helpers import gid, patients_of, user_id
from tests.conftest import GraphQLClient

HISTORY = """
query ($t: RecordType!, $id: ID!) { history(entityType: $t, entityId: $id) { kind reason changes by } }
"""
UPDATE = """
mutation ($id: ID!, $v: Int!, $input: UpdatePatientInput!, $r: String) {
  updatePatient(id: $id, version: $v, input: $input, reason: $r) { version }
}
"""
OUTCOME = """
mutation ($id: ID!, $input: FollowUpOutcomeInput!) { recordFollowUpOutcome(followUpId: $id, input: $input) { status } }
"""
VOID = (
    "mutation ($t: RecordType!, $id: ID!, $r: String!) { voidRecord(entityType: $t, id: $id, reason: $r) { reason } }"
)
REVOKE = 'mutation { revokePermission(roleKey: "physician", object: "Patient.address", action: "read") { key } }'
API_KEY = re.compile(r"^[a-z][A-Za-z]*(\.[a-z][A-Za-z]*)?$")


def keys_of(entries: list[dict[str, Any]]) -> set[str]:
    return {key for entry in entries for key in entry["changes"]}


async def history(client: GraphQLClient, kind: str, pid: str, role: str) -> list[dict[str, Any]]:
    return (await client.data(HISTORY, {"t": kind, "id": pid}, as_=role))["history"]  # type: ignore[no-any-return]


REGISTER = "mutation ($input: RegisterPatientInput!) { registerPatient(input: $input) { id version } }"


async def test_patient_changes_as_each_role_sees_them(client: GraphQLClient, db: Database) -> None:
    new = {"name": "欧阳秀英", "gender": "MALE", "birthDate": "1949-12-31", "consentScope": "treatment"}
    registered = (await client.data(REGISTER, {"input": new}, as_="physician"))["registerPatient"]
    pid = registered["id"]
    changes = {"idNumber": "110101199003071233", "phone": "13900002222", "address": "北京市东城区", "gender": "FEMALE"}
    await client.data(UPDATE, {"id": pid, "v": registered["version"], "input": changes, "r": "更正"}, as_="admin")
    seen = {role: await history(client, "PATIENT", pid, role) for role in ("admin", "deptadmin", "chief", "physician")}
    for role, entries in seen.items():
        assert all(API_KEY.match(key) for key in keys_of(entries)), (role, keys_of(entries))
        update = entries[-1]["changes"]
        assert update["address"]["after"] == "北京市东城区", role
        assert update["gender"]["after"] == "FEMALE", role  # the enum value's name, not the stored "female"
        assert update["phone"]["after"] == "(changed)", role  # encrypted: only that it changed
        assert "13900002222" not in str(entries) and "110101199003071233" not in str(entries)
        created = entries[0]["changes"]
        assert created["id"]["after"] == pid  # an opaque id, as the API gives it
        assert created["attendingPhysicianId"]["after"] == gid("User", await user_id(db, "physician"))
        assert created["gender"]["after"] == "MALE" and created["birthDate"]["after"] == "1949-12-31"
        assert created["consent.scope"]["after"] == "treatment" and created["name"]["after"] == "欧阳秀英"
        assert "idNumberHash" not in created and "wechatUserId" not in created and "createdById" not in created
    # identity numbers: whole for admins and department admins, masked for chief physicians, absent for physicians
    assert all("idNumber" in seen[role][-1]["changes"] for role in ("admin", "deptadmin", "chief"))
    assert "idNumber" not in keys_of(seen["physician"])


async def test_a_field_revoked_from_a_role_leaves_its_history(client: GraphQLClient, db: Database) -> None:
    own = (await patients_of(db, "physician"))[0]
    pid = gid("Patient", own.id)
    await client.data(UPDATE, {"id": pid, "v": own.version, "input": {"address": "上海市徐汇区"}}, as_="physician")
    assert (await history(client, "PATIENT", pid, "physician"))[-1]["changes"]["address"]["after"] == "上海市徐汇区"
    await client.data(REVOKE, as_="admin")
    entries = await history(client, "PATIENT", pid, "physician")
    assert "address" not in keys_of(entries) and "上海市徐汇区" not in str(entries)
    async with db.session() as session:  # kept as written: only what the role is shown changed
        stored = (
            await session.execute(select(Amendment.changes).where(Amendment.entity_id == own.id).order_by(Amendment.id))
        ).scalars()
        assert stored.all()[-1]["address"]["after"] == "上海市徐汇区"


async def test_follow_up_outcome_and_voiding_in_api_terms(client: GraphQLClient, db: Database) -> None:
    own = (await patients_of(db, "physician"))[0]
    async with db.session() as session:
        follow_up = (
            await session.execute(
                select(FollowUp).where(FollowUp.patient_id == own.id, FollowUp.status == "scheduled").limit(1)
            )
        ).scalar_one()
        visit = (await session.execute(select(Visit).where(Visit.patient_id == own.id).limit(1))).scalar_one()
    fid = gid("FollowUp", follow_up.id)
    await client.data(OUTCOME, {"id": fid, "input": {"outcomeText": "愈合良好", "painScore": 2}}, as_="physician")
    entries = await history(client, "FOLLOW_UP", fid, "physician")
    outcome = entries[-1]["changes"]
    assert outcome["status"] == {"before": "SCHEDULED", "after": "COMPLETED"}
    assert outcome["painScore"] == {"before": None, "after": 2}
    assert outcome["recordedById"]["after"] == gid("User", await user_id(db, "physician"))
    assert all(API_KEY.match(key) for key in keys_of(entries))

    vid = gid("Visit", visit.id)
    await client.data(VOID, {"t": "VISIT", "id": vid, "r": "录入错误"}, as_="physician")
    for role in ("physician", "admin"):
        void = (await history(client, "VISIT", vid, role))[-1]
        assert void["kind"] == "void" and void["changes"]["voided.reason"]["after"] == "录入错误"
        assert void["changes"]["voided.byId"]["after"] == gid("User", await user_id(db, "physician"))
        assert void["changes"]["voided.at"]["after"] and "voidedAt" not in void["changes"]


async def test_merge_entries_name_the_merge_and_the_records_by_opaque_id(client: GraphQLClient, db: Database) -> None:
    keep, merged = (await patients_of(db, "physician"))[:2]
    result = await client.data(
        "mutation ($k: ID!, $m: ID!) { mergePatients(keepId: $k, mergeId: $m, reason: $r) { id } }".replace(
            "$r", '"重复建档"'
        ),
        {"k": gid("Patient", keep.id), "m": gid("Patient", merged.id)},
        as_="chief",
    )
    merge_id = result["mergePatients"]["id"]
    entry = (await history(client, "PATIENT", gid("Patient", keep.id), "chief"))[-1]
    assert entry["kind"] == "merge"
    changes = entry["changes"]
    assert changes["mergeId"]["after"] == merge_id
    assert changes["keepId"]["after"] == gid("Patient", keep.id)
    assert changes["mergedId"]["after"] == gid("Patient", merged.id)
    moved = changes["movedRecords"]["after"]
    assert moved and all(kind[0].isupper() and "_" not in kind for kind in moved)
    assert all(isinstance(i, str) and not i.isdigit() for ids in moved.values() for i in ids)

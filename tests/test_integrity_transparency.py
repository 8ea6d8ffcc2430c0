"""Break-the-glass rules: only what the caller sees masked can be revealed, nobody reviews their own emergency
access, the patient sees every access to their record, and undoing a merge needs both of its patients."""

from __future__ import annotations

from sqlalchemy import select

from core.db import Database
from models.integrity import AccessGrant, PatientMerge
from tests.clinical_helpers import gid, patients_of
from tests.conftest import GraphQLClient, error_codes

REVEAL = "mutation ($p: ID!, $f: RevealableField!, $r: String!) { revealField(patientId: $p, field: $f, reason: $r) }"
EMERGENCY = "mutation ($p: ID!, $r: String!) { emergencyAccess(patientId: $p, reason: $r) { id } }"
REVIEW = 'mutation ($id: ID!) { reviewBreakGlass(id: $id, note: "已核实") { reviewedAt } }'
ACCESS_LOG = "{ myRecordAccessLog(first: 50) { edges { node { action by } } } }"
MERGE = "mutation ($k: ID!, $m: ID!, $r: String!) { mergePatients(keepId: $k, mergeId: $m, reason: $r) { id } }"
UNMERGE = "mutation ($id: ID!, $r: String!) { unmergePatients(mergeId: $id, reason: $r) { undoneAt } }"
REASON = "术后出血需紧急电话联系患者"


async def test_only_a_field_seen_masked_can_be_revealed(client: GraphQLClient, db: Database) -> None:
    own = (await patients_of(db, "physician"))[0]
    pid = gid("Patient", own.id)
    # a physician's schema has no identity number at all: not revealed
    hidden = await client.run(REVEAL, {"p": pid, "f": "ID_NUMBER", "r": REASON}, as_="physician")
    assert error_codes(hidden) == ["FORBIDDEN"] and hidden["data"] == {"revealField": None}
    # a chief sees the phone in full already, the identity number masked
    chiefs = (await patients_of(db, "chief"))[0]
    cid = gid("Patient", chiefs.id)
    assert error_codes(await client.run(REVEAL, {"p": cid, "f": "PHONE", "r": REASON}, as_="chief")) == [
        "BAD_USER_INPUT"
    ]
    revealed = await client.data(REVEAL, {"p": cid, "f": "ID_NUMBER", "r": REASON}, as_="chief")
    assert revealed["revealField"] == chiefs.id_number
    async with db.session() as session:
        grants = (await session.execute(select(AccessGrant.kind))).scalars().all()
    assert grants == ["reveal_id_number"]


async def test_nobody_reviews_their_own_emergency_access(client: GraphQLClient, db: Database) -> None:
    gi_patient = (await patients_of(db, "physician2"))[0]
    grant = await client.data(
        EMERGENCY, {"p": gid("Patient", gi_patient.id), "r": "急诊：外院转入需查看病史"}, as_="deptadmin"
    )
    own = await client.run(REVIEW, {"id": grant["emergencyAccess"]["id"]}, as_="deptadmin")
    assert error_codes(own) == ["FORBIDDEN"]
    async with db.session() as session:
        row = (await session.execute(select(AccessGrant))).scalar_one()
    assert row.reviewed_at is None
    await client.data(REVIEW, {"id": grant["emergencyAccess"]["id"]}, as_="admin")  # someone else may


async def test_the_patient_sees_emergency_access_and_reveals(client: GraphQLClient, db: Database) -> None:
    mine = (await client.data("{ myRecord { id } }", as_="patient"))["myRecord"]["id"]
    await client.data(EMERGENCY, {"p": mine, "r": "急诊夜班，患者大出血需查看病史"}, as_="physician2")
    await client.data(REVEAL, {"p": mine, "f": "PHONE", "r": REASON}, as_="physician")
    actions = [
        edge["node"]["action"] for edge in (await client.data(ACCESS_LOG, as_="patient"))["myRecordAccessLog"]["edges"]
    ]
    assert actions.count("reveal") == 2


async def test_undoing_a_merge_needs_both_patients_in_reach(client: GraphQLClient, db: Database) -> None:
    crs = (await patients_of(db, "chief"))[0]
    gi = (await patients_of(db, "physician2"))[0]
    await client.data(
        MERGE, {"k": gid("Patient", crs.id), "m": gid("Patient", gi.id), "r": "同一患者重复建档"}, as_="admin"
    )
    async with db.session() as session:
        record = (await session.execute(select(PatientMerge))).scalar_one()
    refused = await client.run(UNMERGE, {"id": gid("PatientMerge", record.id), "r": "误合并，撤销"}, as_="chief")
    assert error_codes(refused) == ["NOT_FOUND"]
    async with db.session() as session:
        still = (await session.execute(select(PatientMerge))).scalar_one()
    assert still.undone_at is None
    await client.data(UNMERGE, {"id": gid("PatientMerge", record.id), "r": "误合并，撤销"}, as_="admin")

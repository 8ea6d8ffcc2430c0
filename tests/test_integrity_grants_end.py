"""Access through a break-the-glass grant ends with the grant: what was written under it never widens the
writer's reach afterwards, and voided records never count towards reach."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from core.db import Database
from core.timeutil import utcnow
from models.clinical import Visit
from models.integrity import AccessGrant
from tests.clinical_helpers import gid, patients_of
from tests.conftest import GraphQLClient, error_codes

EMERGENCY = "mutation ($p: ID!, $r: String!) { emergencyAccess(patientId: $p, reason: $r) { id } }"
READ = "query ($id: ID!) { patient(id: $id) { name } }"
VISIT = """
mutation ($p: ID!) { recordVisit(input: {patientId: $p, visitDate: "2026-11-30", visitType: OUTPATIENT,
  chiefComplaint: "急诊：便血伴头晕"}) { id } }
"""
VOID = 'mutation ($id: ID!) { voidRecord(entityType: VISIT, id: $id, reason: "误录入的就诊记录") { voidedAt } }'


async def _expire_grants(db: Database) -> None:
    async with db.transaction() as session:
        await session.execute(update(AccessGrant).values(expires_at=utcnow() - timedelta(minutes=1)))


async def test_a_visit_recorded_under_a_grant_does_not_keep_the_patient_in_reach(
    client: GraphQLClient, db: Database
) -> None:
    crs_patient = (await patients_of(db, "physician"))[0]
    pid = gid("Patient", crs_patient.id)
    await client.data(EMERGENCY, {"p": pid, "r": "急诊夜班，患者大出血需查看病史"}, as_="physician2")
    await client.data(VISIT, {"p": pid}, as_="physician2")
    async with db.session() as session:
        visit = (await session.execute(select(Visit).order_by(Visit.id.desc()).limit(1))).scalar_one()
        grant = (await session.execute(select(AccessGrant))).scalar_one()
    assert visit.patient_id == crs_patient.id and visit.under_grant_id == grant.id
    assert (await client.data(READ, {"id": pid}, as_="physician2"))["patient"]["name"] == crs_patient.name
    await _expire_grants(db)
    assert error_codes(await client.run(READ, {"id": pid}, as_="physician2")) == ["NOT_FOUND"]


async def test_a_visit_in_ones_own_reach_is_not_marked_and_still_counts(client: GraphQLClient, db: Database) -> None:
    own = (await patients_of(db, "physician"))[0]
    await client.data(VISIT, {"p": gid("Patient", own.id)}, as_="physician")
    async with db.session() as session:
        visit = (await session.execute(select(Visit).order_by(Visit.id.desc()).limit(1))).scalar_one()
    assert visit.under_grant_id is None


async def test_a_voided_visit_does_not_count_towards_reach(client: GraphQLClient, db: Database) -> None:
    """A chief's patient seen once by the physician (not attended by them): in the physician's reach through that
    visit until the visit is voided as entered in error."""
    chiefs = await patients_of(db, "chief")
    patient = chiefs[0]
    pid = gid("Patient", patient.id)
    assert error_codes(await client.run(READ, {"id": pid}, as_="physician")) == ["NOT_FOUND"]
    async with db.transaction() as session:  # a visit the physician recorded while covering for the chief
        session.add(Visit(patient_id=patient.id, physician_id=await _user(db, "physician"), visit_date=utcnow().date()))
    assert (await client.data(READ, {"id": pid}, as_="physician"))["patient"]["name"] == patient.name
    async with db.session() as session:
        visit = (await session.execute(select(Visit).order_by(Visit.id.desc()).limit(1))).scalar_one()
    await client.data(VOID, {"id": gid("Visit", visit.id)}, as_="chief")
    assert error_codes(await client.run(READ, {"id": pid}, as_="physician")) == ["NOT_FOUND"]


async def _user(db: Database, username: str) -> int:
    from tests.clinical_helpers import user_id

    return await user_id(db, username)


ISSUE = "mutation ($id: ID!) { issuePatientBindingCode(patientId: $id) { code } }"
BIND = "mutation ($code: String!) { bindPatientRecord(code: $code) { id } }"


async def test_a_staff_account_cannot_link_itself_to_a_patient_record(client: GraphQLClient, db: Database) -> None:
    """Under a grant a physician could issue a binding code and redeem it with their own account: the link would
    keep the patient in their reach for good."""
    crs_patient = (await patients_of(db, "physician"))[0]
    pid = gid("Patient", crs_patient.id)
    await client.data(EMERGENCY, {"p": pid, "r": "急诊夜班，患者大出血需查看病史"}, as_="physician2")
    code = (await client.data(ISSUE, {"id": pid}, as_="physician2"))["issuePatientBindingCode"]["code"]
    refused = await client.run(BIND, {"code": code}, as_="physician2")
    assert error_codes(refused) == ["FORBIDDEN"]
    await _expire_grants(db)
    assert error_codes(await client.run(READ, {"id": pid}, as_="physician2")) == ["NOT_FOUND"]

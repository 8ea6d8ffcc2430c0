"""The patient's side: binding codes, the read-only record, own follow-ups answered from the phone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from core.db import Database
from core.security import hash_password, token_digest
from models.clinical import FollowUp
from models.patient import Patient, PatientBindingCode
from models.role import Role, UserRole
from models.user import User
from tests.conftest import DEMO_PASSWORD, GraphQLClient, error_codes
from tests.test_clinical_followups import clinic_today
from tests.test_clinical_visits import count, events, fetch, gid, one, patient_pks, pk_of, user_pk

ISSUE = "mutation ($id: ID!) { issuePatientBindingCode(patientId: $id) { code expiresAt } }"
BIND = "mutation ($code: String!) { bindPatientRecord(code: $code) { id name } }"
MY_RECORD = """
{ myRecord { id name gender phone idNumber allergies visits { visitDate diagnoses { icd10Code icd10Name } }
             followUps { id dueDate status } } }
"""
MY_FOLLOW_UPS = """
{ myFollowUps { id dueDate status overdue outcomeText response { text painScore bleeding wexnerScore satisfaction submittedAt } } }
"""
SUBMIT = """
mutation ($id: ID!, $input: FollowUpResponseInput!) {
  submitFollowUpResponse(followUpId: $id, input: $input) {
    id status response { text painScore bleeding wexnerScore satisfaction submittedAt }
  }
}
"""
CONFIRM = """
mutation ($id: ID!, $recurrence: Boolean) {
  confirmFollowUpResponse(followUpId: $id, recurrence: $recurrence) {
    id status outcomeText painScore bleeding wexnerScore satisfaction recurrence recordedByName
  }
}
"""
ACCESS_LOG = "{ myRecordAccessLog(first: 50) { edges { node { at action by } } } }"
FIELDS = "{ __schema { queryType { fields { name } } mutationType { fields { name } } } }"


async def new_user(db: Database, username: str) -> int:
    """A fresh mini-program-like account with no role, as a WeChat login would create."""
    async with db.transaction() as session:
        user = User(username=username, display_name="微信用户", password_hash=hash_password(DEMO_PASSWORD))
        session.add(user)
        await session.flush()
        return int(user.id)  # type: ignore[arg-type]


async def issue(client: GraphQLClient, patient_pk: int, as_: str = "physician") -> str:
    code: str = (await client.data(ISSUE, {"id": gid("Patient", patient_pk)}, as_=as_))["issuePatientBindingCode"][
        "code"
    ]
    return code


async def role_keys(db: Database, user_id: int) -> set[str]:
    rows = await fetch(
        db, select(Role.key).join(UserRole, UserRole.role_id == Role.id).where(UserRole.user_id == user_id)
    )
    return set(rows)


async def test_binding_code_issued_and_redeemed(client: GraphQLClient, db: Database) -> None:
    pks = await patient_pks(db)
    physician = await user_pk(db, "physician")
    before = datetime.now(UTC)
    issued = (await client.data(ISSUE, {"id": gid("Patient", pks[1])}, as_="physician"))["issuePatientBindingCode"]
    code = issued["code"]
    assert len(code) >= 8
    expires = datetime.fromisoformat(issued["expiresAt"])
    assert timedelta(hours=23, minutes=59) <= expires - before <= timedelta(hours=24, minutes=1)
    (stored,) = await fetch(db, select(PatientBindingCode).where(PatientBindingCode.patient_id == pks[1]))
    assert stored.code_hash == token_digest(code) and code not in stored.code_hash  # only a digest is kept
    assert (stored.issued_by_id, stored.used_at) == (physician, None)
    (event,) = await events(db, "issuePatientBindingCode", "success")
    assert (event.actor_id, event.patient_id) == (physician, pks[1])
    assert code not in str(event.detail)

    # A stranger's patient: NOT_FOUND, no code.
    refused = await client.run(ISSUE, {"id": gid("Patient", pks[5])}, as_="physician")
    assert error_codes(refused) == ["NOT_FOUND"]
    assert await count(db, PatientBindingCode, PatientBindingCode.patient_id == pks[5]) == 0

    # A fresh account with no role redeems it (lower case, with a separator, as typed on a phone).
    user = await new_user(db, "wx-fresh")
    assert await role_keys(db, user) == set()
    assert error_codes(await client.run(MY_RECORD, as_="wx-fresh")) == ["GRAPHQL_VALIDATION_FAILED"]
    typed = code[:4].lower() + "-" + code[4:].lower()
    bound = (await client.data(BIND, {"code": typed}, as_="wx-fresh"))["bindPatientRecord"]
    assert bound["id"] == gid("Patient", pks[1])
    assert await role_keys(db, user) == {"patient"}
    patient = await one(db, select(Patient).where(Patient.id == pks[1]))
    assert patient.wechat_user_id == user
    stored = await one(db, select(PatientBindingCode).where(PatientBindingCode.patient_id == pks[1]))
    assert stored.used_by_id == user and stored.used_at is not None
    (bind_event,) = await events(db, "bindPatientRecord", "success")
    assert (bind_event.actor_id, bind_event.patient_id) == (user, pks[1])

    # The same token now gets the patient's schema and their own record.
    record = (await client.data(MY_RECORD, as_="wx-fresh"))["myRecord"]
    assert record["id"] == gid("Patient", pks[1]) and record["name"] == patient.name
    assert record["phone"] == patient.phone  # their own phone, whole
    assert record["idNumber"] != patient.id_number and "*" in record["idNumber"]
    assert record["visits"] and record["visits"][0]["diagnoses"][0]["icd10Name"]

    # Used: refused for anyone, the record stays with the first account.
    await new_user(db, "wx-second")
    for as_ in ("wx-fresh", "wx-second"):
        assert error_codes(await client.run(BIND, {"code": code}, as_=as_)) == ["BAD_USER_INPUT"]
    assert error_codes(await client.run(BIND, {"code": "ABCDEFGHJK"}, as_="wx-second")) == ["BAD_USER_INPUT"]
    assert (await one(db, select(Patient.wechat_user_id).where(Patient.id == pks[1]))) == user
    assert await role_keys(db, await user_pk(db, "wx-second")) == set()


async def test_expired_and_already_bound_codes(client: GraphQLClient, db: Database) -> None:
    pks = await patient_pks(db)
    user = await new_user(db, "wx-late")
    expired = await issue(client, pks[2])
    async with db.transaction() as session:
        await session.execute(
            update(PatientBindingCode)
            .where(PatientBindingCode.code_hash == token_digest(expired))
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    assert error_codes(await client.run(BIND, {"code": expired}, as_="wx-late")) == ["BAD_USER_INPUT"]
    assert (await one(db, select(Patient.wechat_user_id).where(Patient.id == pks[2]))) is None
    assert await role_keys(db, user) == set()

    # Patient 0 is already bound to the demo `patient` account: its code is a conflict, and stays unused.
    taken = await issue(client, pks[0])
    assert error_codes(await client.run(BIND, {"code": taken}, as_="wx-late")) == ["CONFLICT"]
    assert (await one(db, select(Patient.wechat_user_id).where(Patient.id == pks[0]))) == await user_pk(db, "patient")
    assert await role_keys(db, user) == set()
    row = await one(db, select(PatientBindingCode).where(PatientBindingCode.code_hash == token_digest(taken)))
    assert row.used_at is None
    # An account already bound cannot take a second record.
    second = await issue(client, pks[3])
    assert error_codes(await client.run(BIND, {"code": second}, as_="patient")) == ["CONFLICT"]
    assert (await one(db, select(Patient.wechat_user_id).where(Patient.id == pks[3]))) is None
    outcomes = [e.outcome for e in await events(db, "bindPatientRecord")]
    assert outcomes == ["bad_user_input", "conflict", "conflict"]


async def test_patient_schema_is_read_only_and_own(client: GraphQLClient, db: Database) -> None:
    fields = (await client.data(FIELDS, as_="patient"))["__schema"]
    queries = {f["name"] for f in fields["queryType"]["fields"]}
    mutations = {f["name"] for f in fields["mutationType"]["fields"]}
    assert {"myRecord", "myFollowUps", "myRecordAccessLog"} <= queries
    assert not {"patients", "patient", "overdueFollowUps", "outcomeSummary", "icd10Codes", "auditEvents"} & queries
    assert "submitFollowUpResponse" in mutations
    writes = {
        "registerPatient",
        "updatePatient",
        "reassignPatient",
        "recordVisit",
        "addExamReport",
        "createTreatmentPlan",
        "updateTreatmentPlan",
        "applyFollowUpProtocol",
        "recordFollowUpOutcome",
        "confirmFollowUpResponse",
        "cancelFollowUp",
        "issuePatientBindingCode",
        "createFollowUpProtocol",
    }
    assert not writes & mutations
    pks = await patient_pks(db)
    for query in (
        "{ patients { edges { node { id } } } }",
        f'{{ patient(id: "{gid("Patient", pks[1])}") {{ id }} }}',
        f'mutation {{ updatePatient(id: "{gid("Patient", pks[0])}", version: 1, input: {{name: "x"}}) {{ id }} }}',
    ):
        assert error_codes(await client.run(query, as_="patient")) == ["GRAPHQL_VALIDATION_FAILED"]

    # myFollowUps: exactly the bound record's follow-ups.
    mine = (await client.data(MY_FOLLOW_UPS, as_="patient"))["myFollowUps"]
    stored = await fetch(
        db, select(FollowUp.id).where(FollowUp.patient_id == pks[0]).order_by(FollowUp.due_date, FollowUp.id)
    )
    assert [pk_of("FollowUp", f["id"]) for f in mine] == stored and stored
    record = (await client.data(MY_RECORD, as_="patient"))["myRecord"]
    assert record["id"] == gid("Patient", pks[0])
    assert {f["id"] for f in record["followUps"]} == {f["id"] for f in mine}
    # A staff account has no myRecord.
    assert error_codes(await client.run(MY_RECORD, as_="physician")) == ["GRAPHQL_VALIDATION_FAILED"]


async def test_patient_answers_due_follow_up_then_physician_confirms(client: GraphQLClient, db: Database) -> None:
    pks = await patient_pks(db)
    today = clinic_today()
    own = await fetch(db, select(FollowUp).where(FollowUp.patient_id == pks[0]).order_by(FollowUp.id))
    assert len(own) >= 2
    due, later = own[0], own[1]
    other = await one(db, select(FollowUp.id).where(FollowUp.patient_id == pks[1]).limit(1))
    async with db.transaction() as session:
        await session.execute(
            update(FollowUp)
            .where(FollowUp.id.in_([due.id, other]))
            .values(status="scheduled", due_date=today + timedelta(days=3), response_at=None)
        )
        await session.execute(
            update(FollowUp)
            .where(FollowUp.id == later.id)
            .values(status="scheduled", due_date=today + timedelta(days=4))
        )

    answer = {"text": "伤口已愈合，偶有瘙痒", "painScore": 2, "bleeding": False, "wexnerScore": 1, "satisfaction": 5}
    # Bad measures, a follow-up not yet due, someone else's: refused, nothing stored.
    for bad in ({"painScore": 11}, {"wexnerScore": 21}, {"satisfaction": 0}, {"painScore": -1}):
        result = await client.run(SUBMIT, {"id": gid("FollowUp", due.id), "input": {**answer, **bad}}, as_="patient")
        assert error_codes(result) == ["BAD_USER_INPUT"], bad
    not_due = await client.run(SUBMIT, {"id": gid("FollowUp", later.id), "input": answer}, as_="patient")
    assert error_codes(not_due) == ["BAD_USER_INPUT"]
    not_mine = await client.run(SUBMIT, {"id": gid("FollowUp", other), "input": answer}, as_="patient")
    assert error_codes(not_mine) == ["NOT_FOUND"]
    unknown = await client.run(SUBMIT, {"id": gid("FollowUp", 999999), "input": answer}, as_="patient")
    assert error_codes(unknown) == ["NOT_FOUND"]
    rows = await fetch(db, select(FollowUp).where(FollowUp.id.in_([due.id, later.id, other])))
    assert all(r.response_at is None and r.response_pain_score is None for r in rows)
    assert await events(db, "submitFollowUpResponse", "success") == []

    # Nothing to confirm yet.
    assert error_codes(await client.run(CONFIRM, {"id": gid("FollowUp", due.id)}, as_="physician")) == [
        "BAD_USER_INPUT"
    ]

    submitted = (await client.data(SUBMIT, {"id": gid("FollowUp", due.id), "input": answer}, as_="patient"))[
        "submitFollowUpResponse"
    ]
    assert submitted["status"] == "SCHEDULED"
    assert {k: submitted["response"][k] for k in answer} == answer
    row = await one(db, select(FollowUp).where(FollowUp.id == due.id))
    assert (row.response_text, row.response_pain_score, row.response_bleeding, row.response_wexner_score) == (
        "伤口已愈合，偶有瘙痒",
        2,
        False,
        1,
    )
    assert row.response_satisfaction == 5 and row.response_at is not None
    assert (row.status, row.pain_score, row.outcome_text, row.recorded_by_id) == ("scheduled", None, None, None)
    (event,) = await events(db, "submitFollowUpResponse", "success")
    assert (event.actor_id, event.patient_id) == (await user_pk(db, "patient"), pks[0])
    listed = (await client.data(MY_FOLLOW_UPS, as_="patient"))["myFollowUps"]
    assert next(f for f in listed if f["id"] == gid("FollowUp", due.id))["response"]["painScore"] == 2

    # Another physician cannot confirm it; the attending physician does, and it becomes the outcome.
    assert error_codes(await client.run(CONFIRM, {"id": gid("FollowUp", due.id)}, as_="physician2")) == ["NOT_FOUND"]
    confirmed = (await client.data(CONFIRM, {"id": gid("FollowUp", due.id), "recurrence": False}, as_="physician"))[
        "confirmFollowUpResponse"
    ]
    assert confirmed["status"] == "COMPLETED"
    assert (confirmed["outcomeText"], confirmed["painScore"], confirmed["wexnerScore"], confirmed["satisfaction"]) == (
        "伤口已愈合，偶有瘙痒",
        2,
        1,
        5,
    )
    assert confirmed["bleeding"] is False and confirmed["recurrence"] is False
    assert confirmed["recordedByName"].startswith("陈医生")
    row = await one(db, select(FollowUp).where(FollowUp.id == due.id))
    assert (row.status, row.pain_score, row.wexner_score, row.satisfaction, row.recorded_by_id) == (
        "completed",
        2,
        1,
        5,
        await user_pk(db, "physician"),
    )
    assert row.recorded_at is not None
    assert [e.outcome for e in await events(db, "confirmFollowUpResponse")][-1] == "success"
    # Closed: no second answer or confirmation.
    assert error_codes(await client.run(SUBMIT, {"id": gid("FollowUp", due.id), "input": answer}, as_="patient")) == [
        "CONFLICT"
    ]
    assert error_codes(await client.run(CONFIRM, {"id": gid("FollowUp", due.id)}, as_="physician")) == ["CONFLICT"]


async def test_access_log_shows_staff_reads_not_own(client: GraphQLClient, db: Database) -> None:
    pks = await patient_pks(db)
    assert (await client.data(ACCESS_LOG, as_="patient"))["myRecordAccessLog"]["edges"] == []
    await client.data(MY_RECORD, as_="patient")
    await client.data(MY_FOLLOW_UPS, as_="patient")
    assert (await client.data(ACCESS_LOG, as_="patient"))["myRecordAccessLog"]["edges"] == []
    await client.data(
        "query ($id: ID!) { patient(id: $id) { id name } }", {"id": gid("Patient", pks[0])}, as_="physician"
    )
    # A read of another patient is not in this log.
    await client.data("query ($id: ID!) { patient(id: $id) { id } }", {"id": gid("Patient", pks[1])}, as_="chief")
    log: list[dict[str, Any]] = [
        e["node"] for e in (await client.data(ACCESS_LOG, as_="patient"))["myRecordAccessLog"]["edges"]
    ]
    assert [(entry["action"], entry["by"]) for entry in log] == [("read", "陈医生 Chen (physician)")]
    # The chief's list page that includes the patient shows up, newest first.
    await client.data("{ patients(first: 100) { edges { node { id } } } }", as_="chief")
    log = [e["node"] for e in (await client.data(ACCESS_LOG, as_="patient"))["myRecordAccessLog"]["edges"]]
    assert [(entry["action"], entry["by"]) for entry in log] == [
        ("read", "张主任 Zhang (chief physician)"),
        ("read", "陈医生 Chen (physician)"),
    ]


CODES = "query ($id: ID!) { patientBindingCodes(patientId: $id) { state issuedAt expiresAt usedAt issuedBy } }"
REVOKE = "mutation ($id: ID!) { revokePatientBindingCodes(patientId: $id) }"


async def test_staff_list_and_revoke_a_patients_binding_codes(client: GraphQLClient, db: Database) -> None:
    pks = await patient_pks(db)
    patient = gid("Patient", pks[3])
    redeemed = await issue(client, pks[3])
    await new_user(db, "wx-redeemer")
    await client.data(BIND, {"code": redeemed}, as_="wx-redeemer")
    lost, mistaken = await issue(client, pks[3]), await issue(client, pks[3])

    listed = (await client.data(CODES, {"id": patient}, as_="physician"))["patientBindingCodes"]
    assert [code["state"] for code in listed].count("ACTIVE") == 2
    assert [code["state"] for code in listed].count("USED") == 1
    assert all(code["issuedBy"] for code in listed) and all(len(code) == 5 for code in listed)
    assert lost not in str(listed) and mistaken not in str(listed)  # the codes themselves are never kept

    # Revoked: both unused codes stop at once, the redeemed one is left as it was, and the revocation is recorded.
    assert (await client.data(REVOKE, {"id": patient}, as_="physician"))["revokePatientBindingCodes"] == 2
    listed = (await client.data(CODES, {"id": patient}, as_="physician"))["patientBindingCodes"]
    assert sorted(code["state"] for code in listed) == ["EXPIRED", "EXPIRED", "USED"]
    now = datetime.now(UTC)
    stored = await fetch(db, select(PatientBindingCode).where(PatientBindingCode.patient_id == pks[3]))
    assert sum(1 for row in stored if row.used_at is None and row.expires_at.replace(tzinfo=UTC) <= now) == 2
    (event,) = await events(db, "revokePatientBindingCodes", "success")
    assert (event.actor_id, event.patient_id) == (await user_pk(db, "physician"), pks[3])
    assert event.detail == {"revoked": 2}
    await new_user(db, "wx-finder")
    for code in (lost, mistaken):
        assert error_codes(await client.run(BIND, {"code": code}, as_="wx-finder")) == ["BAD_USER_INPUT"]
    assert (await client.data(REVOKE, {"id": patient}, as_="physician"))["revokePatientBindingCodes"] == 0


async def test_binding_codes_out_of_reach_or_role_are_refused(client: GraphQLClient, db: Database) -> None:
    pks = await patient_pks(db)
    stranger = await issue(client, pks[5], as_="admin")  # a patient outside the physician's reach
    for query in (CODES, REVOKE):
        assert error_codes(await client.run(query, {"id": gid("Patient", pks[5])}, as_="physician")) == ["NOT_FOUND"]
        assert error_codes(await client.run(query, {"id": gid("Patient", 10**9)}, as_="physician")) == ["NOT_FOUND"]
    (code,) = await fetch(db, select(PatientBindingCode).where(PatientBindingCode.patient_id == pks[5]))
    assert code.code_hash == token_digest(stranger) and code.expires_at.replace(tzinfo=UTC) > datetime.now(UTC)
    assert await events(db, "revokePatientBindingCodes", "success") == []

    # Neither a patient nor an account with no role has the fields at all.
    await new_user(db, "wx-nobody")
    await new_user(db, "wx-patient")
    await client.data(BIND, {"code": await issue(client, pks[1])}, as_="wx-patient")
    for as_ in ("wx-nobody", "wx-patient"):
        names = str(await client.data(FIELDS, as_=as_))
        assert "patientBindingCodes" not in names and "revokePatientBindingCodes" not in names
        for query in (CODES, REVOKE):
            refused = await client.run(query, {"id": gid("Patient", pks[1])}, as_=as_)
            assert error_codes(refused) == ["GRAPHQL_VALIDATION_FAILED"]
    assert (await client.data(CODES, {"id": gid("Patient", pks[1])}, as_="physician"))["patientBindingCodes"][0][
        "state"
    ] == "USED"

"""Duplicate patients: warned at registration (in scope only), merged in one transaction, undone."""

from __future__ import annotations

from sqlalchemy import select

from core.db import Database
from models.clinical import Visit
from models.integrity import PatientMerge
from models.patient import Patient
from tests.clinical_helpers import gid, patients_of
from tests.conftest import GraphQLClient, error_codes

REGISTER = """
mutation ($input: RegisterPatientInput!, $dup: Boolean) {
  registerPatient(input: $input, allowDuplicate: $dup) { id }
}
"""
VISIT = """
mutation ($p: ID!) { recordVisit(input: {patientId: $p, visitDate: "2026-10-01", visitType: OUTPATIENT,
  diagnoses: [{icd10Code: "K60.3", isPrimary: true}]}) { id } }
"""
MERGE = "mutation ($k: ID!, $m: ID!, $r: String!) { mergePatients(keepId: $k, mergeId: $m, reason: $r) { id moved undoneAt } }"
UNMERGE = "mutation ($id: ID!, $r: String!) { unmergePatients(mergeId: $id, reason: $r) { undoneAt } }"


async def test_registration_warns_of_duplicates_in_scope(client: GraphQLClient, db: Database) -> None:
    own = (await patients_of(db, "physician"))[0]
    same_id = {"name": "另一个名字", "idNumber": own.id_number}
    # Identity numbers are matched only for a caller who sees them (a chief sees them masked: a recorded, limited
    # lookup); a physician, who does not see them at all, gets no answer on them (tests/test_oracles.py).
    theirs = (await patients_of(db, "chief"))[0]
    result = await client.run(REGISTER, {"input": {"name": "另一个名字", "idNumber": theirs.id_number}}, as_="chief")
    assert error_codes(result) == ["CONFLICT"]
    assert result["errors"][0]["extensions"]["candidates"] == [{"id": gid("Patient", theirs.id), "name": theirs.name}]
    same_person = {"name": own.name, "birthDate": own.birth_date.isoformat(), "phone": own.phone}
    assert error_codes(await client.run(REGISTER, {"input": same_person}, as_="physician")) == ["CONFLICT"]
    # Out of physician2's scope: no candidate is revealed to them.
    assert (await client.data(REGISTER, {"input": same_id}, as_="physician2"))["registerPatient"]["id"]
    # Confirmed on purpose: registered.
    assert (await client.data(REGISTER, {"input": same_person, "dup": True}, as_="physician"))["registerPatient"]["id"]


async def test_merge_moves_everything_and_undo_restores_it(client: GraphQLClient, db: Database) -> None:
    keep = (await patients_of(db, "physician"))[0]
    async with db.transaction() as session:
        # The duplicate holds the WeChat binding; the kept record (the demo patient's) must keep its own.
        keep_row = await session.get(Patient, keep.id)
        assert keep_row is not None
        wechat_user = keep_row.wechat_user_id
        keep_row.wechat_user_id = None
        session.add(keep_row)
    dup = await client.data(REGISTER, {"input": {"name": keep.name + "(重复)"}}, as_="physician")
    dup_id = dup["registerPatient"]["id"]
    await client.data(VISIT, {"p": dup_id}, as_="physician")
    async with db.transaction() as session:
        row = (await session.execute(select(Patient).where(Patient.name == keep.name + "(重复)"))).scalar_one()
        row.wechat_user_id = wechat_user
        session.add(row)
        dup_pk = row.id
        dup_visits = set((await session.execute(select(Visit.id).where(Visit.patient_id == dup_pk))).scalars())
    refused = await client.run(
        MERGE, {"k": gid("Patient", keep.id), "m": dup_id, "r": "同一患者重复建档"}, as_="physician"
    )
    assert error_codes(refused) == ["GRAPHQL_VALIDATION_FAILED"]
    merged = await client.data(MERGE, {"k": gid("Patient", keep.id), "m": dup_id, "r": "同一患者重复建档"}, as_="chief")
    assert sorted(merged["mergePatients"]["moved"]["visit"]) == sorted(dup_visits)
    async with db.session() as session:
        moved = set((await session.execute(select(Visit.patient_id).where(Visit.id.in_(dup_visits)))).scalars())
        kept_row = await session.get(Patient, keep.id)
        dup_row = await session.get(Patient, dup_pk)
    assert moved == {keep.id}
    assert kept_row is not None and kept_row.wechat_user_id == wechat_user
    assert dup_row is not None and dup_row.merged_into_id == keep.id and dup_row.voided_at is not None
    # The patient's phone now shows the kept record.
    mine = await client.data("{ myRecord { name } }", as_="patient")
    assert mine["myRecord"]["name"] == keep.name

    async with db.session() as session:
        record = (await session.execute(select(PatientMerge))).scalar_one()
    undone = await client.data(UNMERGE, {"id": gid("PatientMerge", record.id), "r": "误合并，撤销"}, as_="chief")
    assert undone["unmergePatients"]["undoneAt"]
    async with db.session() as session:
        back = set((await session.execute(select(Visit.patient_id).where(Visit.id.in_(dup_visits)))).scalars())
        dup_row = await session.get(Patient, dup_pk)
        kept_row = await session.get(Patient, keep.id)
    assert back == {dup_pk}
    assert dup_row is not None and dup_row.merged_into_id is None and dup_row.voided_at is None
    assert dup_row.wechat_user_id == wechat_user and kept_row is not None and kept_row.wechat_user_id is None
    again = await client.run(UNMERGE, {"id": gid("PatientMerge", record.id), "r": "误合并，撤销"}, as_="chief")
    assert error_codes(again) == ["CONFLICT"]


async def test_merge_out_of_scope_is_not_found(client: GraphQLClient, db: Database) -> None:
    keep = (await patients_of(db, "chief"))[0]
    stranger = (await patients_of(db, "physician2"))[0]
    result = await client.run(
        MERGE, {"k": gid("Patient", keep.id), "m": gid("Patient", stranger.id), "r": "不应允许"}, as_="chief"
    )
    assert error_codes(result) == ["NOT_FOUND"]
    async with db.session() as session:
        row = await session.get(Patient, stranger.id)
    assert row is not None and row.merged_into_id is None

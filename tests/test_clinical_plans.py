"""Treatment plans: create, versioned update (stale -> CONFLICT, nothing overwritten), bad input, scope."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select

from core.db import Database
from models.clinical import Diagnosis, TreatmentPlan
from tests.conftest import GraphQLClient, error_codes
from tests.test_clinical_visits import count, events, fetch, gid, one, patient_pks, pk_of, record_visit, user_pk

CREATE = """
mutation ($input: CreateTreatmentPlanInput!) {
  createTreatmentPlan(input: $input) {
    id diagnosisId planType description startDate endDate status version authorName updatedAt
  }
}
"""
UPDATE = """
mutation ($id: ID!, $version: Int!, $input: UpdateTreatmentPlanInput!, $reason: String) {
  updateTreatmentPlan(id: $id, version: $version, input: $input, reason: $reason) {
    id diagnosisId planType description startDate endDate status version updatedAt
  }
}
"""


async def plan_row(db: Database, plan_id: str) -> TreatmentPlan:
    row: TreatmentPlan = await one(db, select(TreatmentPlan).where(TreatmentPlan.id == pk_of("TreatmentPlan", plan_id)))
    return row


async def diagnosis_of(client: GraphQLClient, patient_pk: int, as_: str = "physician") -> str:
    visit = await record_visit(client, as_, patient_pk, diagnoses=[{"icd10Code": "K64.2", "isPrimary": True}])
    diagnosis_id: str = visit["diagnoses"][0]["id"]
    return diagnosis_id


async def create_plan(client: GraphQLClient, patient_pk: int, **fields: Any) -> dict[str, Any]:
    variables = {
        "input": {
            "patientId": gid("Patient", patient_pk),
            "planType": "SURGERY",
            "description": "吻合器痔上黏膜环切术 (PPH)",
            **fields,
        }
    }
    plan: dict[str, Any] = (await client.data(CREATE, variables, as_="physician"))["createTreatmentPlan"]
    return plan


async def test_create_and_update_plan_with_versions(client: GraphQLClient, db: Database) -> None:
    pks = await patient_pks(db)
    physician = await user_pk(db, "physician")
    diagnosis = await diagnosis_of(client, pks[1])
    start = date.today()
    plan = await create_plan(
        client, pks[1], diagnosisId=diagnosis, startDate=start.isoformat(), endDate=(start + timedelta(30)).isoformat()
    )
    assert plan["planType"] == "SURGERY" and plan["status"] == "PLANNED" and plan["version"] == 1
    assert plan["diagnosisId"] == diagnosis and plan["authorName"].startswith("陈医生")
    row = await plan_row(db, plan["id"])
    assert (row.patient_id, row.diagnosis_id, row.author_id, row.plan_type, row.description, row.version) == (
        pks[1],
        pk_of("Diagnosis", diagnosis),
        physician,
        "surgery",
        "吻合器痔上黏膜环切术 (PPH)",
        1,
    )
    (created,) = await events(db, "createTreatmentPlan")
    assert (created.entity_id, created.patient_id, created.actor_id, created.outcome) == (
        str(row.id),
        pks[1],
        physician,
        "success",
    )

    updated = (
        await client.data(
            UPDATE,
            {"id": plan["id"], "version": 1, "input": {"status": "ACTIVE", "description": "术后坐浴，中药熏洗"}},
            as_="physician",
        )
    )["updateTreatmentPlan"]
    assert (updated["status"], updated["description"], updated["version"]) == ("ACTIVE", "术后坐浴，中药熏洗", 2)
    assert updated["planType"] == "SURGERY" and updated["diagnosisId"] == diagnosis  # untouched fields kept
    assert datetime.fromisoformat(updated["updatedAt"]) > datetime.fromisoformat(plan["updatedAt"])
    row = await plan_row(db, plan["id"])
    assert (row.status, row.description, row.version, row.plan_type) == ("active", "术后坐浴，中药熏洗", 2, "surgery")

    # A second writer still holding version 1 is refused, and overwrites nothing.
    stale = await client.run(
        UPDATE,
        {"id": plan["id"], "version": 1, "input": {"status": "STOPPED", "description": "改药物治疗"}},
        as_="chief",
    )
    assert error_codes(stale) == ["CONFLICT"]
    row = await plan_row(db, plan["id"])
    assert (row.status, row.description, row.version) == ("active", "术后坐浴，中药熏洗", 2)
    # A version from the future is as stale.
    future = await client.run(UPDATE, {"id": plan["id"], "version": 7, "input": {"status": "STOPPED"}}, as_="physician")
    assert error_codes(future) == ["CONFLICT"]

    # With the version it read, the chief's update goes through.
    done = (await client.data(UPDATE, {"id": plan["id"], "version": 2, "input": {"status": "COMPLETED"}}, as_="chief"))[
        "updateTreatmentPlan"
    ]
    assert (done["status"], done["version"]) == ("COMPLETED", 3)
    assert (await plan_row(db, plan["id"])).version == 3

    outcomes = [(e.outcome, e.actor_id) for e in await events(db, "updateTreatmentPlan")]
    chief = await user_pk(db, "chief")
    assert outcomes == [("success", physician), ("conflict", chief), ("conflict", physician), ("success", chief)]
    # The patient's record shows the current plan.
    read = await client.data(
        "query ($id: ID!) { patient(id: $id) { treatmentPlans { id status version } } }",
        {"id": gid("Patient", pks[1])},
        as_="physician",
    )
    assert {"id": plan["id"], "status": "COMPLETED", "version": 3} in read["patient"]["treatmentPlans"]


async def test_plan_bad_input_stores_nothing(client: GraphQLClient, db: Database) -> None:
    pks = await patient_pks(db)
    own_diagnosis = await diagnosis_of(client, pks[1])
    other_diagnosis = await diagnosis_of(client, pks[2])
    gi_diagnosis = await one(db, select(Diagnosis.id).where(Diagnosis.patient_id == pks[5]))
    before = await count(db, TreatmentPlan)
    today = date.today()
    bad_creates: list[dict[str, Any]] = [
        {"startDate": today.isoformat(), "endDate": (today - timedelta(1)).isoformat()},
        {"diagnosisId": other_diagnosis},
        {"description": "   "},
        {"planType": "MAGIC"},
        {"status": "DONE"},
    ]
    for change in bad_creates:
        variables = {
            "input": {"patientId": gid("Patient", pks[1]), "planType": "TCM", "description": "中药坐浴", **change}
        }
        result = await client.run(CREATE, variables, as_="physician")
        assert error_codes(result) == ["BAD_USER_INPUT"], (change, result)
    # a diagnosis out of reach, or none at all: NOT_FOUND, as for every id a client sends
    for missing in (gid("Diagnosis", gi_diagnosis), gid("Diagnosis", 999999)):
        variables = {
            "input": {
                "patientId": gid("Patient", pks[1]),
                "planType": "TCM",
                "description": "中药坐浴",
                "diagnosisId": missing,
            }
        }
        assert error_codes(await client.run(CREATE, variables, as_="physician")) == ["NOT_FOUND"]
    assert await count(db, TreatmentPlan) == before
    assert await events(db, "createTreatmentPlan", "success") == []

    plan = await create_plan(
        client,
        pks[1],
        diagnosisId=own_diagnosis,
        startDate=today.isoformat(),
        endDate=(today + timedelta(10)).isoformat(),
    )
    bad_updates: list[dict[str, Any]] = [
        {"endDate": (today - timedelta(1)).isoformat()},
        {"startDate": (today + timedelta(11)).isoformat(), "description": "晚开始"},
        {"diagnosisId": other_diagnosis, "description": "换诊断"},
        {"description": ""},
    ]
    for change in bad_updates:
        result = await client.run(UPDATE, {"id": plan["id"], "version": 1, "input": change}, as_="physician")
        assert error_codes(result) == ["BAD_USER_INPUT"], (change, result)
    row = await plan_row(db, plan["id"])
    assert (row.version, row.description, row.diagnosis_id, row.end_date, row.start_date) == (
        1,
        "吻合器痔上黏膜环切术 (PPH)",
        pk_of("Diagnosis", own_diagnosis),
        today + timedelta(10),
        today,
    )
    assert len(await events(db, "updateTreatmentPlan", "bad_user_input")) == len(bad_updates)
    assert await events(db, "updateTreatmentPlan", "success") == []


async def test_plans_out_of_scope_are_not_found(client: GraphQLClient, db: Database) -> None:
    pks = await patient_pks(db)
    gi_plan = await one(db, select(TreatmentPlan.id).where(TreatmentPlan.patient_id == pks[5]))
    before = await fetch(
        db, select(TreatmentPlan.description, TreatmentPlan.version).where(TreatmentPlan.id == gi_plan)
    )
    created = await client.run(
        CREATE, {"input": {"patientId": gid("Patient", pks[5]), "planType": "TCM", "description": "x"}}, as_="physician"
    )
    assert error_codes(created) == ["NOT_FOUND"]
    for as_ in ("physician", "chief"):
        result = await client.run(
            UPDATE, {"id": gid("TreatmentPlan", gi_plan), "version": 1, "input": {"description": "改"}}, as_=as_
        )
        assert error_codes(result) == ["NOT_FOUND"]
    assert (
        await fetch(db, select(TreatmentPlan.description, TreatmentPlan.version).where(TreatmentPlan.id == gi_plan))
        == before
    )
    # physician2 reaches their own patient's plan.
    ok = await client.data(
        UPDATE,
        {"id": gid("TreatmentPlan", gi_plan), "version": 1, "input": {"status": "STOPPED"}, "reason": "疗程调整"},
        as_="physician2",
    )
    assert ok["updateTreatmentPlan"]["version"] == 2
    assert [e.outcome for e in await events(db, "updateTreatmentPlan")] == ["not_found", "not_found", "success"]

"""Column projection (schema/engine/projection.py): a field asked alone shows what a read of every column shows.

Patient lists, a patient, and a patient's visits, diagnoses and follow-ups load only the columns the
selection reads. If a field's entry in the projection map missed a column, that field asked alone
would come back empty or different; these tests ask every field of those types alone and compare it
with the same field read with projection switched off.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from core.db import Database
from models.clinical import Diagnosis, FollowUp, Visit
from models.patient import Patient
from schema.engine.projection import DIAGNOSIS, FOLLOW_UP, PATIENT, VISIT
from tests.clinical_helpers import gid, patients_of, user_id
from tests.conftest import GraphQLClient

TYPE_FIELDS = """
query ($name: String!) {
  __type(name: $name) {
    fields {
      name
      args { name }
      type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }
    }
  }
}
"""

PROJECTED = ("Patient", "Visit", "Diagnosis", "FollowUp")


@contextmanager
def unprojected() -> Iterator[None]:
    """Reads load every column meanwhile (an empty map knows no field): the baseline to compare with."""
    saved = [(projection, dict(projection.fields)) for projection in (PATIENT, VISIT, DIAGNOSIS, FOLLOW_UP)]
    try:
        for projection, _fields in saved:
            projection.fields.clear()
        yield
    finally:
        for projection, fields in saved:
            projection.fields.update(fields)


def _named(type_ref: dict[str, Any]) -> dict[str, Any]:
    while type_ref.get("ofType"):
        type_ref = type_ref["ofType"]
    return type_ref


async def _selection(client: GraphQLClient, token: str, type_name: str, depth: int = 0) -> dict[str, str]:
    """Each field of the type (in this role's schema) with a selection that shows it."""
    data = await client.data(TYPE_FIELDS, {"name": type_name}, token=token)
    selections: dict[str, str] = {}
    for field in data["__type"]["fields"]:
        if any(arg for arg in field["args"]):
            continue
        named = _named(field["type"])
        if named["kind"] in ("SCALAR", "ENUM"):
            selections[field["name"]] = field["name"]
        elif named["kind"] == "OBJECT":
            if named["name"] in PROJECTED or depth > 0:
                selections[field["name"]] = f"{field['name']} {{ __typename }}"
            else:
                inner = await _selection(client, token, named["name"], depth + 1)
                selections[field["name"]] = f"{field['name']} {{ {' '.join(inner.values())} }}"
    return selections


async def _fill(db: Database) -> Patient:
    """Give one of chief's patients (and its records) a value in every column, a voided visit among them."""
    chief = await user_id(db, "chief")
    patient = (await patients_of(db, "chief"))[0]
    now = datetime.now(UTC).replace(microsecond=0)
    async with db.transaction() as session:
        row = await session.get(Patient, patient.id)
        assert row is not None
        row.address, row.allergies, row.past_history = "上海市徐汇区", "青霉素", "高血压"
        row.emergency_contact_name, row.emergency_contact_phone = "李四", "13700001111"
        row.id_number, row.consent_scope, row.consent_version, row.consent_at = "110101199003077777", "随访", "v2", now
        voided = Visit(patient_id=patient.id, visit_date=now.date(), voided_at=now, void_reason="录入错误")
        voided.voided_by_id = chief
        session.add(voided)
        await session.flush()
        session.add(Diagnosis(patient_id=patient.id, visit_id=voided.id, icd10_code="K64.1", icd10_name="二度痔"))
        visits = (await session.execute(select(Visit).where(Visit.patient_id == patient.id))).scalars().all()
        for visit in visits:
            visit.chief_complaint, visit.present_illness = "便血", "两周"
            visit.examination_findings, visit.notes, visit.physician_id = "内痔", "复诊", chief
        await session.flush()
        diagnoses = (await session.execute(select(Diagnosis).where(Diagnosis.patient_id == patient.id))).scalars()
        for diagnosis in diagnoses:
            diagnosis.tcm_syndrome = "湿热下注"
        follow_ups = (await session.execute(select(FollowUp).where(FollowUp.patient_id == patient.id))).scalars()
        for follow_up in follow_ups:
            follow_up.outcome_text, follow_up.pain_score, follow_up.bleeding = "好转", 2, False
            follow_up.wexner_score, follow_up.recurrence, follow_up.satisfaction = 3, False, 5
            follow_up.recorded_by_id, follow_up.recorded_at, follow_up.cancel_reason = chief, now, "无"
            follow_up.response_text, follow_up.response_pain_score, follow_up.response_at = "不痛了", 1, now
            follow_up.response_bleeding, follow_up.response_wexner_score, follow_up.response_satisfaction = False, 2, 4
            follow_up.due_date = (now - timedelta(days=3)).date()
    return patient


def _query(root: str, patient_fields: str, nested: tuple[str, str] | None) -> str:
    inner = patient_fields if nested is None else f"id {nested[0]} {{ id {nested[1]} }}"
    if root == "list":
        return f"{{ patients(first: 50, filter: {{includeVoided: true}}) {{ edges {{ node {{ id {inner} }} }} }} }}"
    return f"query ($id: ID!) {{ patient(id: $id) {{ id {inner} }} }}"


def _nodes(data: dict[str, Any]) -> list[dict[str, Any]]:
    if "patients" in data:
        return [edge["node"] for edge in data["patients"]["edges"]]
    return [data["patient"]]


async def test_every_field_alone_shows_what_it_shows_among_all(client: GraphQLClient, db: Database) -> None:
    patient = await _fill(db)
    token = await client.token("chief")
    variables = {"id": gid("Patient", patient.id)}
    patient_fields = await _selection(client, token, "Patient")
    assert {"name", "phone", "visits", "followUps"} <= patient_fields.keys()
    nested = {
        "visits": await _selection(client, token, "Visit"),
        "diagnoses": await _selection(client, token, "Diagnosis"),
        "followUps": await _selection(client, token, "FollowUp"),
    }
    checked = 0
    for root in ("list", "one"):
        vars_ = variables if root == "one" else None
        # Patient's own fields
        with unprojected():
            query = _query(root, " ".join(patient_fields.values()), None)
            everything = _nodes(await client.data(query, vars_, token=token))
        assert any(node["id"] == variables["id"] for node in everything)
        for name, selection in patient_fields.items():
            alone = _nodes(await client.data(_query(root, selection, None), vars_, token=token))
            assert [node[name] for node in alone] == [node[name] for node in everything], name
            checked += 1
        # the fields of a patient's visits, diagnoses and follow-ups
        for relation, fields in nested.items():
            query = _query(root, "", (relation, " ".join(fields.values())))
            with unprojected():
                everything = _nodes(await client.data(query, vars_, token=token))
            assert any(node[relation] for node in everything), relation
            for name, selection in fields.items():
                alone = _nodes(await client.data(_query(root, "", (relation, selection)), vars_, token=token))
                expected = [[item[name] for item in node[relation]] for node in everything]
                assert [[item[name] for item in node[relation]] for node in alone] == expected, (relation, name)
                checked += 1
    assert checked > 100


async def test_the_filled_values_come_back(client: GraphQLClient, db: Database) -> None:
    """The comparison above is not between two empty answers: the filled columns are shown."""
    patient = await _fill(db)
    data = await client.data(
        """query ($id: ID!) { patient(id: $id) {
            address emergencyContactPhone consent { scope version }
            visits { chiefComplaint voided { reason } diagnoses { tcmSyndrome } }
            followUps { status outcomeText wexnerScore response { text satisfaction } overdue recordedByName }
        } }""",
        {"id": gid("Patient", patient.id)},
        as_="chief",
    )
    shown = data["patient"]
    assert shown["address"] == "上海市徐汇区" and shown["consent"] == {"scope": "随访", "version": "v2"}
    assert shown["emergencyContactPhone"] in ("13700001111", "137****1111")
    assert all(visit["chiefComplaint"] == "便血" for visit in shown["visits"])
    # chief's schema shows voided records, marked: exactly the one voided in _fill
    assert [visit["voided"]["reason"] for visit in shown["visits"] if visit["voided"]] == ["录入错误"]
    assert all(d["tcmSyndrome"] == "湿热下注" for visit in shown["visits"] for d in visit["diagnoses"])
    follow_up = shown["followUps"][0]
    assert follow_up["outcomeText"] == "好转" and follow_up["wexnerScore"] == 3
    assert follow_up["response"] == {"text": "不痛了", "satisfaction": 4}
    assert follow_up["recordedByName"]
    # due three days ago: overdue exactly when still scheduled
    assert all(f["overdue"] == (f["status"] == "SCHEDULED") for f in shown["followUps"])

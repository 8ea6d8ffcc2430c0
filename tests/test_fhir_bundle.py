"""Every record kind in the patient bundle: each resource validates against the R4B models, every reference
resolves inside the bundle, codings and units as documented, and each kind reaches only those allowed."""

from __future__ import annotations

from collections import Counter
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import select

from core.db import Database
from models.clinical import Diagnosis, FollowUp, TreatmentPlan
from models.patient import Patient
from models.user import User
from resolvers.fhir.common import references
from tests.clinical_helpers import gid
from tests.conftest import GraphQLClient

BUNDLE = "query ($id: ID!) { patientFhirBundle(id: $id) }"
RESPOND = """mutation ($id: ID!) { submitFollowUpResponse(followUpId: $id,
  input: {text: "好多了", painScore: 2, bleeding: false, satisfaction: 5}) { id } }"""
RECORD = """mutation ($id: ID!) { recordFollowUpOutcome(followUpId: $id,
  input: {painScore: 3, wexnerScore: 4, bleeding: true, recurrence: false, satisfaction: 4}) { id } }"""
AMEND_PLAN = """mutation ($id: ID!, $v: Int!) { updateTreatmentPlan(id: $id, version: $v,
  input: {description: "改为保守治疗"}, reason: "复查后调整") { version } }"""
BASE = "https://followup.example.org/fhir"


def validate(resources: list[dict[str, Any]]) -> None:
    """Each resource against its R4B model (R4B matches R4 for these types), and every reference resolves."""
    for resource in resources:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    known = {f"{r['resourceType']}/{r['id']}" for r in resources}
    assert len(known) == len(resources), "resource ids are unique per type"
    dangling = {target for r in resources for target in references(r)} - known
    assert dangling == set()


def of_type(resources: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for r in resources if r["resourceType"] == kind]


async def _bundle(client: GraphQLClient, patient_id: int, as_: str) -> list[dict[str, Any]]:
    bundle = (await client.data(BUNDLE, {"id": gid("Patient", patient_id)}, as_=as_))["patientFhirBundle"]
    Bundle.model_validate(bundle)
    assert all(e["fullUrl"] == f"{BASE}/{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"])
    resources = [entry["resource"] for entry in bundle["entry"]]
    validate(resources)
    return resources


async def _bound_patient(db: Database) -> Patient:
    async with db.session() as session:
        uid = (await session.execute(select(User.id).where(User.username == "patient"))).scalar_one()
        return (await session.execute(select(Patient).where(Patient.wechat_user_id == uid))).scalar_one()


async def test_every_record_kind_validates_and_resolves(client: GraphQLClient, db: Database) -> None:
    patient = await _bound_patient(db)
    async with db.session() as session:
        open_follow_up, to_record = (
            (
                await session.execute(
                    select(FollowUp.id)
                    .where(FollowUp.patient_id == patient.id, FollowUp.status == "scheduled")
                    .order_by(FollowUp.id)
                )
            )
            .scalars()
            .all()[:2]
        )
        plan = (
            (await session.execute(select(TreatmentPlan).where(TreatmentPlan.patient_id == patient.id)))
            .scalars()
            .first()
        )
    assert plan is not None
    # The patient answers a follow-up from the phone (not yet confirmed); a physician amends a plan.
    await client.data(RESPOND, {"id": gid("FollowUp", open_follow_up)}, as_="patient")
    await client.data(AMEND_PLAN, {"id": gid("TreatmentPlan", plan.id), "v": plan.version}, as_="physician")
    await client.data(RECORD, {"id": gid("FollowUp", to_record)}, as_="physician")

    resources = await _bundle(client, patient.id, "chief")
    kinds = Counter(r["resourceType"] for r in resources)
    assert set(kinds) >= {
        "Patient",
        "Encounter",
        "Condition",
        "CarePlan",
        "Observation",
        "QuestionnaireResponse",
        "Communication",
        "Provenance",
    }, kinds

    (answer,) = of_type(resources, "QuestionnaireResponse")
    assert answer["id"] == str(open_follow_up) and answer["status"] == "completed"
    assert {item["linkId"]: item["answer"][0] for item in answer["item"]} == {
        "text": {"valueString": "好多了"},
        "painScore": {"valueInteger": 2},
        "bleeding": {"valueBoolean": False},
        "satisfaction": {"valueInteger": 5},
    }
    assert answer["basedOn"][0]["reference"].startswith("CarePlan/protocol-")

    provenance = [
        p for p in of_type(resources, "Provenance") if p["target"] == [{"reference": f"CarePlan/plan-{plan.id}"}]
    ]
    assert len(provenance) == 1 and provenance[0]["reason"] == [{"text": "复查后调整"}]
    assert provenance[0]["activity"]["coding"][0]["code"] == "UPDATE"
    assert provenance[0]["agent"][0]["who"]["display"]  # the physician's name, as the chief's schema shows it
    (amended,) = [c for c in of_type(resources, "CarePlan") if c["id"] == f"plan-{plan.id}"]
    assert amended["description"] == "改为保守治疗"

    messages = of_type(resources, "Communication")
    assert [m["payload"][0]["contentString"] for m in messages] == [
        "张主任您好，复查结果出来了，需要再来门诊吗？",
        "结果正常，三个月后复查即可。",
    ]
    # the patient's own message: sent by the Patient resource, to the chief (a logical reference by staff id)
    assert messages[0]["sender"] == {"reference": f"Patient/{patient.id}"}
    assert messages[0]["recipient"][0]["identifier"]["system"] == f"{BASE}/sid/staff"


async def test_codings_and_units(client: GraphQLClient, db: Database) -> None:
    async with db.session() as session:
        patient_id = (
            (
                await session.execute(
                    select(FollowUp.patient_id).where(FollowUp.status == "completed").order_by(FollowUp.patient_id)
                )
            )
            .scalars()
            .first()
        )
    assert patient_id is not None
    resources = await _bundle(client, patient_id, "admin")
    async with db.session() as session:
        diagnoses = {
            d.id: d
            for d in (await session.execute(select(Diagnosis).where(Diagnosis.patient_id == patient_id))).scalars()
        }
    conditions = of_type(resources, "Condition")
    assert {int(c["id"]) for c in conditions} == set(diagnoses)
    for condition in conditions:
        row = diagnoses[int(condition["id"])]
        codings = condition["code"]["coding"]
        assert codings[0] == {
            "system": "http://hl7.org/fhir/sid/icd-10",
            "code": row.icd10_code,
            "display": row.icd10_name,
        }
        if row.tcm_syndrome:
            assert codings[1] == {
                "system": f"{BASE}/CodeSystem/tcm-syndrome",
                "code": row.tcm_syndrome,
                "display": row.tcm_syndrome,
            }
        else:
            assert len(codings) == 1
        assert condition["encounter"]["reference"].startswith("Encounter/")
    observations = of_type(resources, "Observation")
    assert observations
    for observation in observations:
        assert observation["category"][0]["coding"][0]["code"] == "survey"
        for component in observation.get("component", []):
            systems = [c["system"] for c in component["code"]["coding"]]
            assert f"{BASE}/CodeSystem/follow-up-measure" in systems
            if component["code"]["coding"][-1]["code"] == "pain-score":
                assert component["code"]["coding"][0] == {
                    "system": "http://loinc.org",
                    "code": "72514-3",
                    "display": "Pain severity 0-10 verbal numeric rating",
                }
            if "valueQuantity" in component:
                assert component["valueQuantity"]["system"] == "http://unitsofmeasure.org"
                assert component["valueQuantity"]["code"] == "{score}"
    # each completed follow-up is an outcome of its protocol's CarePlan
    outcomes = {
        o["reference"]
        for plan in of_type(resources, "CarePlan")
        for activity in plan.get("activity", [])
        for o in activity.get("outcomeReference", [])
    }
    assert outcomes == {f"Observation/{o['id']}" for o in observations if "basedOn" in o}


async def test_messages_only_to_those_who_may_read_them(client: GraphQLClient, db: Database) -> None:
    """The physician attends the patient but takes no part in the conversation (with the chief) and does not
    manage consultations: their bundle has no Communication; the chief's has it."""
    patient = await _bound_patient(db)
    physician = await _bundle(client, patient.id, "physician")
    assert of_type(physician, "Communication") == []
    assert "张主任您好" not in str(physician)
    assert of_type(physician, "Encounter")  # the rest of the record is theirs
    chief = await _bundle(client, patient.id, "chief")
    assert len(of_type(chief, "Communication")) == 2


async def test_a_record_kind_hidden_from_a_role_leaves_its_references_out(client: GraphQLClient, db: Database) -> None:
    """Without Patient.visits in the physician's schema, no Encounter, and no Condition or report points at one."""
    patient = await _bound_patient(db)
    revoke = 'mutation { revokePermission(roleKey: "physician", object: "Patient.visits", action: "read") { key } }'
    await client.data(revoke, as_="admin")
    resources = await _bundle(client, patient.id, "physician")
    assert of_type(resources, "Encounter") == []
    assert of_type(resources, "Condition") and all("encounter" not in c for c in of_type(resources, "Condition"))
    assert "Encounter/" not in str(resources)


async def test_appointments_become_appointment_and_slot(client: GraphQLClient, db: Database) -> None:
    from models.appointment import Appointment

    async with db.session() as session:
        booked = (await session.execute(select(Appointment).order_by(Appointment.id))).scalars().first()
    assert booked is not None
    resources = await _bundle(client, booked.patient_id, "admin")
    appointments = {a["id"]: a for a in of_type(resources, "Appointment")}
    slots = {s["id"]: s for s in of_type(resources, "Slot")}
    appointment = appointments[str(booked.id)]
    assert appointment["slot"] == [{"reference": f"Slot/{booked.id}"}]
    assert appointment["participant"][0]["actor"] == {"reference": f"Patient/{booked.patient_id}"}
    # the Slot belongs to the session's Schedule, exported once in the bundle with the physician as its actor
    assert slots[str(booked.id)]["schedule"] == {"reference": f"Schedule/{booked.schedule_id}"}
    schedules = {s["id"]: s for s in of_type(resources, "Schedule")}
    schedule = schedules[str(booked.schedule_id)]
    assert len(of_type(resources, "Schedule")) == len({s["schedule"]["reference"] for s in slots.values()})
    assert schedule["identifier"] == [{"system": f"{BASE}/sid/schedule", "value": str(booked.schedule_id)}]
    assert schedule["actor"][0]["type"] == "Practitioner" and schedule["actor"][0]["display"]
    assert schedule["actor"][0]["identifier"]["system"] == f"{BASE}/sid/staff"
    assert schedule["planningHorizon"]["start"] < schedule["planningHorizon"]["end"]

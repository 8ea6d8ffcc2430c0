"""A patient's record as an HL7 FHIR R4 Bundle (Patient, Encounter, Condition, DiagnosticReport,
CarePlan, Observation), for exchange with other hospital systems.

Sensitive values follow the caller's policy: whole, masked, or left out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.timeutil import utcnow
from models.clinical import Diagnosis, ExamReport, FollowUp, TreatmentPlan, Visit
from models.patient import Patient
from resolvers.data.context import Context

ICD10 = "http://hl7.org/fhir/sid/icd-10"
LOINC = "http://loinc.org"
RESIDENT_ID_SYSTEM = "urn:oid:2.16.156.10011.1.1"  # PRC resident identity card
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
ENCOUNTER_CLASS = {"outpatient": "AMB", "inpatient": "IMP", "surgery": "IMP", "teleconsultation": "VR"}
PLAN_STATUS = {"planned": "draft", "active": "active", "completed": "completed", "stopped": "revoked"}
EXAM_LOINC = {
    "colonoscopy": ("18746-8", "Colonoscopy study"),
    "pathology": ("60567-5", "Comprehensive pathology report panel"),
    "imaging": ("18748-4", "Diagnostic imaging study"),
    "laboratory": ("11502-2", "Laboratory report"),
    "anoscopy": ("28633-6", "Anoscopy study"),
}

Shown = Callable[[str, str | None], str | None]


def _ref(kind: str, pk: int | None) -> dict[str, str]:
    return {"reference": f"{kind}/{pk}"}


def _entry(resource: dict[str, Any]) -> dict[str, Any]:
    return {"fullUrl": f"urn:uuid:{resource['resourceType'].lower()}-{resource['id']}", "resource": resource}


def _patient(patient: Patient, shown: Shown) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": str(patient.id),
        "active": patient.voided_at is None,
        "name": [{"text": patient.name}],
        "gender": patient.gender if patient.gender in ("male", "female", "other", "unknown") else "unknown",
    }
    if patient.birth_date:
        resource["birthDate"] = patient.birth_date.isoformat()
    id_number = shown("idNumber", patient.id_number)
    if id_number:
        resource["identifier"] = [{"system": RESIDENT_ID_SYSTEM, "value": id_number}]
    phone = shown("phone", patient.phone)
    if phone:
        resource["telecom"] = [{"system": "phone", "value": phone, "use": "mobile"}]
    if patient.address:
        resource["address"] = [{"text": patient.address}]
    if patient.merged_into_id:
        resource["link"] = [{"other": _ref("Patient", patient.merged_into_id), "type": "replaced-by"}]
    return resource


def _encounter(visit: Visit) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": str(visit.id),
        "status": "entered-in-error" if visit.voided_at else "finished",
        "class": {"system": ACT_CODE, "code": ENCOUNTER_CLASS.get(visit.visit_type, "AMB")},
        "type": [{"text": visit.visit_type}],
        "subject": _ref("Patient", visit.patient_id),
        "period": {"start": visit.visit_date.isoformat()},
    }
    if visit.chief_complaint:
        resource["reasonCode"] = [{"text": visit.chief_complaint}]
    return resource


def _condition(diagnosis: Diagnosis) -> dict[str, Any]:
    status = "entered-in-error" if diagnosis.voided_at else "confirmed"
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": str(diagnosis.id),
        "verificationStatus": {"coding": [{"system": CONDITION_VERIFICATION, "code": status}]},
        "category": [{"coding": [{"system": CONDITION_CATEGORY, "code": "encounter-diagnosis"}]}],
        "code": {
            "coding": [{"system": ICD10, "code": diagnosis.icd10_code, "display": diagnosis.icd10_name}],
            "text": diagnosis.icd10_name,
        },
        "subject": _ref("Patient", diagnosis.patient_id),
        "encounter": _ref("Encounter", diagnosis.visit_id),
    }
    if diagnosis.tcm_syndrome:
        resource["note"] = [{"text": f"TCM syndrome: {diagnosis.tcm_syndrome}"}]
    return resource


def _report(report: ExamReport) -> dict[str, Any]:
    code, display = EXAM_LOINC.get(report.kind, ("11502-2", report.kind))
    resource: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": str(report.id),
        "status": "entered-in-error" if report.voided_at else "final",
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": report.kind},
        "subject": _ref("Patient", report.patient_id),
        "effectiveDateTime": report.exam_date.isoformat(),
    }
    if report.visit_id:
        resource["encounter"] = _ref("Encounter", report.visit_id)
    if report.conclusion:
        resource["conclusion"] = report.conclusion
    return resource


def _care_plan(plan: TreatmentPlan) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "CarePlan",
        "id": str(plan.id),
        "status": "entered-in-error" if plan.voided_at else PLAN_STATUS.get(plan.status, "unknown"),
        "intent": "plan",
        "category": [{"text": plan.plan_type}],
        "description": plan.description,
        "subject": _ref("Patient", plan.patient_id),
    }
    period = {}
    if plan.start_date:
        period["start"] = plan.start_date.isoformat()
    if plan.end_date:
        period["end"] = plan.end_date.isoformat()
    if period:
        resource["period"] = period
    if plan.diagnosis_id:
        resource["addresses"] = [_ref("Condition", plan.diagnosis_id)]
    return resource


def _observation(follow_up: FollowUp) -> dict[str, Any] | None:
    """A completed follow-up's measures as one Observation with a component per measure."""
    if follow_up.status != "completed":
        return None
    components = []
    measures: list[tuple[str, str | None, Any]] = [
        ("Pain severity 0-10", "72514-3", follow_up.pain_score),
        ("Wexner continence score 0-20", None, follow_up.wexner_score),
        ("Patient satisfaction 1-5", None, follow_up.satisfaction),
    ]
    for text, loinc, value in measures:
        if value is not None:
            code: dict[str, Any] = {"text": text}
            if loinc:
                code["coding"] = [{"system": LOINC, "code": loinc, "display": text}]
            components.append({"code": code, "valueInteger": value})
    for text, flag in (("Rectal bleeding", follow_up.bleeding), ("Recurrence", follow_up.recurrence)):
        if flag is not None:
            components.append({"code": {"text": text}, "valueBoolean": flag})
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": str(follow_up.id),
        "status": "entered-in-error" if follow_up.voided_at else "final",
        "code": {"text": "Post-treatment follow-up"},
        "subject": _ref("Patient", follow_up.patient_id),
        "effectiveDateTime": (follow_up.recorded_at or utcnow()).isoformat(),
        "component": components,
    }
    if follow_up.outcome_text:
        resource["note"] = [{"text": follow_up.outcome_text}]
    return resource


async def patient_bundle(ctx: Context, patient: Patient, shown: Shown) -> dict[str, Any]:
    """Everything of one (already scope-checked and read-recorded) patient, as a FHIR R4 collection."""
    loaders = ctx.loaders
    pk = patient.id or 0
    entries = [_entry(_patient(patient, shown))]
    entries += [_entry(_encounter(v)) for v in await loaders.visits_by_patient_id.load(pk)]
    entries += [_entry(_condition(d)) for d in await loaders.diagnoses_by_patient_id.load(pk)]
    entries += [_entry(_report(r)) for r in await loaders.exam_reports_by_patient_id.load(pk)]
    entries += [_entry(_care_plan(p)) for p in await loaders.plans_by_patient_id.load(pk)]
    for follow_up in await loaders.follow_ups_by_patient_id.load(pk):
        observation = _observation(follow_up)
        if observation:
            entries.append(_entry(observation))
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": utcnow().isoformat(),
        "entry": entries,
    }

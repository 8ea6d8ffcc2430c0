"""A patient's record as an HL7 FHIR R4 Bundle (Patient, Encounter, Condition, DiagnosticReport,
CarePlan, Observation), for exchange with other hospital systems.

Every value follows the same field decision as the GraphQL field it comes from (policies/decision.py): whole,
masked, or left out where the caller's schema does not show that field. A kind of record whose list field on
Patient is not shown is left out, and so is a resource whose defining value is not shown (a DiagnosticReport
without its kind). Records come through the scoped loaders: voided ones only to those who see them
(policies/voided.py), marked entered-in-error.
"""

from __future__ import annotations

from typing import Any

from core.timeutil import utcnow
from models.clinical import Diagnosis, ExamReport, FollowUp, TreatmentPlan, Visit
from models.patient import Patient
from policies.decision import FieldDecision
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


class Shown:
    """The values of one type's fields as the caller's schema shows them (None: not shown)."""

    def __init__(self, decision: FieldDecision, type_name: str) -> None:
        self._decision = decision
        self._type = type_name

    def __call__(self, field: str, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            return self._decision.shown(self._type, field, value)
        return value if self._decision.visible(self._type, field) else None

    def visible(self, field: str) -> bool:
        return self._decision.visible(self._type, field)


def _ref(kind: str, pk: int | None) -> dict[str, str]:
    return {"reference": f"{kind}/{pk}"}


def _entry(resource: dict[str, Any]) -> dict[str, Any]:
    return {"fullUrl": f"urn:uuid:{resource['resourceType'].lower()}-{resource['id']}", "resource": resource}


def _patient(patient: Patient, shown: Shown) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "Patient", "id": str(patient.id)}
    if shown.visible("voided"):
        resource["active"] = patient.voided_at is None
    name = shown("name", patient.name)
    if name:
        resource["name"] = [{"text": name}]
    gender = shown("gender", patient.gender)
    if gender:
        resource["gender"] = gender if gender in ("male", "female", "other", "unknown") else "unknown"
    birth_date = shown("birthDate", patient.birth_date)
    if birth_date:
        resource["birthDate"] = birth_date.isoformat()
    id_number = shown("idNumber", patient.id_number)
    if id_number:
        resource["identifier"] = [{"system": RESIDENT_ID_SYSTEM, "value": id_number}]
    phone = shown("phone", patient.phone)
    if phone:
        resource["telecom"] = [{"system": "phone", "value": phone, "use": "mobile"}]
    address = shown("address", patient.address)
    if address:
        resource["address"] = [{"text": address}]
    merged_into = shown("mergedIntoId", patient.merged_into_id)
    if merged_into:
        resource["link"] = [{"other": _ref("Patient", merged_into), "type": "replaced-by"}]
    return resource


def _encounter(visit: Visit, shown: Shown) -> dict[str, Any] | None:
    visit_type = shown("visitType", visit.visit_type)
    if visit_type is None:  # the class an Encounter must have
        return None
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": str(visit.id),
        "status": "entered-in-error" if visit.voided_at else "finished",
        "class": {"system": ACT_CODE, "code": ENCOUNTER_CLASS.get(visit_type, "AMB")},
        "type": [{"text": visit_type}],
        "subject": _ref("Patient", visit.patient_id),
    }
    visit_date = shown("visitDate", visit.visit_date)
    if visit_date:
        resource["period"] = {"start": visit_date.isoformat()}
    complaint = shown("chiefComplaint", visit.chief_complaint)
    if complaint:
        resource["reasonCode"] = [{"text": complaint}]
    return resource


def _condition(diagnosis: Diagnosis, shown: Shown) -> dict[str, Any] | None:
    code = shown("icd10Code", diagnosis.icd10_code)
    if code is None:
        return None
    status = "entered-in-error" if diagnosis.voided_at else "confirmed"
    coding: dict[str, Any] = {"system": ICD10, "code": code}
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": str(diagnosis.id),
        "verificationStatus": {"coding": [{"system": CONDITION_VERIFICATION, "code": status}]},
        "category": [{"coding": [{"system": CONDITION_CATEGORY, "code": "encounter-diagnosis"}]}],
        "code": {"coding": [coding]},
        "subject": _ref("Patient", diagnosis.patient_id),
    }
    name = shown("icd10Name", diagnosis.icd10_name)
    if name:
        coding["display"] = name
        resource["code"]["text"] = name
    if shown.visible("visitId"):
        resource["encounter"] = _ref("Encounter", diagnosis.visit_id)
    syndrome = shown("tcmSyndrome", diagnosis.tcm_syndrome)
    if syndrome:
        resource["note"] = [{"text": f"TCM syndrome: {syndrome}"}]
    return resource


def _report(report: ExamReport, shown: Shown) -> dict[str, Any] | None:
    kind = shown("kind", report.kind)
    if kind is None:  # the code a DiagnosticReport must have
        return None
    code, display = EXAM_LOINC.get(kind, ("11502-2", kind))
    resource: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": str(report.id),
        "status": "entered-in-error" if report.voided_at else "final",
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": kind},
        "subject": _ref("Patient", report.patient_id),
    }
    exam_date = shown("examDate", report.exam_date)
    if exam_date:
        resource["effectiveDateTime"] = exam_date.isoformat()
    visit_id = shown("visitId", report.visit_id)
    if visit_id:
        resource["encounter"] = _ref("Encounter", visit_id)
    conclusion = shown("conclusion", report.conclusion)
    if conclusion:
        resource["conclusion"] = conclusion
    return resource


def _care_plan(plan: TreatmentPlan, shown: Shown) -> dict[str, Any] | None:
    plan_type = shown("planType", plan.plan_type)
    if plan_type is None:
        return None
    status = shown("status", plan.status)
    resource: dict[str, Any] = {
        "resourceType": "CarePlan",
        "id": str(plan.id),
        "status": "entered-in-error" if plan.voided_at else PLAN_STATUS.get(status or "", "unknown"),
        "intent": "plan",
        "category": [{"text": plan_type}],
        "subject": _ref("Patient", plan.patient_id),
    }
    description = shown("description", plan.description)
    if description:
        resource["description"] = description
    period = {}
    start, end = shown("startDate", plan.start_date), shown("endDate", plan.end_date)
    if start:
        period["start"] = start.isoformat()
    if end:
        period["end"] = end.isoformat()
    if period:
        resource["period"] = period
    diagnosis_id = shown("diagnosisId", plan.diagnosis_id)
    if diagnosis_id:
        resource["addresses"] = [_ref("Condition", diagnosis_id)]
    return resource


def _observation(follow_up: FollowUp, shown: Shown) -> dict[str, Any] | None:
    """A completed follow-up's measures as one Observation with a component per measure."""
    if shown("status", follow_up.status) != "completed":
        return None
    components = []
    measures: list[tuple[str, str | None, Any]] = [
        ("Pain severity 0-10", "72514-3", shown("painScore", follow_up.pain_score)),
        ("Wexner continence score 0-20", None, shown("wexnerScore", follow_up.wexner_score)),
        ("Patient satisfaction 1-5", None, shown("satisfaction", follow_up.satisfaction)),
    ]
    for text, loinc, value in measures:
        if value is not None:
            code: dict[str, Any] = {"text": text}
            if loinc:
                code["coding"] = [{"system": LOINC, "code": loinc, "display": text}]
            components.append({"code": code, "valueInteger": value})
    flags = (
        ("Rectal bleeding", shown("bleeding", follow_up.bleeding)),
        ("Recurrence", shown("recurrence", follow_up.recurrence)),
    )
    for text, flag in flags:
        if flag is not None:
            components.append({"code": {"text": text}, "valueBoolean": flag})
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": str(follow_up.id),
        "status": "entered-in-error" if follow_up.voided_at else "final",
        "code": {"text": "Post-treatment follow-up"},
        "subject": _ref("Patient", follow_up.patient_id),
        "component": components,
    }
    if shown.visible("recordedAt"):
        resource["effectiveDateTime"] = (follow_up.recorded_at or utcnow()).isoformat()
    outcome = shown("outcomeText", follow_up.outcome_text)
    if outcome:
        resource["note"] = [{"text": outcome}]
    return resource


async def patient_bundle(ctx: Context, patient: Patient) -> dict[str, Any]:
    """Everything of one (already scope-checked and read-recorded) patient the caller's schema shows, as a FHIR
    R4 collection."""
    decision = (await ctx.access()).decision
    on_patient = Shown(decision, "Patient")
    loaders = ctx.loaders
    pk = patient.id or 0
    entries = [_entry(_patient(patient, on_patient))]
    kinds: list[tuple[str, Any, str, Any]] = [
        ("visits", loaders.visits_by_patient_id, "Visit", _encounter),
        ("diagnoses", loaders.diagnoses_by_patient_id, "Diagnosis", _condition),
        ("examReports", loaders.exam_reports_by_patient_id, "ExamReport", _report),
        ("treatmentPlans", loaders.plans_by_patient_id, "TreatmentPlan", _care_plan),
        ("followUps", loaders.follow_ups_by_patient_id, "FollowUp", _observation),
    ]
    for field, loader, type_name, resource_of in kinds:
        if not on_patient.visible(field):
            continue
        shown = Shown(decision, type_name)
        for row in await loader.load(pk):
            resource = resource_of(row, shown)
            if resource is not None:
                entries.append(_entry(resource))
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": utcnow().isoformat(),
        "entry": entries,
    }

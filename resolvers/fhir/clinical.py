"""Clinical records as FHIR: visits (Encounter), diagnoses (Condition: ICD-10, and the TCM syndrome as a second
coding), exam reports (DiagnosticReport), treatment plans and applied follow-up protocols (CarePlan), recorded
follow-up outcomes (Observation), and a patient's own answer not yet confirmed (QuestionnaireResponse).

Rows come through the caller's scoped loaders (voided ones only to those who see them, marked entered-in-error);
each kind applies only where the caller's schema shows the patient's list field of it, and each value as its
field shows it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from models.clinical import Diagnosis, ExamReport, FollowUp, FollowUpProtocol, TreatmentPlan, Visit
from resolvers.fhir.common import (
    ACT_CODE,
    CONDITION_CATEGORY,
    CONDITION_VERIFICATION,
    ICD10,
    LOINC,
    OBSERVATION_CATEGORY,
    UCUM,
    Built,
    Shared,
    View,
    day,
    instant,
    ref,
)
from resolvers.fhir.registry import ResourceKind, register

if TYPE_CHECKING:
    from resolvers.data.context import Context

ENCOUNTER_CLASS = {"outpatient": "AMB", "inpatient": "IMP", "surgery": "IMP", "teleconsultation": "VR"}
PLAN_STATUS = {"planned": "draft", "active": "active", "completed": "completed", "stopped": "revoked"}
EXAM_LOINC = {
    "colonoscopy": ("18746-8", "Colonoscopy study"),
    "pathology": ("60567-5", "Comprehensive pathology report panel"),
    "imaging": ("18748-4", "Diagnostic imaging study"),
    "laboratory": ("11502-2", "Laboratory report"),
    "anoscopy": ("28633-6", "Anoscopy study"),
}
# A follow-up's place in a protocol, as a CarePlan activity's status.
ACTIVITY_STATUS = {"scheduled": "scheduled", "completed": "completed", "missed": "stopped", "cancelled": "cancelled"}
SCORE = {"unit": "score", "system": UCUM, "code": "{score}"}


def _loader(model: Any) -> Any:
    async def load(ctx: Context, patient_ids: Sequence[int], shared: Shared) -> dict[int, list[Any]]:
        found = await ctx.loaders.of_patients(model, None).load_many(list(patient_ids))
        rows = dict(zip(patient_ids, found, strict=True))
        for patient_rows in rows.values():
            for row in patient_rows:
                for column in ("physician_id", "created_by_id", "author_id", "recorded_by_id"):
                    user_id = getattr(row, column, None)
                    if user_id is not None:
                        shared.want_staff.add(user_id)
        return rows

    return load


def _status(row: Any, live: str) -> str:
    return "entered-in-error" if row.voided_at is not None else live


def _meta(view: View, entity_type: str, row: Any, *instants: Any) -> dict[str, Any]:
    return view.last_updated(entity_type, row, row.created_at, row.voided_at, *instants)


# ---- visits -------------------------------------------------------------------------------------


def _encounters(rows: list[Any], view: View) -> list[Built]:
    shown = view.shown("Visit")
    built = []
    for visit in rows:
        visit_type = shown("visitType", visit.visit_type)
        if visit_type is None:  # the class an Encounter must have
            continue
        resource: dict[str, Any] = {
            "resourceType": "Encounter",
            "id": str(visit.id),
            "meta": _meta(view, "Visit", visit),
            "status": _status(visit, "finished"),
            "class": {"system": ACT_CODE, "code": ENCOUNTER_CLASS.get(visit_type, "AMB")},
            "type": [{"coding": [{"system": view.systems.visit_type, "code": visit_type}], "text": visit_type}],
            "subject": ref("Patient", visit.patient_id),
        }
        visit_date = shown("visitDate", visit.visit_date)
        if visit_date:
            resource["period"] = {"start": visit_date.isoformat()}
        if shown.visible("physicianName"):
            physician = view.staff(visit.physician_id, shown=True)
            if physician:
                resource["participant"] = [{"individual": physician}]
        complaint = shown("chiefComplaint", visit.chief_complaint)
        if complaint:
            resource["reasonCode"] = [{"text": complaint}]
        built.append(Built(resource, ("Visit", int(visit.id))))
    return built


# ---- diagnoses ----------------------------------------------------------------------------------


def _conditions(rows: list[Any], view: View) -> list[Built]:
    shown = view.shown("Diagnosis")
    built = []
    for diagnosis in rows:
        code = shown("icd10Code", diagnosis.icd10_code)
        if code is None:
            continue
        icd10: dict[str, Any] = {"system": ICD10, "code": code}
        concept: dict[str, Any] = {"coding": [icd10]}
        name = shown("icd10Name", diagnosis.icd10_name)
        if name:
            icd10["display"] = name
            concept["text"] = name
        syndrome = shown("tcmSyndrome", diagnosis.tcm_syndrome)
        if syndrome:
            # The TCM syndrome differentiation, a second coding of the same condition (a local code system).
            concept["coding"].append({"system": view.systems.tcm_syndrome, "code": syndrome, "display": syndrome})
        resource: dict[str, Any] = {
            "resourceType": "Condition",
            "id": str(diagnosis.id),
            "meta": _meta(view, "Diagnosis", diagnosis),
            "verificationStatus": {
                "coding": [{"system": CONDITION_VERIFICATION, "code": _status(diagnosis, "confirmed")}]
            },
            "category": [{"coding": [{"system": CONDITION_CATEGORY, "code": "encounter-diagnosis"}]}],
            "code": concept,
            "subject": ref("Patient", diagnosis.patient_id),
            "recordedDate": diagnosis.created_at.isoformat(),
        }
        if shown.visible("visitId"):
            resource["encounter"] = ref("Encounter", diagnosis.visit_id)
        built.append(Built(resource, ("Diagnosis", int(diagnosis.id))))
    return built


# ---- exam reports -------------------------------------------------------------------------------


def _reports(rows: list[Any], view: View) -> list[Built]:
    shown = view.shown("ExamReport")
    built = []
    for report in rows:
        kind = shown("kind", report.kind)
        if kind is None:  # the code a DiagnosticReport must have
            continue
        code, display = EXAM_LOINC.get(kind, ("11502-2", kind))
        resource: dict[str, Any] = {
            "resourceType": "DiagnosticReport",
            "id": str(report.id),
            "meta": _meta(view, "ExamReport", report),
            "status": _status(report, "final"),
            "code": {
                "coding": [
                    {"system": LOINC, "code": code, "display": display},
                    {"system": view.systems.exam_kind, "code": kind},
                ],
                "text": kind,
            },
            "subject": ref("Patient", report.patient_id),
        }
        exam_date = shown("examDate", report.exam_date)
        if exam_date:
            resource["effectiveDateTime"] = exam_date.isoformat()
        visit_id = shown("visitId", report.visit_id)
        if visit_id:
            resource["encounter"] = ref("Encounter", visit_id)
        conclusion = shown("conclusion", report.conclusion)
        if conclusion:
            resource["conclusion"] = conclusion
        built.append(Built(resource, ("ExamReport", int(report.id))))
    return built


# ---- treatment plans ----------------------------------------------------------------------------


def _plans(rows: list[Any], view: View) -> list[Built]:
    shown = view.shown("TreatmentPlan")
    built = []
    for plan in rows:
        plan_type = shown("planType", plan.plan_type)
        if plan_type is None:
            continue
        status = shown("status", plan.status)
        resource: dict[str, Any] = {
            "resourceType": "CarePlan",
            "id": f"plan-{plan.id}",
            "meta": _meta(view, "TreatmentPlan", plan, plan.updated_at),
            "status": _status(plan, PLAN_STATUS.get(status or "", "unknown")),
            "intent": "plan",
            "category": [{"coding": [{"system": view.systems.plan_type, "code": plan_type}], "text": plan_type}],
            "subject": ref("Patient", plan.patient_id),
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
        if shown.visible("authorName"):
            author = view.staff(plan.author_id, shown=True)
            if author:
                resource["author"] = author
        diagnosis_id = shown("diagnosisId", plan.diagnosis_id)
        if diagnosis_id:
            resource["addresses"] = [ref("Condition", diagnosis_id)]
        built.append(Built(resource, ("TreatmentPlan", int(plan.id))))
    return built


# ---- follow-ups: protocols applied (CarePlan), outcomes (Observation), answers (QuestionnaireResponse) ----


async def _load_follow_ups(ctx: Context, patient_ids: Sequence[int], shared: Shared) -> dict[int, list[Any]]:
    rows: dict[int, list[Any]] = await _loader(FollowUp)(ctx, patient_ids, shared)
    if "protocols" not in shared.extra:
        statement = await ctx.data.select(FollowUpProtocol, FollowUpProtocol.id, FollowUpProtocol.name)
        shared.extra["protocols"] = dict(await ctx.data.rows(statement))
    return rows


def protocol_plan_id(follow_up: Any) -> str:
    return f"protocol-{follow_up.patient_id}-{follow_up.visit_id or 0}-{follow_up.protocol_id}"


def _follow_ups(rows: list[Any], view: View) -> list[Built]:
    shown = view.shown("FollowUp")
    if not (shown.visible("dueDate") and shown.visible("status")):
        return []
    built = _protocol_plans(rows, view)
    for follow_up in rows:
        if follow_up.status == "completed":
            built.append(_observation(follow_up, view))
        elif follow_up.status == "scheduled" and follow_up.response_at is not None:
            answer = _questionnaire_response(follow_up, view)
            if answer is not None:
                built.append(answer)
    return built


def _protocol_plans(rows: list[Any], view: View) -> list[Built]:
    shown = view.shown("FollowUp")
    groups: dict[str, list[Any]] = defaultdict(list)
    for follow_up in rows:
        if follow_up.protocol_id is not None:
            groups[protocol_plan_id(follow_up)].append(follow_up)
    protocols: dict[int, str] = view.shared.extra.get("protocols", {})
    built = []
    for plan_id, members in groups.items():
        first = members[0]
        live = [row for row in members if row.voided_at is None]
        status = "entered-in-error" if not live else "active"
        if live and all(row.status != "scheduled" for row in live):
            status = "completed"
        activities = []
        for follow_up in members:
            detail: dict[str, Any] = {
                "status": _status(follow_up, ACTIVITY_STATUS.get(follow_up.status, "unknown")),
                "code": {"text": f"Follow-up, day {follow_up.offset_days}" if follow_up.offset_days else "Follow-up"},
                "scheduledPeriod": {"start": follow_up.due_date.isoformat()},
            }
            method = shown("method", follow_up.method)
            if method:
                detail["description"] = f"by {method}"
            activity: dict[str, Any] = {"detail": detail}
            if follow_up.status == "completed":
                activity["outcomeReference"] = [ref("Observation", follow_up.id)]
            activities.append(activity)
        dues = [row.due_date for row in members]
        resource: dict[str, Any] = {
            "resourceType": "CarePlan",
            "id": plan_id,
            "status": status,
            "intent": "plan",
            "category": [
                {"coding": [{"system": view.systems.protocol, "code": str(first.protocol_id)}], "text": "follow-up"}
            ],
            "subject": ref("Patient", first.patient_id),
            "period": {"start": day(min(dues)), "end": day(max(dues))},
            "activity": activities,
        }
        name = protocols.get(first.protocol_id)
        if name and view.shared.visible("FollowUpProtocol", "name"):
            resource["title"] = name
            resource["category"][0]["coding"][0]["display"] = name
        if first.visit_id is not None and shown.visible("visitId"):
            resource["encounter"] = ref("Encounter", first.visit_id)
        updated = [
            view.last_updated("FollowUp", row, row.created_at, row.recorded_at, row.voided_at) for row in members
        ]
        stamps = [meta["lastUpdated"] for meta in updated if meta]
        if stamps:
            resource["meta"] = {"lastUpdated": max(stamps)}
        built.append(Built(resource, None))
    return built


def _measure(code: str, text: str, loinc: str | None, view: View) -> dict[str, Any]:
    """A measure's CodeableConcept, made once per batch (the same object in every resource: nothing changes it)."""
    concepts: dict[str, dict[str, Any]] = view.shared.extra.setdefault("measures", {})
    found = concepts.get(code)
    if found is None:
        coding = [{"system": view.systems.measure, "code": code, "display": text}]
        if loinc:
            coding.insert(0, {"system": LOINC, "code": loinc, "display": text})
        found = concepts[code] = {"coding": coding, "text": text}
    return found


# (field, local code, text, LOINC where one exists, kind)
MEASURES: tuple[tuple[str, str, str, str | None, str], ...] = (
    ("painScore", "pain-score", "Pain severity 0-10 verbal numeric rating", "72514-3", "score"),
    ("wexnerScore", "wexner-score", "Wexner (Cleveland Clinic) incontinence score 0-20", None, "score"),
    ("satisfaction", "satisfaction", "Patient satisfaction with treatment 1-5", None, "score"),
    ("bleeding", "bleeding", "Rectal bleeding since treatment", None, "boolean"),
    ("recurrence", "recurrence", "Recurrence of the treated condition", None, "boolean"),
)
_COLUMN = {
    "painScore": "pain_score",
    "wexnerScore": "wexner_score",
    "satisfaction": "satisfaction",
    "bleeding": "bleeding",
    "recurrence": "recurrence",
}


def _observation(follow_up: Any, view: View) -> Built:
    """A recorded outcome: one Observation, a component per measure (LOINC where one exists, UCUM units)."""
    shown = view.shown("FollowUp")
    components = []
    for field_name, code, text, loinc, kind in MEASURES:
        value = shown(field_name, getattr(follow_up, _COLUMN[field_name]))
        if value is None:
            continue
        component: dict[str, Any] = {"code": _measure(code, text, loinc, view)}
        if kind == "score":
            component["valueQuantity"] = {"value": value, **SCORE}
        else:
            component["valueBoolean"] = value
        components.append(component)
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": str(follow_up.id),
        "meta": _meta(view, "FollowUp", follow_up, follow_up.recorded_at),
        "status": _status(follow_up, "final"),
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "survey"}]}],
        "code": _measure("follow-up-outcome", "Post-treatment follow-up outcome", None, view),
        "subject": ref("Patient", follow_up.patient_id),
    }
    if follow_up.protocol_id is not None:
        resource["basedOn"] = [ref("CarePlan", protocol_plan_id(follow_up))]
    recorded_at = shown("recordedAt", follow_up.recorded_at)
    resource["effectiveDateTime"] = instant(recorded_at) or follow_up.due_date.isoformat()
    if shown.visible("recordedByName"):
        performer = view.staff(follow_up.recorded_by_id, shown=True)
        if performer:
            resource["performer"] = [performer]
    if components:
        resource["component"] = components
    outcome = shown("outcomeText", follow_up.outcome_text)
    if outcome:
        resource["note"] = [{"text": outcome}]
    return Built(resource, ("FollowUp", int(follow_up.id)))


ANSWERS: tuple[tuple[str, str, str, str], ...] = (
    ("text", "response_text", "How are you since the treatment?", "valueString"),
    ("painScore", "response_pain_score", "Pain 0-10", "valueInteger"),
    ("bleeding", "response_bleeding", "Any bleeding?", "valueBoolean"),
    ("wexnerScore", "response_wexner_score", "Wexner score 0-20", "valueInteger"),
    ("satisfaction", "response_satisfaction", "Satisfaction 1-5", "valueInteger"),
)


def _questionnaire_response(follow_up: Any, view: View) -> Built | None:
    """The patient's own answer from the mini-program, not yet confirmed by a physician."""
    if not view.shown("FollowUp").visible("response"):
        return None
    shown = view.shown("FollowUpResponse")
    items = []
    for field_name, column, text, kind in ANSWERS:
        value = shown(field_name, getattr(follow_up, column))
        if value is not None:
            items.append({"linkId": field_name, "text": text, "answer": [{kind: value}]})
    resource: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "id": str(follow_up.id),
        "meta": _meta(view, "FollowUp", follow_up, follow_up.response_at),
        "questionnaire": f"{view.systems.base}/Questionnaire/follow-up-response",
        "status": "entered-in-error" if follow_up.voided_at is not None else "completed",
        "subject": ref("Patient", follow_up.patient_id),
        "author": ref("Patient", follow_up.patient_id),
        "source": ref("Patient", follow_up.patient_id),
    }
    if follow_up.protocol_id is not None:
        resource["basedOn"] = [ref("CarePlan", protocol_plan_id(follow_up))]
    submitted = shown("submittedAt", follow_up.response_at)
    if submitted:
        resource["authored"] = submitted.isoformat()
    if items:
        resource["item"] = items
    return Built(resource, ("FollowUp", int(follow_up.id)))


for _name, _model, _field, _types, _build, _order in (
    ("visits", Visit, "visits", ("Encounter",), _encounters, 10),
    ("diagnoses", Diagnosis, "diagnoses", ("Condition",), _conditions, 20),
    ("examReports", ExamReport, "examReports", ("DiagnosticReport",), _reports, 30),
    ("treatmentPlans", TreatmentPlan, "treatmentPlans", ("CarePlan",), _plans, 40),
):
    register(ResourceKind(_name, _types, _loader(_model), _build, gate=("Patient", _field), order=_order))
register(
    ResourceKind(
        "followUps",
        ("CarePlan", "Observation", "QuestionnaireResponse"),
        _load_follow_ups,
        _follow_ups,
        gate=("Patient", "followUps"),
        order=50,
    )
)

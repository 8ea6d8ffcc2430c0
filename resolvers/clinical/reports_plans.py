"""Exam reports and treatment plans (plans are versioned: a stale update is CONFLICT)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from core.errors import bad_input, conflict, not_found
from core.timeutil import utcnow
from core.validation import choice, text
from models.clinical import Diagnosis, ExamKind, ExamReport, PlanStatus, PlanType, TreatmentPlan, Visit
from models.patient import Patient
from resolvers.audit import history
from resolvers.audit.unit import WriteUnit
from resolvers.clinical.common import check_date
from resolvers.data.context import Context

# ---- exam reports ------------------------------------------------------------------------------


@dataclass
class ExamReportInput:
    patient_id: int
    kind: str
    exam_date: date
    visit_id: int | None = None
    findings: str | None = None
    conclusion: str | None = None
    attachment_ref: str | None = None


async def add_exam_report(ctx: Context, data: ExamReportInput) -> ExamReport:
    kind = choice(ExamKind, data.kind, "kind")
    check_date(data.exam_date, "examDate")
    async with ctx.data.write(operation="addExamReport", action="create", entity_type="ExamReport") as unit:
        await unit.get(Patient, data.patient_id)
        if data.visit_id is not None:
            visit = await unit.find(Visit, data.visit_id)
            if visit is None:
                raise not_found("Visit")
            if visit.patient_id != data.patient_id:
                raise bad_input("That visit belongs to another patient", "visitId")
        report = ExamReport(
            patient_id=data.patient_id,
            visit_id=data.visit_id,
            kind=kind.value,
            exam_date=data.exam_date,
            findings=text(data.findings, "findings"),
            conclusion=text(data.conclusion, "conclusion", limit=5000),
            attachment_ref=text(data.attachment_ref, "attachmentRef", limit=255),
            created_by_id=ctx.principal.user_id,
        )
        unit.add(report)
        await unit.flush()
        history.record_created(ctx, unit, report, "ExamReport")
        unit.entity_id = str(report.id)
        unit.patient_id = data.patient_id
    return report


# ---- treatment plans ---------------------------------------------------------------------------


@dataclass
class PlanInput:
    plan_type: str | None = None
    description: str | None = None
    diagnosis_id: int | None = None
    start_date: date | None = None
    end_date: date | None = None
    status: str | None = None


def _apply_plan(plan: TreatmentPlan, data: PlanInput) -> None:
    if data.plan_type is not None:
        plan.plan_type = choice(PlanType, data.plan_type, "planType").value
    if data.description is not None:
        plan.description = text(data.description, "description", required=True) or ""
    if data.status is not None:
        plan.status = choice(PlanStatus, data.status, "status").value
    if data.start_date is not None:
        plan.start_date = check_date(data.start_date, "startDate")
    if data.end_date is not None:
        plan.end_date = check_date(data.end_date, "endDate")
    if plan.start_date and plan.end_date and plan.end_date < plan.start_date:
        raise bad_input("The plan ends before it starts", "endDate")


async def _check_diagnosis(unit: WriteUnit, diagnosis_id: int | None, patient_id: int) -> None:
    """The diagnosis a plan addresses: one of the same patient's."""
    if diagnosis_id is None:
        return
    diagnosis = await unit.find(Diagnosis, diagnosis_id)
    if diagnosis is None:
        raise not_found("Diagnosis")  # out of reach and unknown look the same
    if diagnosis.patient_id != patient_id:
        raise bad_input("That diagnosis is another patient's", "diagnosisId")


async def create_plan(ctx: Context, patient_id: int, data: PlanInput) -> TreatmentPlan:
    if data.plan_type is None or data.description is None:
        raise bad_input("planType and description are required", "planType")
    plan = TreatmentPlan(patient_id=patient_id, author_id=ctx.principal.user_id, plan_type="", description="")
    _apply_plan(plan, data)
    async with ctx.data.write(operation="createTreatmentPlan", action="create", entity_type="TreatmentPlan") as unit:
        await unit.get(Patient, patient_id)
        await _check_diagnosis(unit, data.diagnosis_id, patient_id)
        plan.diagnosis_id = data.diagnosis_id
        unit.add(plan)
        await unit.flush()
        history.record_created(ctx, unit, plan, "TreatmentPlan")
        unit.entity_id = str(plan.id)
        unit.patient_id = patient_id
    return plan


async def update_plan(
    ctx: Context, plan_id: int, version: int, data: PlanInput, reason: str | None = None
) -> TreatmentPlan:
    async with ctx.data.write(operation="updateTreatmentPlan", action="update", entity_type="TreatmentPlan") as unit:
        plan = await unit.get(TreatmentPlan, plan_id, what="Treatment plan")
        before = history.snapshot(plan)
        signed_off = plan.status in (PlanStatus.COMPLETED.value, PlanStatus.STOPPED.value)
        why = history.require_reason(reason, signed_off=signed_off)
        _apply_plan(plan, data)
        if data.diagnosis_id is not None:
            await _check_diagnosis(unit, data.diagnosis_id, plan.patient_id)
            plan.diagnosis_id = data.diagnosis_id
        unit.detach(plan)  # written below in one guarded UPDATE (an optimistic lock), not by the ORM's flush
        now = utcnow()
        changed = await unit.execute(
            (await ctx.data.update(TreatmentPlan))
            .where(TreatmentPlan.id == plan_id, TreatmentPlan.version == version)
            .values(
                plan_type=plan.plan_type,
                description=plan.description,
                status=plan.status,
                start_date=plan.start_date,
                end_date=plan.end_date,
                diagnosis_id=plan.diagnosis_id,
                updated_at=now,
                version=version + 1,
            )
        )
        if changed != 1:
            raise conflict("This plan was changed by someone else; reload and try again")
        plan.version = version + 1
        plan.updated_at = now
        history.record_updated(ctx, unit, plan, "TreatmentPlan", before, why)
        unit.entity_id = str(plan_id)
        unit.patient_id = plan.patient_id
    return plan

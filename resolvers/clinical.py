"""Visits with diagnoses, exam reports, treatment plans, follow-up protocols and follow-ups."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import bad_input, conflict, not_found
from core.timeutil import utcnow
from core.validation import choice, score, text
from models.clinical import (
    Diagnosis,
    ExamKind,
    ExamReport,
    FollowUp,
    FollowUpMethod,
    FollowUpProtocol,
    FollowUpStatus,
    PlanStatus,
    PlanType,
    TreatmentPlan,
    Visit,
    VisitType,
)
from models.patient import Patient
from resolvers import icd10
from resolvers.audit import history
from resolvers.audit.unit import write_unit
from resolvers.data.context import Context
from resolvers.data.pagination import Page, paginate
from resolvers.patient import my_patient_id, overdue_clause

# ---- visits and diagnoses ----------------------------------------------------------------------


@dataclass
class DiagnosisInput:
    code: str
    is_primary: bool = False
    tcm_syndrome: str | None = None


@dataclass
class VisitInput:
    patient_id: int
    visit_date: date
    visit_type: str
    chief_complaint: str | None = None
    present_illness: str | None = None
    examination_findings: str | None = None
    notes: str | None = None
    diagnoses: Sequence[DiagnosisInput] = ()


def _check_date(value: date, field: str) -> date:
    if not date(1900, 1, 1) <= value <= date.today() + timedelta(days=366):
        raise bad_input("Date out of range", field)
    return value


async def record_visit(ctx: Context, data: VisitInput) -> Visit:
    visit_type = choice(VisitType, data.visit_type, "visitType")
    _check_date(data.visit_date, "visitDate")
    codes = [icd10.lookup(d.code) for d in data.diagnoses]
    if sum(1 for d in data.diagnoses if d.is_primary) > 1:
        raise bad_input("At most one primary diagnosis per visit", "diagnoses")
    async with write_unit(ctx, operation="recordVisit", action="create", entity_type="Visit") as unit:
        await unit.get(Patient, data.patient_id)
        visit = Visit(
            patient_id=data.patient_id,
            physician_id=ctx.principal.user_id,
            under_grant_id=await unit.reaching_grant(data.patient_id),
            department_id=ctx.principal.department_id,
            visit_date=data.visit_date,
            visit_type=visit_type.value,
            chief_complaint=text(data.chief_complaint, "chiefComplaint", limit=2000),
            present_illness=text(data.present_illness, "presentIllness"),
            examination_findings=text(data.examination_findings, "examinationFindings"),
            notes=text(data.notes, "notes"),
        )
        unit.session.add(visit)
        await unit.session.flush()
        diagnoses = [
            Diagnosis(
                visit_id=visit.id,
                patient_id=data.patient_id,
                icd10_code=code.code,
                icd10_name=code.name_zh,
                is_primary=given.is_primary,
                tcm_syndrome=text(given.tcm_syndrome, "tcmSyndrome", limit=100),
            )
            for given, code in zip(data.diagnoses, codes, strict=True)
        ]
        unit.session.add_all(diagnoses)
        await unit.session.flush()
        history.record_created(ctx, unit, visit, "Visit")
        for diagnosis in diagnoses:
            history.record_created(ctx, unit, diagnosis, "Diagnosis")
        unit.entity_id = str(visit.id)
        unit.patient_id = data.patient_id
        unit.detail = {"diagnoses": [code.code for code in codes]}
    return visit


async def _scoped_visit(ctx: Context, session: AsyncSession, visit_id: int) -> Visit:
    row = (
        await session.execute(
            select(Visit)
            .join(Patient, Patient.id == Visit.patient_id)
            .where(Visit.id == visit_id, await ctx.data.clause(Patient))
        )
    ).scalar_one_or_none()
    if row is None:
        raise not_found("Visit")
    return row


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
    _check_date(data.exam_date, "examDate")
    async with write_unit(ctx, operation="addExamReport", action="create", entity_type="ExamReport") as unit:
        await unit.get(Patient, data.patient_id)
        if data.visit_id is not None:
            visit = await _scoped_visit(ctx, unit.session, data.visit_id)
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
        unit.session.add(report)
        await unit.session.flush()
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
        plan.start_date = _check_date(data.start_date, "startDate")
    if data.end_date is not None:
        plan.end_date = _check_date(data.end_date, "endDate")
    if plan.start_date and plan.end_date and plan.end_date < plan.start_date:
        raise bad_input("The plan ends before it starts", "endDate")


async def _check_diagnosis(session: AsyncSession, diagnosis_id: int | None, patient_id: int) -> None:
    if diagnosis_id is None:
        return
    diagnosis = await session.get(Diagnosis, diagnosis_id)
    if diagnosis is None or diagnosis.patient_id != patient_id:
        raise bad_input("Unknown diagnosis for this patient", "diagnosisId")


async def create_plan(ctx: Context, patient_id: int, data: PlanInput) -> TreatmentPlan:
    if data.plan_type is None or data.description is None:
        raise bad_input("planType and description are required", "planType")
    plan = TreatmentPlan(patient_id=patient_id, author_id=ctx.principal.user_id, plan_type="", description="")
    _apply_plan(plan, data)
    async with write_unit(ctx, operation="createTreatmentPlan", action="create", entity_type="TreatmentPlan") as unit:
        await unit.get(Patient, patient_id)
        await _check_diagnosis(unit.session, data.diagnosis_id, patient_id)
        plan.diagnosis_id = data.diagnosis_id
        unit.session.add(plan)
        await unit.session.flush()
        history.record_created(ctx, unit, plan, "TreatmentPlan")
        unit.entity_id = str(plan.id)
        unit.patient_id = patient_id
    return plan


async def _scoped(ctx: Context, session: AsyncSession, model: type, row_id: int, what: str) -> object:
    """A row that hangs off a patient, reachable only through that patient's scope."""
    row = (
        await session.execute(
            select(model)
            .join(Patient, Patient.id == model.patient_id)
            .where(model.id == row_id, await ctx.data.clause(Patient))
        )
    ).scalar_one_or_none()
    if row is None:
        raise not_found(what)
    return row


async def update_plan(
    ctx: Context, plan_id: int, version: int, data: PlanInput, reason: str | None = None
) -> TreatmentPlan:
    async with write_unit(ctx, operation="updateTreatmentPlan", action="update", entity_type="TreatmentPlan") as unit:
        plan = await _scoped(ctx, unit.session, TreatmentPlan, plan_id, "Treatment plan")
        assert isinstance(plan, TreatmentPlan)
        before = history.snapshot(plan)
        signed_off = plan.status in (PlanStatus.COMPLETED.value, PlanStatus.STOPPED.value)
        why = history.require_reason(reason, signed_off=signed_off)
        _apply_plan(plan, data)
        if data.diagnosis_id is not None:
            await _check_diagnosis(unit.session, data.diagnosis_id, plan.patient_id)
            plan.diagnosis_id = data.diagnosis_id
        unit.session.expunge(plan)
        now = utcnow()
        result = await unit.session.execute(
            update(TreatmentPlan)
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
        if result.rowcount != 1:
            raise conflict("This plan was changed by someone else; reload and try again")
        plan.version = version + 1
        plan.updated_at = now
        history.record_updated(ctx, unit, plan, "TreatmentPlan", before, why)
        unit.entity_id = str(plan_id)
        unit.patient_id = plan.patient_id
    return plan


# ---- follow-up protocols and follow-ups --------------------------------------------------------


def parse_offsets(offsets: Sequence[int]) -> list[int]:
    values = sorted(set(offsets))
    if not values or len(values) > 20 or any(not 1 <= v <= 3650 for v in values):
        raise bad_input("Offsets: 1 to 20 distinct day counts between 1 and 3650", "offsets")
    return values


async def list_protocols(ctx: Context) -> list[FollowUpProtocol]:
    async with ctx.db.session() as session:
        return list((await session.execute(select(FollowUpProtocol).order_by(FollowUpProtocol.id))).scalars().all())


async def create_protocol(ctx: Context, *, name: str, offsets: Sequence[int], description: str) -> FollowUpProtocol:
    values = parse_offsets(offsets)
    async with write_unit(
        ctx,
        operation="createFollowUpProtocol",
        action="create",
        entity_type="FollowUpProtocol",
        conflict_message="A protocol with that name exists",
    ) as unit:
        protocol = FollowUpProtocol(
            name=text(name, "name", limit=100, required=True) or "",
            offsets=",".join(str(v) for v in values),
            description=(description or "").strip()[:255],
        )
        unit.session.add(protocol)
        await unit.session.flush()
        unit.entity_id = str(protocol.id)
    return protocol


async def apply_protocol(ctx: Context, *, visit_id: int, protocol_id: int, method: str) -> list[FollowUp]:
    follow_method = choice(FollowUpMethod, method, "method")
    async with write_unit(
        ctx,
        operation="applyFollowUpProtocol",
        action="create",
        entity_type="FollowUp",
        conflict_message="This protocol is already applied to this visit",
    ) as unit:
        visit = await _scoped_visit(ctx, unit.session, visit_id)
        protocol = await unit.session.get(FollowUpProtocol, protocol_id)
        if protocol is None:
            raise not_found("Follow-up protocol")
        created = []
        for offset in (int(v) for v in protocol.offsets.split(",")):
            follow_up = FollowUp(
                patient_id=visit.patient_id,
                visit_id=visit.id,
                protocol_id=protocol.id,
                offset_days=offset,
                due_date=visit.visit_date + timedelta(days=offset),
                method=follow_method.value,
            )
            unit.session.add(follow_up)
            created.append(follow_up)
        await unit.session.flush()
        for follow_up in created:
            history.record_created(ctx, unit, follow_up, "FollowUp")
        unit.entity_id = str(visit_id)
        unit.patient_id = visit.patient_id
        unit.detail = {"protocol": protocol.name, "followUps": [f.id for f in created]}
    return created


@dataclass
class OutcomeInput:
    outcome_text: str | None = None
    pain_score: int | None = None
    bleeding: bool | None = None
    wexner_score: int | None = None
    recurrence: bool | None = None
    satisfaction: int | None = None
    missed: bool = False


def check_measures(pain: int | None, wexner: int | None, satisfaction: int | None) -> None:
    score(pain, "painScore", 0, 10)
    score(wexner, "wexnerScore", 0, 20)
    score(satisfaction, "satisfaction", 1, 5)


async def _scoped_follow_up(ctx: Context, session: AsyncSession, follow_up_id: int) -> FollowUp:
    row = await _scoped(ctx, session, FollowUp, follow_up_id, "Follow-up")
    assert isinstance(row, FollowUp)
    return row


async def _claim(session: AsyncSession, follow_up: FollowUp) -> None:
    """Take the follow-up for this write: bump its version only if it is still the one read, so two
    writes racing on one follow-up (an outcome and a cancellation) cannot both pass their checks."""
    result = await session.execute(
        update(FollowUp)
        .where(FollowUp.id == follow_up.id, FollowUp.version == follow_up.version)
        .values(version=follow_up.version + 1)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise conflict("This follow-up was changed by someone else; reload and try again")
    follow_up.version += 1


async def record_outcome(ctx: Context, follow_up_id: int, data: OutcomeInput, reason: str | None = None) -> FollowUp:
    check_measures(data.pain_score, data.wexner_score, data.satisfaction)
    async with write_unit(ctx, operation="recordFollowUpOutcome", action="update", entity_type="FollowUp") as unit:
        follow_up = await _scoped_follow_up(ctx, unit.session, follow_up_id)
        if follow_up.status == FollowUpStatus.CANCELLED.value:
            raise conflict("This follow-up was cancelled")
        before = history.snapshot(follow_up)
        # Correcting an outcome already recorded is an amendment of a signed-off record.
        why = history.require_reason(reason, signed_off=follow_up.status != FollowUpStatus.SCHEDULED.value)
        await _claim(unit.session, follow_up)
        follow_up.status = (FollowUpStatus.MISSED if data.missed else FollowUpStatus.COMPLETED).value
        follow_up.outcome_text = text(data.outcome_text, "outcomeText", limit=5000)
        follow_up.pain_score = data.pain_score
        follow_up.bleeding = data.bleeding
        follow_up.wexner_score = data.wexner_score
        follow_up.recurrence = data.recurrence
        follow_up.satisfaction = data.satisfaction
        follow_up.recorded_by_id = ctx.principal.user_id
        follow_up.recorded_at = utcnow()
        unit.session.add(follow_up)
        history.record_updated(ctx, unit, follow_up, "FollowUp", before, why)
        unit.entity_id = str(follow_up_id)
        unit.patient_id = follow_up.patient_id
        unit.detail = {"status": follow_up.status}
    return follow_up


async def confirm_response(ctx: Context, follow_up_id: int, recurrence: bool | None) -> FollowUp:
    """The physician confirms what the patient answered from the phone: it becomes the outcome."""
    async with write_unit(ctx, operation="confirmFollowUpResponse", action="update", entity_type="FollowUp") as unit:
        follow_up = await _scoped_follow_up(ctx, unit.session, follow_up_id)
        if follow_up.response_at is None:
            raise bad_input("The patient has not answered this follow-up", "followUpId")
        if follow_up.status != FollowUpStatus.SCHEDULED.value:
            raise conflict("This follow-up is already closed")
        before = history.snapshot(follow_up)
        await _claim(unit.session, follow_up)
        follow_up.status = FollowUpStatus.COMPLETED.value
        follow_up.outcome_text = follow_up.response_text
        follow_up.pain_score = follow_up.response_pain_score
        follow_up.bleeding = follow_up.response_bleeding
        follow_up.wexner_score = follow_up.response_wexner_score
        follow_up.satisfaction = follow_up.response_satisfaction
        follow_up.recurrence = recurrence
        follow_up.recorded_by_id = ctx.principal.user_id
        follow_up.recorded_at = utcnow()
        unit.session.add(follow_up)
        history.record_updated(ctx, unit, follow_up, "FollowUp", before)
        unit.entity_id = str(follow_up_id)
        unit.patient_id = follow_up.patient_id
    return follow_up


async def cancel_follow_up(ctx: Context, follow_up_id: int, reason: str) -> FollowUp:
    reason_text = text(reason, "reason", limit=255, required=True)
    async with write_unit(ctx, operation="cancelFollowUp", action="update", entity_type="FollowUp") as unit:
        follow_up = await _scoped_follow_up(ctx, unit.session, follow_up_id)
        if follow_up.status != FollowUpStatus.SCHEDULED.value:
            raise conflict("Only a scheduled follow-up can be cancelled")
        before = history.snapshot(follow_up)
        await _claim(unit.session, follow_up)
        follow_up.status = FollowUpStatus.CANCELLED.value
        follow_up.cancel_reason = reason_text
        unit.session.add(follow_up)
        history.record_updated(ctx, unit, follow_up, "FollowUp", before, reason_text)
        unit.entity_id = str(follow_up_id)
        unit.patient_id = follow_up.patient_id
    return follow_up


@dataclass
class ResponseInput:
    text: str | None = None
    pain_score: int | None = None
    bleeding: bool | None = None
    wexner_score: int | None = None
    satisfaction: int | None = None


PATIENT_ANSWER_DAYS_EARLY = 3


async def submit_response(ctx: Context, follow_up_id: int, data: ResponseInput) -> FollowUp:
    """A patient answers their own due follow-up from the mini-program."""
    check_measures(data.pain_score, data.wexner_score, data.satisfaction)
    patient_id = await my_patient_id(ctx)
    async with write_unit(ctx, operation="submitFollowUpResponse", action="update", entity_type="FollowUp") as unit:
        follow_up = await unit.session.get(FollowUp, follow_up_id)
        if follow_up is None or patient_id is None or follow_up.patient_id != patient_id:
            raise not_found("Follow-up")
        if follow_up.status != FollowUpStatus.SCHEDULED.value:
            raise conflict("This follow-up is closed")
        if follow_up.due_date > ctx.today() + timedelta(days=PATIENT_ANSWER_DAYS_EARLY):
            raise bad_input("This follow-up is not due yet", "followUpId")
        before = history.snapshot(follow_up)
        await _claim(unit.session, follow_up)
        follow_up.response_text = text(data.text, "text", limit=2000)
        follow_up.response_pain_score = data.pain_score
        follow_up.response_bleeding = data.bleeding
        follow_up.response_wexner_score = data.wexner_score
        follow_up.response_satisfaction = data.satisfaction
        follow_up.response_at = utcnow()
        unit.session.add(follow_up)
        history.record_updated(ctx, unit, follow_up, "FollowUp", before)
        unit.entity_id = str(follow_up_id)
        unit.patient_id = patient_id
    return follow_up


async def my_follow_ups(ctx: Context) -> list[FollowUp]:
    patient_id = await my_patient_id(ctx)
    if patient_id is None:
        return []
    async with ctx.db.session() as session:
        rows = await session.execute(
            select(FollowUp).where(FollowUp.patient_id == patient_id).order_by(FollowUp.due_date, FollowUp.id)
        )
    return list(rows.scalars().all())


async def overdue_follow_ups(ctx: Context, *, first: int | None, after: str | None) -> Page[FollowUp]:
    statement = (
        select(FollowUp)
        .join(Patient, Patient.id == FollowUp.patient_id)
        .where(overdue_clause(ctx.today()), await ctx.data.clause(Patient))
    )
    page = await paginate(
        ctx.reads,
        statement,
        keys=[FollowUp.due_date, FollowUp.id],
        key_of=lambda row: [row.due_date.isoformat(), row.id],
        first=first,
        after=after,
    )
    await ctx.data.record_reads([row.patient_id for row in page.items], action="read", operation="overdueFollowUps")
    return page


# ---- recovery analysis -------------------------------------------------------------------------

MIN_GROUP = 5


@dataclass
class OutcomeGroup:
    plan_type: str
    patients: int | None
    follow_ups: int | None
    mean_pain: float | None
    bleeding_rate: float | None
    mean_wexner: float | None
    recurrence_rate: float | None
    mean_satisfaction: float | None
    suppressed: bool


async def outcome_summary(
    ctx: Context, *, diagnosis_code: str | None, plan_type: str | None, since: date | None, until: date | None
) -> list[OutcomeGroup]:
    """Completed follow-up outcomes of in-scope patients, grouped by their treatment plan's type.

    Groups of fewer than five patients are suppressed, so no one patient can be singled out.
    """
    conditions = [
        FollowUp.status == FollowUpStatus.COMPLETED.value,
        await ctx.data.clause(Patient),
    ]
    if since is not None:
        conditions.append(FollowUp.due_date >= since)
    if until is not None:
        conditions.append(FollowUp.due_date <= until)
    # Each patient once per plan type: a revised plan of the same type must not count twice.
    plans = select(TreatmentPlan.patient_id, TreatmentPlan.plan_type)
    if plan_type is not None:
        plans = plans.where(TreatmentPlan.plan_type == choice(PlanType, plan_type, "planType").value)
    if diagnosis_code:
        code = diagnosis_code.strip().upper()
        plans = plans.join(Diagnosis, Diagnosis.id == TreatmentPlan.diagnosis_id).where(
            Diagnosis.icd10_code.like(code.replace("%", "").replace("_", "") + "%")
        )
    plan = plans.distinct().subquery()
    statement = (
        select(
            plan.c.plan_type,
            func.count(func.distinct(FollowUp.patient_id)),
            func.count(func.distinct(FollowUp.id)),
            func.avg(FollowUp.pain_score),
            func.avg(_as_number(FollowUp.bleeding)),
            func.avg(FollowUp.wexner_score),
            func.avg(_as_number(FollowUp.recurrence)),
            func.avg(FollowUp.satisfaction),
        )
        .select_from(FollowUp)
        .join(Patient, Patient.id == FollowUp.patient_id)
        .join(plan, plan.c.patient_id == FollowUp.patient_id)
        .where(and_(*conditions))
        .group_by(plan.c.plan_type)
        .order_by(plan.c.plan_type)
    )
    async with ctx.db.session() as session:
        rows = (await session.execute(statement)).all()
    groups = []
    for kind, patients, follow_ups, pain, bleeding, wexner, recurrence, satisfaction in rows:
        if patients < MIN_GROUP:
            groups.append(OutcomeGroup(kind, None, None, None, None, None, None, None, True))
        else:
            groups.append(
                OutcomeGroup(
                    kind,
                    patients,
                    follow_ups,
                    _round(pain),
                    _round(bleeding),
                    _round(wexner),
                    _round(recurrence),
                    _round(satisfaction),
                    False,
                )
            )
    return groups


def _as_number(column: object) -> object:
    from sqlalchemy import Integer, cast

    return cast(column, Integer)


def _round(value: object) -> float | None:
    return None if value is None else round(float(value), 2)  # type: ignore[arg-type]

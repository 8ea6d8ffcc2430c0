"""A patient's clinical history: visits, diagnoses, exam reports, treatment plans, follow-ups."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any, cast

import strawberry

from core.ids import decode_id, decode_optional_id, encode_id
from models import clinical as m
from resolvers import clinical, icd10
from resolvers.data.context import Info
from schema.engine.builder import FieldMode
from schema.engine.connection import Connection, connection
from schema.engine.projection import DIAGNOSIS, columns_for

if TYPE_CHECKING:
    from schema.patient import PatientType

VisitTypeEnum = strawberry.enum(m.VisitType, name="VisitType")
ExamKindEnum = strawberry.enum(m.ExamKind, name="ExamKind")
PlanTypeEnum = strawberry.enum(m.PlanType, name="PlanType")
PlanStatusEnum = strawberry.enum(m.PlanStatus, name="PlanStatus")
FollowUpStatusEnum = strawberry.enum(m.FollowUpStatus, name="FollowUpStatus")
FollowUpMethodEnum = strawberry.enum(m.FollowUpMethod, name="FollowUpMethod")


def _id(kind: str, pk: int | None) -> strawberry.ID | None:
    return None if pk is None else strawberry.ID(encode_id(kind, pk))


@strawberry.type(name="VoidInfo")
class VoidInfoType:
    """A record entered in error: kept, shown as void, never deleted."""

    at: datetime
    reason: str | None
    _by: strawberry.Private[int | None]

    @strawberry.field
    async def by(self, info: Info) -> str | None:
        return None if self._by is None else await info.context.loaders.user_name_by_id.load(self._by)

    @classmethod
    def of(cls, row: Any) -> VoidInfoType | None:
        if getattr(row, "voided_at", None) is None:
            return None
        return cls(at=row.voided_at, reason=row.void_reason, _by=row.voided_by_id)


def shown_rows(info: Info, type_name: str, rows: list[Any]) -> list[Any]:
    """Voided records stay visible, marked, to roles whose schema has `<Type>.voided`; others don't see them."""
    if info.schema.field_mode(type_name, "voided") is FieldMode.HIDDEN:  # type: ignore[attr-defined]
        return [row for row in rows if getattr(row, "voided_at", None) is None]
    return rows


@strawberry.type(name="Icd10Code")
class Icd10CodeType:
    code: str
    name_zh: str
    name_en: str


@strawberry.type(name="Diagnosis")
class DiagnosisType:
    id: strawberry.ID
    visit_id: strawberry.ID
    icd10_code: str
    icd10_name: str
    is_primary: bool
    tcm_syndrome: str | None
    created_at: datetime

    voided: VoidInfoType | None

    @classmethod
    def from_row(cls, row: m.Diagnosis) -> DiagnosisType:
        return cls(
            voided=VoidInfoType.of(row),
            id=strawberry.ID(encode_id("Diagnosis", row.id)),  # type: ignore[arg-type]
            visit_id=strawberry.ID(encode_id("Visit", row.visit_id)),
            icd10_code=row.icd10_code,
            icd10_name=row.icd10_name,
            is_primary=row.is_primary,
            tcm_syndrome=row.tcm_syndrome,
            created_at=row.created_at,
        )


@strawberry.type(name="Visit")
class VisitType:
    id: strawberry.ID
    visit_date: date
    visit_type: VisitTypeEnum  # type: ignore[valid-type]
    chief_complaint: str | None
    present_illness: str | None
    examination_findings: str | None
    notes: str | None
    created_at: datetime
    voided: VoidInfoType | None
    _pk: strawberry.Private[int]
    _physician_id: strawberry.Private[int | None]
    # Filled by a list resolver that looked ahead (schema/engine/prefetch.py): no loader round per visit.
    _prefetched: strawberry.Private[dict[str, list[Any]]] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_row(cls, row: m.Visit) -> VisitType:
        return cls(
            voided=VoidInfoType.of(row),
            id=strawberry.ID(encode_id("Visit", row.id)),  # type: ignore[arg-type]
            visit_date=row.visit_date,
            visit_type=m.VisitType(row.visit_type),
            chief_complaint=row.chief_complaint,
            present_illness=row.present_illness,
            examination_findings=row.examination_findings,
            notes=row.notes,
            created_at=row.created_at,
            _pk=row.id,  # type: ignore[arg-type]
            _physician_id=row.physician_id,
        )

    @strawberry.field
    async def physician_name(self, info: Info) -> str | None:
        return (
            None if self._physician_id is None else await info.context.loaders.user_name_by_id.load(self._physician_id)
        )

    @strawberry.field
    def diagnoses(self, info: Info) -> list[DiagnosisType]:
        # A plain list when prefetched; otherwise an awaitable, which GraphQL execution awaits.
        if "diagnoses" in self._prefetched:
            return self._prefetched["diagnoses"]
        return cast(list[DiagnosisType], self._load_diagnoses(info))

    async def _load_diagnoses(self, info: Info) -> list[DiagnosisType]:
        loader = info.context.loaders.diagnoses_of_visits(columns_for(info, DIAGNOSIS))
        rows = shown_rows(info, "Diagnosis", await loader.load(self._pk))
        return [DiagnosisType.from_row(row) for row in rows]


@strawberry.type(name="ExamReport")
class ExamReportType:
    id: strawberry.ID
    visit_id: strawberry.ID | None
    kind: ExamKindEnum  # type: ignore[valid-type]
    exam_date: date
    findings: str | None
    conclusion: str | None
    attachment_ref: str | None
    created_at: datetime

    voided: VoidInfoType | None

    @classmethod
    def from_row(cls, row: m.ExamReport) -> ExamReportType:
        return cls(
            voided=VoidInfoType.of(row),
            id=strawberry.ID(encode_id("ExamReport", row.id)),  # type: ignore[arg-type]
            visit_id=_id("Visit", row.visit_id),
            kind=m.ExamKind(row.kind),
            exam_date=row.exam_date,
            findings=row.findings,
            conclusion=row.conclusion,
            attachment_ref=row.attachment_ref,
            created_at=row.created_at,
        )


@strawberry.type(name="TreatmentPlan")
class TreatmentPlanType:
    id: strawberry.ID
    diagnosis_id: strawberry.ID | None
    plan_type: PlanTypeEnum  # type: ignore[valid-type]
    description: str
    start_date: date | None
    end_date: date | None
    status: PlanStatusEnum  # type: ignore[valid-type]
    version: int
    created_at: datetime
    updated_at: datetime
    voided: VoidInfoType | None
    _author_id: strawberry.Private[int | None]

    @classmethod
    def from_row(cls, row: m.TreatmentPlan) -> TreatmentPlanType:
        return cls(
            voided=VoidInfoType.of(row),
            id=strawberry.ID(encode_id("TreatmentPlan", row.id)),  # type: ignore[arg-type]
            diagnosis_id=_id("Diagnosis", row.diagnosis_id),
            plan_type=m.PlanType(row.plan_type),
            description=row.description,
            start_date=row.start_date,
            end_date=row.end_date,
            status=m.PlanStatus(row.status),
            version=row.version,
            created_at=row.created_at,
            updated_at=row.updated_at,
            _author_id=row.author_id,
        )

    @strawberry.field
    async def author_name(self, info: Info) -> str | None:
        return None if self._author_id is None else await info.context.loaders.user_name_by_id.load(self._author_id)


@strawberry.type(name="FollowUpProtocol")
class FollowUpProtocolType:
    id: strawberry.ID
    name: str
    offsets: list[int] = strawberry.field(description="Days after the visit.")
    description: str

    @classmethod
    def from_row(cls, row: m.FollowUpProtocol) -> FollowUpProtocolType:
        return cls(
            id=strawberry.ID(encode_id("FollowUpProtocol", row.id)),  # type: ignore[arg-type]
            name=row.name,
            offsets=[int(v) for v in row.offsets.split(",") if v],
            description=row.description,
        )


@strawberry.type(name="FollowUpResponse")
class FollowUpResponseType:
    """What the patient answered from the mini-program, before a physician confirms it."""

    text: str | None
    pain_score: int | None
    bleeding: bool | None
    wexner_score: int | None
    satisfaction: int | None
    submitted_at: datetime


@strawberry.type(name="FollowUp")
class FollowUpType:
    id: strawberry.ID
    visit_id: strawberry.ID | None
    due_date: date
    status: FollowUpStatusEnum  # type: ignore[valid-type]
    method: FollowUpMethodEnum  # type: ignore[valid-type]
    outcome_text: str | None
    pain_score: int | None
    bleeding: bool | None
    wexner_score: int | None
    recurrence: bool | None
    satisfaction: int | None
    recorded_at: datetime | None
    cancel_reason: str | None
    response: FollowUpResponseType | None
    voided: VoidInfoType | None
    _patient_id: strawberry.Private[int]
    _recorded_by: strawberry.Private[int | None]
    _protocol_id: strawberry.Private[int | None]

    @classmethod
    def from_row(cls, row: m.FollowUp) -> FollowUpType:
        response = None
        if row.response_at is not None:
            response = FollowUpResponseType(
                text=row.response_text,
                pain_score=row.response_pain_score,
                bleeding=row.response_bleeding,
                wexner_score=row.response_wexner_score,
                satisfaction=row.response_satisfaction,
                submitted_at=row.response_at,
            )
        return cls(
            voided=VoidInfoType.of(row),
            id=strawberry.ID(encode_id("FollowUp", row.id)),  # type: ignore[arg-type]
            visit_id=_id("Visit", row.visit_id),
            due_date=row.due_date,
            status=m.FollowUpStatus(row.status),
            method=m.FollowUpMethod(row.method),
            outcome_text=row.outcome_text,
            pain_score=row.pain_score,
            bleeding=row.bleeding,
            wexner_score=row.wexner_score,
            recurrence=row.recurrence,
            satisfaction=row.satisfaction,
            recorded_at=row.recorded_at,
            cancel_reason=row.cancel_reason,
            response=response,
            _patient_id=row.patient_id,
            _recorded_by=row.recorded_by_id,
            _protocol_id=row.protocol_id,
        )

    @strawberry.field(description="Still scheduled after its due date (in the clinic's time zone).")
    def overdue(self, info: Info) -> bool:
        return self.status == m.FollowUpStatus.SCHEDULED and self.due_date < info.context.today()

    @strawberry.field
    async def recorded_by_name(self, info: Info) -> str | None:
        return None if self._recorded_by is None else await info.context.loaders.user_name_by_id.load(self._recorded_by)

    @strawberry.field
    async def patient(self, info: Info) -> Annotated[PatientType, strawberry.lazy("schema.patient")] | None:
        from schema.patient import PatientType

        row = await info.context.loaders.patient_by_id.load(self._patient_id)
        return PatientType.from_row(row) if row else None


@strawberry.type(name="OutcomeGroup")
class OutcomeGroupType:
    plan_type: PlanTypeEnum  # type: ignore[valid-type]
    suppressed: bool = strawberry.field(description="True when fewer than 5 patients: figures withheld.")
    patients: int | None
    follow_ups: int | None
    mean_pain_score: float | None
    bleeding_rate: float | None
    mean_wexner_score: float | None
    recurrence_rate: float | None
    mean_satisfaction: float | None


# ---- inputs --------------------------------------------------------------------------------------


@strawberry.input
class DiagnosisInput:
    icd10_code: str
    is_primary: bool = False
    tcm_syndrome: str | None = None


@strawberry.input
class RecordVisitInput:
    patient_id: strawberry.ID
    visit_date: date
    visit_type: VisitTypeEnum  # type: ignore[valid-type]
    chief_complaint: str | None = None
    present_illness: str | None = None
    examination_findings: str | None = None
    notes: str | None = None
    diagnoses: list[DiagnosisInput] = strawberry.field(default_factory=list)


@strawberry.input
class ExamReportInput:
    patient_id: strawberry.ID
    kind: ExamKindEnum  # type: ignore[valid-type]
    exam_date: date
    visit_id: strawberry.ID | None = None
    findings: str | None = None
    conclusion: str | None = None
    attachment_ref: str | None = None


@strawberry.input
class CreateTreatmentPlanInput:
    patient_id: strawberry.ID
    plan_type: PlanTypeEnum  # type: ignore[valid-type]
    description: str
    diagnosis_id: strawberry.ID | None = None
    start_date: date | None = None
    end_date: date | None = None
    status: PlanStatusEnum = m.PlanStatus.PLANNED  # type: ignore[valid-type]


@strawberry.input
class UpdateTreatmentPlanInput:
    plan_type: PlanTypeEnum | None = None  # type: ignore[valid-type]
    description: str | None = None
    diagnosis_id: strawberry.ID | None = None
    start_date: date | None = None
    end_date: date | None = None
    status: PlanStatusEnum | None = None  # type: ignore[valid-type]


@strawberry.input
class FollowUpOutcomeInput:
    outcome_text: str | None = None
    pain_score: int | None = strawberry.field(default=None, description="0-10")
    bleeding: bool | None = None
    wexner_score: int | None = strawberry.field(default=None, description="Wexner continence score 0-20")
    recurrence: bool | None = None
    satisfaction: int | None = strawberry.field(default=None, description="1-5")
    missed: bool = strawberry.field(default=False, description="The patient could not be reached.")


@strawberry.input
class FollowUpResponseInput:
    text: str | None = None
    pain_score: int | None = None
    bleeding: bool | None = None
    wexner_score: int | None = None
    satisfaction: int | None = None


# ---- operations ----------------------------------------------------------------------------------


def _value(enum_value: object) -> str | None:
    return None if enum_value is None else str(getattr(enum_value, "value", enum_value))


@strawberry.type
class ClinicalQuery:
    @strawberry.field(
        description="ICD-10 codes by code prefix or by (Chinese or English) name, for look-up while typing."
    )
    def icd10_codes(self, search: str) -> list[Icd10CodeType]:
        return [Icd10CodeType(code=c.code, name_zh=c.name_zh, name_en=c.name_en) for c in icd10.search(search)]

    @strawberry.field
    async def follow_up_protocols(self, info: Info) -> list[FollowUpProtocolType]:
        return [FollowUpProtocolType.from_row(row) for row in await clinical.list_protocols(info.context)]

    @strawberry.field(description="Scheduled follow-ups past their due date, in your scope, oldest first.")
    async def overdue_follow_ups(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> Connection[FollowUpType]:
        page = await clinical.overdue_follow_ups(info.context, first=first, after=after)
        return connection(page, FollowUpType.from_row)

    @strawberry.field(
        description="Recovery by treatment plan type in your scope; groups under 5 patients are suppressed."
    )
    async def outcome_summary(
        self,
        info: Info,
        diagnosis_code: str | None = None,
        plan_type: PlanTypeEnum | None = None,  # type: ignore[valid-type]
        from_: Annotated[date | None, strawberry.argument(name="from")] = None,
        to: date | None = None,
    ) -> list[OutcomeGroupType]:
        groups = await clinical.outcome_summary(
            info.context, diagnosis_code=diagnosis_code, plan_type=_value(plan_type), since=from_, until=to
        )
        return [
            OutcomeGroupType(
                plan_type=m.PlanType(g.plan_type),
                suppressed=g.suppressed,
                patients=g.patients,
                follow_ups=g.follow_ups,
                mean_pain_score=g.mean_pain,
                bleeding_rate=g.bleeding_rate,
                mean_wexner_score=g.mean_wexner,
                recurrence_rate=g.recurrence_rate,
                mean_satisfaction=g.mean_satisfaction,
            )
            for g in groups
        ]

    @strawberry.field(description="Your own follow-ups (mini-program).")
    async def my_follow_ups(self, info: Info) -> list[FollowUpType]:
        return [
            FollowUpType.from_row(row)
            for row in shown_rows(info, "FollowUp", await clinical.my_follow_ups(info.context))
        ]


@strawberry.type
class ClinicalMutation:
    @strawberry.mutation(description="Record a visit with its diagnoses (ICD-10 codes are validated).")
    async def record_visit(self, info: Info, input: RecordVisitInput) -> VisitType:
        data = clinical.VisitInput(
            patient_id=decode_id("Patient", input.patient_id),
            visit_date=input.visit_date,
            visit_type=_value(input.visit_type) or "",
            chief_complaint=input.chief_complaint,
            present_illness=input.present_illness,
            examination_findings=input.examination_findings,
            notes=input.notes,
            diagnoses=[
                clinical.DiagnosisInput(code=d.icd10_code, is_primary=d.is_primary, tcm_syndrome=d.tcm_syndrome)
                for d in input.diagnoses
            ],
        )
        return VisitType.from_row(await clinical.record_visit(info.context, data))

    @strawberry.mutation
    async def add_exam_report(self, info: Info, input: ExamReportInput) -> ExamReportType:
        data = clinical.ExamReportInput(
            patient_id=decode_id("Patient", input.patient_id),
            kind=_value(input.kind) or "",
            exam_date=input.exam_date,
            visit_id=decode_optional_id("Visit", input.visit_id),
            findings=input.findings,
            conclusion=input.conclusion,
            attachment_ref=input.attachment_ref,
        )
        return ExamReportType.from_row(await clinical.add_exam_report(info.context, data))

    @strawberry.mutation
    async def create_treatment_plan(self, info: Info, input: CreateTreatmentPlanInput) -> TreatmentPlanType:
        data = clinical.PlanInput(
            plan_type=_value(input.plan_type),
            description=input.description,
            diagnosis_id=decode_optional_id("Diagnosis", input.diagnosis_id),
            start_date=input.start_date,
            end_date=input.end_date,
            status=_value(input.status),
        )
        row = await clinical.create_plan(info.context, decode_id("Patient", input.patient_id), data)
        return TreatmentPlanType.from_row(row)

    @strawberry.mutation(description="Update a plan; `version` is the one you read (stale: CONFLICT).")
    async def update_treatment_plan(
        self,
        info: Info,
        id: strawberry.ID,
        version: int,
        input: UpdateTreatmentPlanInput,
        reason: Annotated[
            str | None, strawberry.argument(description="Required once the plan is completed or stopped.")
        ] = None,
    ) -> TreatmentPlanType:
        data = clinical.PlanInput(
            plan_type=_value(input.plan_type),
            description=input.description,
            diagnosis_id=decode_optional_id("Diagnosis", input.diagnosis_id),
            start_date=input.start_date,
            end_date=input.end_date,
            status=_value(input.status),
        )
        row = await clinical.update_plan(info.context, decode_id("TreatmentPlan", id), version, data, reason)
        return TreatmentPlanType.from_row(row)

    @strawberry.mutation
    async def create_follow_up_protocol(
        self, info: Info, name: str, offsets: list[int], description: str = ""
    ) -> FollowUpProtocolType:
        row = await clinical.create_protocol(info.context, name=name, offsets=offsets, description=description)
        return FollowUpProtocolType.from_row(row)

    @strawberry.mutation(description="Schedule the protocol's follow-ups after a visit.")
    async def apply_follow_up_protocol(
        self,
        info: Info,
        visit_id: strawberry.ID,
        protocol_id: strawberry.ID,
        method: FollowUpMethodEnum = m.FollowUpMethod.PHONE,  # type: ignore[valid-type]
    ) -> list[FollowUpType]:
        rows = await clinical.apply_protocol(
            info.context,
            visit_id=decode_id("Visit", visit_id),
            protocol_id=decode_id("FollowUpProtocol", protocol_id),
            method=_value(method) or "",
        )
        return [FollowUpType.from_row(row) for row in rows]

    @strawberry.mutation
    async def record_follow_up_outcome(
        self,
        info: Info,
        follow_up_id: strawberry.ID,
        input: FollowUpOutcomeInput,
        reason: Annotated[
            str | None, strawberry.argument(description="Required to correct a recorded outcome.")
        ] = None,
    ) -> FollowUpType:
        data = clinical.OutcomeInput(
            outcome_text=input.outcome_text,
            pain_score=input.pain_score,
            bleeding=input.bleeding,
            wexner_score=input.wexner_score,
            recurrence=input.recurrence,
            satisfaction=input.satisfaction,
            missed=input.missed,
        )
        return FollowUpType.from_row(
            await clinical.record_outcome(info.context, decode_id("FollowUp", follow_up_id), data, reason)
        )

    @strawberry.mutation(description="Accept the patient's own answer as the follow-up's outcome.")
    async def confirm_follow_up_response(
        self, info: Info, follow_up_id: strawberry.ID, recurrence: bool | None = None
    ) -> FollowUpType:
        row = await clinical.confirm_response(info.context, decode_id("FollowUp", follow_up_id), recurrence)
        return FollowUpType.from_row(row)

    @strawberry.mutation
    async def cancel_follow_up(self, info: Info, follow_up_id: strawberry.ID, reason: str) -> FollowUpType:
        return FollowUpType.from_row(
            await clinical.cancel_follow_up(info.context, decode_id("FollowUp", follow_up_id), reason)
        )

    @strawberry.mutation(description="Answer one of your own due follow-ups from the mini-program.")
    async def submit_follow_up_response(
        self, info: Info, follow_up_id: strawberry.ID, input: FollowUpResponseInput
    ) -> FollowUpType:
        data = clinical.ResponseInput(
            text=input.text,
            pain_score=input.pain_score,
            bleeding=input.bleeding,
            wexner_score=input.wexner_score,
            satisfaction=input.satisfaction,
        )
        return FollowUpType.from_row(
            await clinical.submit_response(info.context, decode_id("FollowUp", follow_up_id), data)
        )

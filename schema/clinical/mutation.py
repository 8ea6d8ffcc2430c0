"""The clinical domain's mutations."""

from __future__ import annotations

from typing import Annotated

import strawberry

from core.ids import decode_id, decode_optional_id
from models import clinical as m
from resolvers import clinical
from resolvers.data.context import Info
from schema.clinical.follow_ups import FollowUpMethodEnum, FollowUpProtocolType, FollowUpType
from schema.clinical.inputs import (
    CreateTreatmentPlanInput,
    ExamReportInput,
    FollowUpOutcomeInput,
    FollowUpResponseInput,
    RecordVisitInput,
    UpdateTreatmentPlanInput,
    enum_value,
)
from schema.clinical.records import ExamReportType, TreatmentPlanType, VisitType


@strawberry.type
class ClinicalMutation:
    @strawberry.mutation(description="Record a visit with its diagnoses (ICD-10 codes are validated).")
    async def record_visit(self, info: Info, input: RecordVisitInput) -> VisitType:
        data = clinical.VisitInput(
            patient_id=decode_id("Patient", input.patient_id),
            visit_date=input.visit_date,
            visit_type=enum_value(input.visit_type) or "",
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
            kind=enum_value(input.kind) or "",
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
            plan_type=enum_value(input.plan_type),
            description=input.description,
            diagnosis_id=decode_optional_id("Diagnosis", input.diagnosis_id),
            start_date=input.start_date,
            end_date=input.end_date,
            status=enum_value(input.status),
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
            plan_type=enum_value(input.plan_type),
            description=input.description,
            diagnosis_id=decode_optional_id("Diagnosis", input.diagnosis_id),
            start_date=input.start_date,
            end_date=input.end_date,
            status=enum_value(input.status),
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
            method=enum_value(method) or "",
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

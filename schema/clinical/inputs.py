"""The clinical domain's input types."""

from __future__ import annotations

from datetime import date

import strawberry

from models import clinical as m
from schema.clinical.records import ExamKindEnum, PlanStatusEnum, PlanTypeEnum, VisitTypeEnum


def enum_value(value: object) -> str | None:
    """An input enum's value (as the resolvers take it)."""
    return None if value is None else str(getattr(value, "value", value))


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

"""A patient's clinical records as shown: visits with their diagnoses, exam reports, treatment plans.

Which of them come back at all (a voided one only to those who see it, marked) is the loaders' business
(resolvers/data/loaders.py, policies/voided.py); the records each type holds are handed to the look-ahead of
lists (schema/engine/prefetch.py) here.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from typing import Any, cast

import strawberry

from core.ids import encode_id
from models import clinical as m
from models.base import enum_member
from resolvers.data.context import Info
from schema.engine.prefetch import Records, history_of, register
from schema.engine.projection import DIAGNOSIS, VISIT
from schema.integrity import VoidInfoType

VisitTypeEnum = strawberry.enum(m.VisitType, name="VisitType")
ExamKindEnum = strawberry.enum(m.ExamKind, name="ExamKind")
PlanTypeEnum = strawberry.enum(m.PlanType, name="PlanType")
PlanStatusEnum = strawberry.enum(m.PlanStatus, name="PlanStatus")


def optional_id(kind: str, pk: int | None) -> strawberry.ID | None:
    return None if pk is None else strawberry.ID(encode_id(kind, pk))


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
            voided=None if row.voided_at is None else VoidInfoType.of(row),  # inline: rows by the hundred
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
            voided=None if row.voided_at is None else VoidInfoType.of(row),  # inline: rows by the hundred
            id=strawberry.ID(encode_id("Visit", row.id)),  # type: ignore[arg-type]
            visit_date=row.visit_date,
            visit_type=enum_member(m.VisitType, row.visit_type),
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
        return cast(list[DiagnosisType], history_of(info, self, "diagnoses"))


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
            voided=None if row.voided_at is None else VoidInfoType.of(row),  # inline: rows by the hundred
            id=strawberry.ID(encode_id("ExamReport", row.id)),  # type: ignore[arg-type]
            visit_id=optional_id("Visit", row.visit_id),
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
            voided=None if row.voided_at is None else VoidInfoType.of(row),  # inline: rows by the hundred
            id=strawberry.ID(encode_id("TreatmentPlan", row.id)),  # type: ignore[arg-type]
            diagnosis_id=optional_id("Diagnosis", row.diagnosis_id),
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


# ---- what the look-ahead of lists (and each object's own field) loads ------------------------------

register("Patient", Records("visits", "visits", VisitType, lambda loaders, c: loaders.of_patients(m.Visit, c), VISIT))
register(
    "Patient",
    Records("diagnoses", "diagnoses", DiagnosisType, lambda loaders, c: loaders.of_patients(m.Diagnosis, c), DIAGNOSIS),
)
register(
    "Patient",
    Records("exam_reports", "examReports", ExamReportType, lambda loaders, c: loaders.of_patients(m.ExamReport, c)),
)
register(
    "Patient",
    Records(
        "treatment_plans",
        "treatmentPlans",
        TreatmentPlanType,
        lambda loaders, c: loaders.of_patients(m.TreatmentPlan, c),
    ),
)
register(
    "Visit",
    Records("diagnoses", "diagnoses", DiagnosisType, lambda loaders, c: loaders.diagnoses_of_visits(c), DIAGNOSIS),
)

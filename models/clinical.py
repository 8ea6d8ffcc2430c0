"""A patient's clinical history: visits with diagnoses, examination reports, treatment plans."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import MYSQL_TABLE_ARGS, LongText, UTCDateTime, created_at_field, updated_at_field


class VisitType(StrEnum):
    OUTPATIENT = "outpatient"
    INPATIENT = "inpatient"
    SURGERY = "surgery"
    TELECONSULTATION = "teleconsultation"


class ExamKind(StrEnum):
    COLONOSCOPY = "colonoscopy"
    ANOSCOPY = "anoscopy"
    PATHOLOGY = "pathology"
    IMAGING = "imaging"
    LABORATORY = "laboratory"


class PlanType(StrEnum):
    MEDICATION = "medication"
    SURGERY = "surgery"
    TCM = "tcm"
    LIFESTYLE = "lifestyle"
    OTHER = "other"


class PlanStatus(StrEnum):
    PLANNED = "planned"
    ACTIVE = "active"
    COMPLETED = "completed"
    STOPPED = "stopped"


class Visit(SQLModel, table=True):
    __tablename__ = "visit"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    physician_id: int | None = Field(default=None, foreign_key="app_user.id", index=True)
    department_id: int | None = Field(default=None, foreign_key="department.id", index=True)
    visit_date: date
    visit_type: str = Field(default=VisitType.OUTPATIENT.value, max_length=24)
    chief_complaint: str | None = Field(default=None, sa_type=LongText)
    present_illness: str | None = Field(default=None, sa_type=LongText)
    examination_findings: str | None = Field(default=None, sa_type=LongText)
    notes: str | None = Field(default=None, sa_type=LongText)
    # The emergency grant the visit was recorded under, if its patient was outside the physician's reach
    # otherwise: such a visit never brings the patient into the physician's reach (policies/scope.py).
    under_grant_id: int | None = Field(default=None, foreign_key="access_grant.id")
    voided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    voided_by_id: int | None = None
    void_reason: str | None = Field(default=None, max_length=500)
    created_at: datetime = created_at_field()


class Diagnosis(SQLModel, table=True):
    __tablename__ = "diagnosis"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: int | None = Field(default=None, primary_key=True)
    visit_id: int = Field(foreign_key="visit.id", index=True)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    icd10_code: str = Field(max_length=16, index=True)
    icd10_name: str = Field(max_length=255)
    is_primary: bool = False
    tcm_syndrome: str | None = Field(default=None, max_length=100)
    voided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    voided_by_id: int | None = None
    void_reason: str | None = Field(default=None, max_length=500)
    created_at: datetime = created_at_field()


class ExamReport(SQLModel, table=True):
    __tablename__ = "exam_report"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    visit_id: int | None = Field(default=None, foreign_key="visit.id", index=True)
    kind: str = Field(max_length=24)
    exam_date: date
    findings: str | None = Field(default=None, sa_type=LongText)
    conclusion: str | None = Field(default=None, sa_type=LongText)
    attachment_ref: str | None = Field(default=None, max_length=255)
    created_by_id: int | None = Field(default=None, foreign_key="app_user.id")
    voided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    voided_by_id: int | None = None
    void_reason: str | None = Field(default=None, max_length=500)
    created_at: datetime = created_at_field()


class TreatmentPlan(SQLModel, table=True):
    __tablename__ = "treatment_plan"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    diagnosis_id: int | None = Field(default=None, foreign_key="diagnosis.id", index=True)
    plan_type: str = Field(max_length=24, index=True)
    description: str = Field(default="", sa_type=LongText)
    start_date: date | None = None
    end_date: date | None = None
    status: str = Field(default=PlanStatus.PLANNED.value, max_length=16)
    author_id: int | None = Field(default=None, foreign_key="app_user.id")
    voided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    voided_by_id: int | None = None
    void_reason: str | None = Field(default=None, max_length=500)
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()
    version: int = 1


class FollowUpStatus(StrEnum):
    SCHEDULED = "scheduled"
    COMPLETED = "completed"
    MISSED = "missed"
    CANCELLED = "cancelled"


class FollowUpMethod(StrEnum):
    PHONE = "phone"
    CLINIC = "clinic"
    WECHAT = "wechat"


class FollowUpProtocol(SQLModel, table=True):
    __tablename__ = "follow_up_protocol"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    offsets: str = Field(max_length=255, description="Days after the visit, comma-separated: 7,30,90")
    description: str = Field(default="", max_length=255)
    created_at: datetime = created_at_field()


class FollowUp(SQLModel, table=True):
    __tablename__ = "follow_up"
    __table_args__ = (
        UniqueConstraint("visit_id", "protocol_id", "offset_days", name="uq_follow_up_visit_protocol_offset"),
        MYSQL_TABLE_ARGS,
    )

    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    visit_id: int | None = Field(default=None, foreign_key="visit.id", index=True)
    protocol_id: int | None = Field(default=None, foreign_key="follow_up_protocol.id")
    offset_days: int | None = None
    due_date: date = Field(index=True)
    status: str = Field(default=FollowUpStatus.SCHEDULED.value, max_length=16, index=True)
    method: str = Field(default=FollowUpMethod.PHONE.value, max_length=16)
    outcome_text: str | None = Field(default=None, sa_type=LongText)
    pain_score: int | None = None
    bleeding: bool | None = None
    wexner_score: int | None = None
    recurrence: bool | None = None
    satisfaction: int | None = None
    recorded_by_id: int | None = Field(default=None, foreign_key="app_user.id")
    recorded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    cancel_reason: str | None = Field(default=None, max_length=255)
    # The patient's own answer from the mini-program, waiting for a physician to confirm it.
    response_text: str | None = Field(default=None, sa_type=LongText)
    response_pain_score: int | None = None
    response_bleeding: bool | None = None
    response_wexner_score: int | None = None
    response_satisfaction: int | None = None
    response_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    voided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    voided_by_id: int | None = None
    void_reason: str | None = Field(default=None, max_length=500)
    created_at: datetime = created_at_field()
    version: int = 1

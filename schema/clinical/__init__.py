"""A patient's clinical history over the API: visits, diagnoses, exam reports, treatment plans, follow-ups."""

from __future__ import annotations

from schema.clinical.follow_ups import FollowUpProtocolType, FollowUpType, OutcomeGroupType
from schema.clinical.mutation import ClinicalMutation
from schema.clinical.query import ClinicalQuery
from schema.clinical.records import DiagnosisType, ExamReportType, TreatmentPlanType, VisitType

__all__ = [
    "ClinicalMutation",
    "ClinicalQuery",
    "DiagnosisType",
    "ExamReportType",
    "FollowUpProtocolType",
    "FollowUpType",
    "OutcomeGroupType",
    "TreatmentPlanType",
    "VisitType",
]

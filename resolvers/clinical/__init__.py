"""Visits with diagnoses, exam reports, treatment plans, follow-up protocols and follow-ups, and the recovery
analysis over them: every read and write through the caller's scoped repository (ctx.data)."""

from __future__ import annotations

from resolvers.clinical import icd10
from resolvers.clinical.follow_ups import (
    OutcomeInput,
    ResponseInput,
    apply_protocol,
    cancel_follow_up,
    confirm_response,
    create_protocol,
    list_protocols,
    my_follow_ups,
    overdue_follow_ups,
    record_outcome,
    submit_response,
)
from resolvers.clinical.outcomes import OutcomeGroup, outcome_summary
from resolvers.clinical.reports_plans import ExamReportInput, PlanInput, add_exam_report, create_plan, update_plan
from resolvers.clinical.visits import DiagnosisInput, VisitInput, record_visit

__all__ = [
    "DiagnosisInput",
    "ExamReportInput",
    "OutcomeGroup",
    "OutcomeInput",
    "PlanInput",
    "ResponseInput",
    "VisitInput",
    "add_exam_report",
    "apply_protocol",
    "cancel_follow_up",
    "confirm_response",
    "create_plan",
    "create_protocol",
    "icd10",
    "list_protocols",
    "my_follow_ups",
    "outcome_summary",
    "overdue_follow_ups",
    "record_outcome",
    "record_visit",
    "submit_response",
    "update_plan",
]

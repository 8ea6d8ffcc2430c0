"""Recovery analysis: completed follow-up outcomes of the patients in reach, by treatment plan type."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Integer, cast, func

from core.validation import choice
from models.clinical import Diagnosis, FollowUp, FollowUpStatus, PlanType, TreatmentPlan
from resolvers.data.context import Context

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
    kind = None if plan_type is None else choice(PlanType, plan_type, "planType").value
    code = None if not diagnosis_code else diagnosis_code.strip().upper().replace("%", "").replace("_", "")

    def plans_of(statement: Any) -> Any:
        # Each patient once per plan type: a revised plan of the same type must not count twice.
        if kind is not None:
            statement = statement.where(TreatmentPlan.plan_type == kind)
        if code is not None:
            statement = statement.join(Diagnosis, Diagnosis.id == TreatmentPlan.diagnosis_id).where(
                Diagnosis.icd10_code.like(code + "%")
            )
        return statement.distinct()

    plans = await ctx.data.select(TreatmentPlan, TreatmentPlan.patient_id, TreatmentPlan.plan_type, then=plans_of)
    plan = plans.subquery()
    conditions = [FollowUp.status == FollowUpStatus.COMPLETED.value]
    if since is not None:
        conditions.append(FollowUp.due_date >= since)
    if until is not None:
        conditions.append(FollowUp.due_date <= until)
    statement = await ctx.data.select(
        FollowUp,
        plan.c.plan_type,
        func.count(func.distinct(FollowUp.patient_id)),
        func.count(func.distinct(FollowUp.id)),
        func.avg(FollowUp.pain_score),
        func.avg(cast(FollowUp.bleeding, Integer)),
        func.avg(FollowUp.wexner_score),
        func.avg(cast(FollowUp.recurrence, Integer)),
        func.avg(FollowUp.satisfaction),
        then=lambda s: (
            s.select_from(FollowUp)
            .join(plan, plan.c.patient_id == FollowUp.patient_id)
            .where(*conditions)
            .group_by(plan.c.plan_type)
            .order_by(plan.c.plan_type)
        ),
    )
    groups = []
    for kind_, patients, follow_ups, pain, bleeding, wexner, recurrence, satisfaction in await ctx.data.rows(statement):
        if patients < MIN_GROUP:
            groups.append(OutcomeGroup(kind_, None, None, None, None, None, None, None, True))
        else:
            groups.append(
                OutcomeGroup(
                    kind_,
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


def _round(value: object) -> float | None:
    return None if value is None else round(float(value), 2)  # type: ignore[arg-type]

"""The clinical domain's queries."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import strawberry

from models import clinical as m
from resolvers import clinical
from resolvers.clinical import icd10
from resolvers.data.context import Info
from schema.clinical.follow_ups import FollowUpProtocolType, FollowUpType, OutcomeGroupType
from schema.clinical.inputs import enum_value
from schema.clinical.records import Icd10CodeType, PlanTypeEnum
from schema.engine.connection import Connection, connection


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
            info.context, diagnosis_code=diagnosis_code, plan_type=enum_value(plan_type), since=from_, until=to
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
        return [FollowUpType.from_row(row) for row in await clinical.my_follow_ups(info.context)]

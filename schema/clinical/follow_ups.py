"""Follow-ups as shown: protocols, the follow-ups they schedule, the patient's answers, outcome groups."""

from __future__ import annotations

from datetime import date, datetime

import strawberry

from core.ids import encode_id
from models import clinical as m
from models.base import enum_member
from resolvers.data.context import Info
from schema.clinical.records import PlanTypeEnum, optional_id
from schema.engine.prefetch import Records, register
from schema.engine.projection import FOLLOW_UP
from schema.integrity import VoidInfoType
from schema.patient import PatientType

FollowUpStatusEnum = strawberry.enum(m.FollowUpStatus, name="FollowUpStatus")
FollowUpMethodEnum = strawberry.enum(m.FollowUpMethod, name="FollowUpMethod")


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
            voided=None if row.voided_at is None else VoidInfoType.of(row),  # inline: rows by the hundred
            id=strawberry.ID(encode_id("FollowUp", row.id)),  # type: ignore[arg-type]
            visit_id=optional_id("Visit", row.visit_id),
            due_date=row.due_date,
            status=enum_member(m.FollowUpStatus, row.status),
            method=enum_member(m.FollowUpMethod, row.method),
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
    async def patient(self, info: Info) -> PatientType | None:
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


register(
    "Patient",
    Records("follow_ups", "followUps", FollowUpType, lambda loaders, c: loaders.of_patients(m.FollowUp, c), FOLLOW_UP),
)

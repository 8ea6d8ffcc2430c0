"""Follow-up protocols, the follow-ups they schedule, their outcomes, and the patient's own answers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from core.errors import bad_input, conflict, not_found
from core.timeutil import utcnow
from core.validation import choice, score, text
from models.clinical import FollowUp, FollowUpMethod, FollowUpProtocol, FollowUpStatus, Visit
from policies.voided import voided_hidden
from resolvers.audit import history
from resolvers.audit.unit import WriteUnit
from resolvers.data.context import Context
from resolvers.data.pagination import Page
from resolvers.patient import my_patient_id, overdue_clause

# ---- protocols ---------------------------------------------------------------------------------


def parse_offsets(offsets: Sequence[int]) -> list[int]:
    values = sorted(set(offsets))
    if not values or len(values) > 20 or any(not 1 <= v <= 3650 for v in values):
        raise bad_input("Offsets: 1 to 20 distinct day counts between 1 and 3650", "offsets")
    return values


async def list_protocols(ctx: Context) -> list[FollowUpProtocol]:
    statement = await ctx.data.select(FollowUpProtocol, then=lambda s: s.order_by(FollowUpProtocol.id))
    return await ctx.data.objects(statement)


async def create_protocol(ctx: Context, *, name: str, offsets: Sequence[int], description: str) -> FollowUpProtocol:
    values = parse_offsets(offsets)
    async with ctx.data.write(
        operation="createFollowUpProtocol",
        action="create",
        entity_type="FollowUpProtocol",
        conflict_message="A protocol with that name exists",
    ) as unit:
        protocol = FollowUpProtocol(
            name=text(name, "name", limit=100, required=True) or "",
            offsets=",".join(str(v) for v in values),
            description=(description or "").strip()[:255],
        )
        unit.add(protocol)
        await unit.flush()
        unit.entity_id = str(protocol.id)
    return protocol


async def apply_protocol(ctx: Context, *, visit_id: int, protocol_id: int, method: str) -> list[FollowUp]:
    follow_method = choice(FollowUpMethod, method, "method")
    async with ctx.data.write(
        operation="applyFollowUpProtocol",
        action="create",
        entity_type="FollowUp",
        conflict_message="This protocol is already applied to this visit",
    ) as unit:
        visit = await unit.get(Visit, visit_id)
        protocol = await unit.find(FollowUpProtocol, protocol_id)
        if protocol is None:
            raise not_found("Follow-up protocol")
        created = []
        for offset in (int(v) for v in protocol.offsets.split(",")):
            follow_up = FollowUp(
                patient_id=visit.patient_id,
                visit_id=visit.id,
                protocol_id=protocol.id,
                offset_days=offset,
                due_date=visit.visit_date + timedelta(days=offset),
                method=follow_method.value,
            )
            unit.add(follow_up)
            created.append(follow_up)
        await unit.flush()
        for follow_up in created:
            history.record_created(ctx, unit, follow_up, "FollowUp")
        unit.entity_id = str(visit_id)
        unit.patient_id = visit.patient_id
        unit.detail = {"protocol": protocol.name, "followUps": [f.id for f in created]}
    return created


# ---- outcomes ----------------------------------------------------------------------------------


@dataclass
class OutcomeInput:
    outcome_text: str | None = None
    pain_score: int | None = None
    bleeding: bool | None = None
    wexner_score: int | None = None
    recurrence: bool | None = None
    satisfaction: int | None = None
    missed: bool = False


def check_measures(pain: int | None, wexner: int | None, satisfaction: int | None) -> None:
    score(pain, "painScore", 0, 10)
    score(wexner, "wexnerScore", 0, 20)
    score(satisfaction, "satisfaction", 1, 5)


_CHANGED = "This follow-up was changed by someone else; reload and try again"


async def _claim(ctx: Context, unit: WriteUnit, follow_up: FollowUp) -> None:
    """Take the follow-up for this write: bump its version only if it is still the one read, so two
    writes racing on one follow-up (an outcome and a cancellation) cannot both pass their checks."""
    changed = await unit.execute(
        (await ctx.data.update(FollowUp))
        .where(FollowUp.id == follow_up.id, FollowUp.version == follow_up.version)
        .values(version=follow_up.version + 1)
        .execution_options(synchronize_session=False)
    )
    if changed != 1:
        raise conflict(_CHANGED)
    follow_up.version += 1


async def record_outcome(ctx: Context, follow_up_id: int, data: OutcomeInput, reason: str | None = None) -> Any:
    """The outcome, as one UPDATE guarded by the version read (two writes racing on one follow-up cannot both pass
    their checks) and within the caller's reach, with its amendment and event. The follow-up as written."""
    check_measures(data.pain_score, data.wexner_score, data.satisfaction)
    async with ctx.data.write(operation="recordFollowUpOutcome", action="update", entity_type="FollowUp") as unit:
        follow_up = await unit.row(FollowUp, follow_up_id, what="Follow-up")
        if follow_up.status == FollowUpStatus.CANCELLED.value:
            raise conflict("This follow-up was cancelled")
        before = history.snapshot(follow_up, FollowUp)
        # Correcting an outcome already recorded is an amendment of a signed-off record.
        why = history.require_reason(reason, signed_off=follow_up.status != FollowUpStatus.SCHEDULED.value)
        values = {
            "status": (FollowUpStatus.MISSED if data.missed else FollowUpStatus.COMPLETED).value,
            "outcome_text": text(data.outcome_text, "outcomeText", limit=5000),
            "pain_score": data.pain_score,
            "bleeding": data.bleeding,
            "wexner_score": data.wexner_score,
            "recurrence": data.recurrence,
            "satisfaction": data.satisfaction,
            "recorded_by_id": ctx.principal.user_id,
            "recorded_at": utcnow(),
        }
        written = await unit.change(FollowUp, follow_up, values, conflict_message=_CHANGED)
        history.record_updated(ctx, unit, written, "FollowUp", before, why, model=FollowUp)
        unit.entity_id = str(follow_up_id)
        unit.patient_id = written.patient_id
        unit.detail = {"status": written.status}
    return written


async def confirm_response(ctx: Context, follow_up_id: int, recurrence: bool | None) -> Any:
    """The physician confirms what the patient answered from the phone: it becomes the outcome."""
    async with ctx.data.write(operation="confirmFollowUpResponse", action="update", entity_type="FollowUp") as unit:
        follow_up = await unit.row(FollowUp, follow_up_id, what="Follow-up")
        if follow_up.response_at is None:
            raise bad_input("The patient has not answered this follow-up", "followUpId")
        if follow_up.status != FollowUpStatus.SCHEDULED.value:
            raise conflict("This follow-up is already closed")
        before = history.snapshot(follow_up, FollowUp)
        values = {
            "status": FollowUpStatus.COMPLETED.value,
            "outcome_text": follow_up.response_text,
            "pain_score": follow_up.response_pain_score,
            "bleeding": follow_up.response_bleeding,
            "wexner_score": follow_up.response_wexner_score,
            "satisfaction": follow_up.response_satisfaction,
            "recurrence": recurrence,
            "recorded_by_id": ctx.principal.user_id,
            "recorded_at": utcnow(),
        }
        written = await unit.change(FollowUp, follow_up, values, conflict_message=_CHANGED)
        history.record_updated(ctx, unit, written, "FollowUp", before, model=FollowUp)
        unit.entity_id = str(follow_up_id)
        unit.patient_id = written.patient_id
    return written


async def cancel_follow_up(ctx: Context, follow_up_id: int, reason: str) -> Any:
    reason_text = text(reason, "reason", limit=255, required=True)
    async with ctx.data.write(operation="cancelFollowUp", action="update", entity_type="FollowUp") as unit:
        follow_up = await unit.row(FollowUp, follow_up_id, what="Follow-up")
        if follow_up.status != FollowUpStatus.SCHEDULED.value:
            raise conflict("Only a scheduled follow-up can be cancelled")
        before = history.snapshot(follow_up, FollowUp)
        values = {"status": FollowUpStatus.CANCELLED.value, "cancel_reason": reason_text}
        written = await unit.change(FollowUp, follow_up, values, conflict_message=_CHANGED)
        history.record_updated(ctx, unit, written, "FollowUp", before, reason_text, model=FollowUp)
        unit.entity_id = str(follow_up_id)
        unit.patient_id = written.patient_id
    return written


# ---- the patient's side ------------------------------------------------------------------------


@dataclass
class ResponseInput:
    text: str | None = None
    pain_score: int | None = None
    bleeding: bool | None = None
    wexner_score: int | None = None
    satisfaction: int | None = None


PATIENT_ANSWER_DAYS_EARLY = 3


async def submit_response(ctx: Context, follow_up_id: int, data: ResponseInput) -> FollowUp:
    """A patient answers their own due follow-up from the mini-program."""
    check_measures(data.pain_score, data.wexner_score, data.satisfaction)
    patient_id = await my_patient_id(ctx)
    hidden = voided_hidden(FollowUp, await ctx.access())  # a voided follow-up is not theirs to answer
    async with ctx.data.write(operation="submitFollowUpResponse", action="update", entity_type="FollowUp") as unit:
        statement = await ctx.data.select(
            FollowUp, purpose="write", then=lambda s: s.where(FollowUp.id == follow_up_id, *hidden)
        )
        follow_up = await unit.first(statement)
        if follow_up is None or patient_id is None or follow_up.patient_id != patient_id:
            raise not_found("Follow-up")
        if follow_up.status != FollowUpStatus.SCHEDULED.value:
            raise conflict("This follow-up is closed")
        if follow_up.due_date > ctx.today() + timedelta(days=PATIENT_ANSWER_DAYS_EARLY):
            raise bad_input("This follow-up is not due yet", "followUpId")
        before = history.snapshot(follow_up)
        await _claim(ctx, unit, follow_up)
        follow_up.response_text = text(data.text, "text", limit=2000)
        follow_up.response_pain_score = data.pain_score
        follow_up.response_bleeding = data.bleeding
        follow_up.response_wexner_score = data.wexner_score
        follow_up.response_satisfaction = data.satisfaction
        follow_up.response_at = utcnow()
        unit.add(follow_up)
        history.record_updated(ctx, unit, follow_up, "FollowUp", before)
        unit.entity_id = str(follow_up_id)
        unit.patient_id = patient_id
    return follow_up


async def my_follow_ups(ctx: Context) -> list[FollowUp]:
    patient_id = await my_patient_id(ctx)
    if patient_id is None:
        return []
    hidden = voided_hidden(FollowUp, await ctx.access())
    statement = await ctx.data.select(
        FollowUp,
        then=lambda s: s.where(FollowUp.patient_id == patient_id, *hidden).order_by(FollowUp.due_date, FollowUp.id),
    )
    return await ctx.data.objects(statement)


# ---- lists -------------------------------------------------------------------------------------


async def overdue_follow_ups(ctx: Context, *, first: int | None, after: str | None) -> Page[FollowUp]:
    hidden = voided_hidden(FollowUp, await ctx.access())
    today = ctx.today()
    statement = await ctx.data.select(FollowUp, then=lambda s: s.where(overdue_clause(today), *hidden))
    page = await ctx.data.page(
        statement,
        keys=[FollowUp.due_date, FollowUp.id],
        key_of=lambda row: [row.due_date.isoformat(), row.id],
        first=first,
        after=after,
    )
    await ctx.data.record_reads([row.patient_id for row in page.items], action="read", operation="overdueFollowUps")
    return page

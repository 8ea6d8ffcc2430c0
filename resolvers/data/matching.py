"""Matching on a protected value: the one way a search, a filter or a duplicate check compares a value with
what a caller typed (identity numbers, phones; any coordinate with a mask).

The rule is the access layer's (policies/decision.py `match_mode`): a value the caller sees in clear is
compared freely; one they see only masked is a *lookup*: recorded before it runs (an `event` row, action
`lookup`, whatever it then finds: misses are recorded like hits) and answered only while the account has made
no more than MASKED_LOOKUPS_PER_DAY of them in 24 hours, so guessing a masked number among its few candidates
is slow and seen; a value hidden from the caller is never compared, so no answer depends on it. Every alias
and batch item of a request runs its resolver, so each one is a lookup. tests/test_oracles.py keeps the
search columns of masked values out of every module but this one.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, func, select

from core.errors import AppError, ErrorCode
from core.timeutil import utcnow
from models.audit import Event
from policies.decision import MatchMode
from policies.masking import SHAPES
from resolvers.audit.unit import make_event

if TYPE_CHECKING:
    from resolvers.data.context import Context

LOOKUP = "lookup"


async def match_mode(ctx: Context, type_name: str, field_name: str) -> MatchMode:
    return (await ctx.access()).decision.match_mode(type_name, field_name)


async def matching(
    ctx: Context, type_name: str, field_name: str, column: Any, term: str, compared: Any, *, operation: str
) -> ColumnElement[bool] | None:
    """`column == compared` where the caller may match `type_name.field_name` on `term` (spending a lookup
    where they see it masked), else None: the caller's answer must then not depend on that value at all."""
    mode = await match_mode(ctx, type_name, field_name)
    if mode is MatchMode.NONE:
        return None
    shape = SHAPES.get(f"{type_name}.{field_name}")
    if mode is MatchMode.LOOKUP:
        if shape is not None and not shape(term):
            return None  # not that kind of value: nothing to look up, nothing spent
        await spend_lookup(ctx, type_name, field_name, operation=operation)
    condition: ColumnElement[bool] = column == compared
    return condition


async def spend_lookup(ctx: Context, type_name: str, field_name: str, *, operation: str) -> None:
    """Record one lookup of a masked value and refuse it (RATE_LIMITED) past the account's daily allowance.

    Recorded first, in a transaction of its own, then counted: the n-th lookup to commit counts at least n,
    so parallel aliases can never all be answered (no lock: a row committed before the count is seen)."""
    settings = ctx.settings
    async with ctx.db.transaction() as session:
        session.add(
            make_event(
                ctx,
                action=LOOKUP,
                operation=operation,
                entity_type=type_name,
                detail={"field": field_name},
            )
        )
    since = utcnow() - timedelta(hours=24)
    async with ctx.db.session() as session:
        made = (
            await session.execute(
                select(func.count())
                .select_from(Event)
                .where(
                    Event.actor_id == ctx.principal.user_id,  # type: ignore[arg-type]
                    Event.action == LOOKUP,  # type: ignore[arg-type]
                    Event.occurred_at >= since,  # type: ignore[arg-type,operator]
                )
            )
        ).scalar_one()
    if made > settings.masked_lookups_per_day:
        raise AppError(
            ErrorCode.RATE_LIMITED,
            f"At most {settings.masked_lookups_per_day} searches a day on values you see masked",
            retryAfter=3600,
        )

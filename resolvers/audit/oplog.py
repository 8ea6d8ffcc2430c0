"""The operation log: a view of the append-only event table, one entry per mutation the API ran.

A mutation's call (its name, raw arguments and start, noted by the schema's field extension,
schema/engine/oplog.py) is written with the event of its write unit, or of its refusal: the caller's client, how
long it had run, and its variables as kept here. Kept: arguments whose type cannot carry free text (IDs, enums,
booleans, known by the schema) and those allow-listed per operation below; everything else is replaced by
`[redacted]`, and a secret (a password, token, code, identity number: core/logredact.py's names) never, even when
allow-listed. Patient data (names, phones, notes) is never allow-listed: it stays in the records, behind their reach.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

from core.errors import ErrorCode, bad_input
from core.logredact import REDACTED, is_secret_name
from core.timeutil import as_utc
from models.audit import Event
from models.user import User

if TYPE_CHECKING:
    from resolvers.data.context import Context
    from resolvers.data.pagination import Page

# Per operation, the argument paths (`input.name`) whose strings and numbers are safe to keep: names of
# organisational things, keys, orders. IDs, enums and booleans are kept for every operation without listing.
_MENU = frozenset(
    {"input.key", "input.titleZh", "input.titleEn", "input.path", "input.icon", "input.sortOrder", "input.needs"}
)
SAFE_ARGUMENTS: dict[str, frozenset[str]] = {
    "createDepartment": frozenset({"input.name", "input.sortOrder"}),
    "updateDepartment": frozenset({"input.name", "input.sortOrder"}),
    "createPosition": frozenset({"name", "description"}),
    "updatePosition": frozenset({"name", "description"}),
    "grantPermission": frozenset({"roleKey", "object", "action"}),
    "revokePermission": frozenset({"roleKey", "object", "action"}),
    "createRole": frozenset({"key", "name", "inherits", "description"}),
    "updateRole": frozenset({"key", "input.name", "input.description", "input.inherits"}),
    "deleteRole": frozenset({"key"}),
    "assignRoles": frozenset({"roleKeys"}),
    "createUser": frozenset({"input.username", "input.displayName", "input.roleKeys"}),
    "updateUser": frozenset({"input.displayName"}),
    "updateDictionaryEntry": frozenset({"dictionary", "labelZh", "labelEn"}),
    "reorderDictionary": frozenset({"dictionary", "codes"}),
    "createMenu": _MENU,
    "updateMenu": _MENU,
    "moveMenu": frozenset({"sortOrder"}),
    "createJob": frozenset({"input.name", "input.target", "input.cron"}),
    "updateJob": frozenset({"input.name", "input.cron"}),
    "createModerationKeyword": frozenset({"category"}),
    "clearCache": frozenset({"namespace"}),
}  # fmt: skip
_MAX_TEXT = 200
_MAX_ITEMS = 50


@dataclass
class MutationCall:
    """One root mutation field as the API ran it."""

    name: str
    arguments: dict[str, Any]
    typed_safe: frozenset[str]  # argument paths whose type carries no free text (ID, enum, Boolean)
    started: float
    ended: float | None = None

    def elapsed_ms(self) -> int:
        return int(((self.ended or time.perf_counter()) - self.started) * 1000)


def current_call(ctx: Any, operation: str) -> MutationCall | None:
    """The mutation an event belongs to: the one running now (mutations run one at a time), or after the
    operation the last one of that name (a refusal recorded once execution ended)."""
    calls: list[MutationCall] = getattr(getattr(ctx, "state", None), "calls", None) or []
    for call in reversed(calls):
        if call.ended is None or call.name == operation:
            return call
    return None


def kept_variables(call: MutationCall) -> dict[str, Any]:
    allowed = SAFE_ARGUMENTS.get(call.name, frozenset()) | call.typed_safe
    return _keep(call.arguments, "", allowed)


def _keep(values: Mapping[str, Any], prefix: str, allowed: frozenset[str]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for key, value in values.items():
        path = f"{prefix}{key}"
        if is_secret_name(key):
            kept[key] = REDACTED
        elif value is None:
            kept[key] = None
        elif isinstance(value, Mapping):
            kept[key] = _keep(value, path + ".", allowed)
        elif isinstance(value, list) and any(isinstance(item, Mapping) for item in value):
            kept[key] = [_keep(item, path + ".", allowed) if isinstance(item, Mapping) else REDACTED for item in value][
                :_MAX_ITEMS
            ]
        elif path in allowed:
            kept[key] = _bounded(value)
        else:
            kept[key] = REDACTED
    return kept


def _bounded(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.name  # as the API spells it
    if isinstance(value, str):
        return value[:_MAX_TEXT]
    if isinstance(value, list):
        return [_bounded(item) for item in value[:_MAX_ITEMS]]
    return value if isinstance(value, (int, float, bool)) else str(value)[:_MAX_TEXT]


# ---- reading it --------------------------------------------------------------------------------------

OK = "OK"


def result_of(outcome: str) -> str:
    """OK, or the error code the mutation was refused with."""
    return OK if outcome == "success" else outcome.upper()


@dataclass
class OperationLogFilter:
    actor_id: int | None = None
    operation: str | None = None
    result: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _outcome(result: str) -> str:
    value = result.strip().upper()
    if value == OK:
        return "success"
    if value not in {code.value for code in ErrorCode}:
        raise bad_input(f"result: OK or an error code ({', '.join(code.value for code in ErrorCode)})", "result")
    return value.lower()


async def _statement(ctx: Context, filters: OperationLogFilter, columns: tuple[str, ...] | bool = False) -> Any:
    await ctx.data.reach_or_not_found(User, filters.actor_id)  # an actor out of reach is NOT_FOUND
    outcome = _outcome(filters.result) if filters.result else None
    statement = await ctx.data.select(Event, purpose="oplog", columns=columns)
    statement = statement.where(Event.is_mutation.is_(True))  # type: ignore[attr-defined]
    if filters.actor_id is not None:
        statement = statement.where(Event.actor_id == filters.actor_id)
    if filters.operation:
        statement = statement.where(Event.operation == filters.operation.strip())
    if outcome is not None:
        statement = statement.where(Event.outcome == outcome)
    if filters.since:
        statement = statement.where(Event.occurred_at >= as_utc(filters.since))  # a time without a zone is UTC
    if filters.until:
        statement = statement.where(Event.occurred_at < as_utc(filters.until))
    return statement


async def list_operation_logs(
    ctx: Context, *, first: int | None, after: str | None, filters: OperationLogFilter
) -> Page[Event]:
    statement = await _statement(ctx, filters)
    return await ctx.data.page(statement, keys=[Event.id], first=first, after=after, descending=True)


async def actor_names(ctx: Context, actor_ids: Iterable[int | None]) -> dict[int, str]:
    """Usernames of the actors of a page of entries (display names are everyone's; see User's `name` reach)."""
    ids = sorted({actor for actor in actor_ids if actor is not None})
    if not ids:
        return {}
    statement = await ctx.data.select(
        User,
        User.id,
        User.username,
        purpose="name",
        then=lambda s: s.where(User.id.in_(ids)),  # type: ignore[union-attr]
    )
    return {row.id: row.username for row in await ctx.data.rows(statement)}


# ---- export --------------------------------------------------------------------------------------------

EXPORT_LIMIT = 10_000
CSV_COLUMNS = ("time", "actor", "operation", "result", "duration_ms", "ip", "user_agent", "entity", "variables")
_EXPORTED = (
    "id", "occurred_at", "actor_id", "operation", "outcome", "duration_ms", "ip", "user_agent", "entity_type",
    "entity_id", "variables",
)  # fmt: skip
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: str) -> str:
    """A cell a spreadsheet will not run: text starting like a formula gets a leading apostrophe."""
    return "'" + value if value.startswith(_FORMULA_START) else value


async def export_csv(ctx: Context, filters: OperationLogFilter) -> tuple[str, int]:
    """The filtered log as CSV (newest first, at most EXPORT_LIMIT rows) and how many rows it holds."""
    # rows, not ORM objects: ten thousand of them are only written out
    statement = (await _statement(ctx, filters, _EXPORTED)).order_by(Event.id.desc()).limit(EXPORT_LIMIT)  # type: ignore[union-attr]
    events = ctx.data.rows_as(Event, _EXPORTED, await ctx.data.rows(statement))
    names = await actor_names(ctx, (event.actor_id for event in events))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for event in events:
        cells = (
            as_utc(event.occurred_at).isoformat(),
            names.get(event.actor_id, "") if event.actor_id else "",
            event.operation,
            result_of(event.outcome),
            "" if event.duration_ms is None else str(event.duration_ms),
            event.ip,
            event.user_agent,
            f"{event.entity_type}:{event.entity_id}" if event.entity_id else event.entity_type,
            json.dumps(event.variables or {}, ensure_ascii=False, sort_keys=True),
        )
        writer.writerow([spreadsheet_safe(cell) for cell in cells])
    return buffer.getvalue(), len(events)

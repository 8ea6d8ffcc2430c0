"""Amendment history: every change to a clinical record keeps its values before and after, written in the
change's own write unit.

Encrypted fields never enter the history in clear: their change is noted, not their value.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlmodel import SQLModel

from core.errors import bad_input
from core.timeutil import utcnow
from models.integrity import Amendment
from resolvers.audit.unit import WriteUnit

if TYPE_CHECKING:
    from resolvers.data.context import Context

SENSITIVE = {"id_number", "phone", "emergency_contact_phone"}
NOT_TRACKED = {"updated_at", "version", "id_number_hash", "phone_hash"}


def snapshot(row: Any, model: Any = None) -> dict[str, Any] | None:
    """The tracked fields of a record: an ORM object, or with `model` a row read like that model (a unit's `row`)."""
    if row is None:
        return None
    values: dict[str, Any] = {}
    for name in (model or type(row)).model_fields:
        if name in NOT_TRACKED:
            continue
        value = getattr(row, name)
        if isinstance(value, datetime | date):
            value = value.isoformat()
        values[name] = value
    return values


def diff(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any]:
    """{field: {"before": x, "after": y}} for the fields that differ; sensitive values are not kept."""
    keys = set(before or {}) | set(after or {})
    changes: dict[str, Any] = {}
    for key in sorted(keys):
        old = (before or {}).get(key)
        new = (after or {}).get(key)
        if old == new:
            continue
        if key in SENSITIVE:
            changes[key] = {"before": "(set)" if old else None, "after": "(changed)" if new else None}
        else:
            changes[key] = {"before": old, "after": new}
    return changes


def require_reason(reason: str | None, *, signed_off: bool) -> str | None:
    """A record already signed off is amended only with a reason."""
    text = (reason or "").strip()[:500] or None
    if signed_off and text is None:
        raise bad_input("This record is signed off: give a reason for the amendment", "reason")
    return text


def record_change(
    ctx: Context,
    unit: WriteUnit,
    *,
    entity_type: str,
    entity_id: int,
    patient_id: int | None,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    kind: str,
    reason: str | None = None,
) -> None:
    changes = diff(before, after)
    if not changes and kind == "update":
        return
    # written by the unit before its event (resolvers/audit/unit.py), as one INSERT: no ORM object to flush
    unit.amendments.append(
        {
            "entity_type": entity_type,
            "entity_id": entity_id,
            "patient_id": patient_id,
            "kind": kind,
            "changes": changes,
            "reason": reason,
            "actor_id": ctx.principal.user_id,
            "request_id": ctx.request_id,
            "at": utcnow(),
        }
    )


async def history(ctx: Context, *, entity_type: str, entity_id: int) -> list[Amendment]:
    """The record's amendments, oldest first (within the caller's reach: their patient's)."""
    statement = await ctx.data.select(
        Amendment,
        then=lambda s: s.where(Amendment.entity_type == entity_type, Amendment.entity_id == entity_id).order_by(
            Amendment.id
        ),
    )
    return await ctx.data.objects(statement)


def _patient_of(row: SQLModel, entity_type: str) -> int | None:
    return getattr(row, "id", None) if entity_type == "Patient" else getattr(row, "patient_id", None)


def record_created(ctx: Context, unit: WriteUnit, row: SQLModel, entity_type: str) -> None:
    """The first version of a new record (call after the flush that gave it an id)."""
    record_change(
        ctx,
        unit,
        entity_type=entity_type,
        entity_id=int(getattr(row, "id", 0) or 0),
        patient_id=_patient_of(row, entity_type),
        before=None,
        after=snapshot(row),
        kind="create",
    )


def record_updated(
    ctx: Context,
    unit: WriteUnit,
    row: SQLModel,
    entity_type: str,
    before: dict[str, Any] | None,
    reason: str | None = None,
    *,
    model: Any = None,
) -> None:
    """`model`: the row's model when `row` is a row read like it (a unit's `row`/`change`), not an ORM object."""
    record_change(
        ctx,
        unit,
        entity_type=entity_type,
        entity_id=int(getattr(row, "id", 0) or 0),
        patient_id=_patient_of(row, entity_type),
        before=before,
        after=snapshot(row, model),
        kind="update",
        reason=reason,
    )

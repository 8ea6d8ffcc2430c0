"""Provenance of amended records: one resource per change after a record's creation (an update, a void, a merge),
naming the resources it touched, when, by whom and why, as the caller's schema shows an amendment. The values
before and after are not carried (the history has them, under the field decision)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from resolvers.fhir.common import DATA_OPERATION, PROVENANCE_AGENT, Built, Shared, View
from resolvers.fhir.registry import ResourceKind, register

if TYPE_CHECKING:
    from resolvers.data.context import Context

ACTIVITY = {"update": "UPDATE", "void": "NULLIFY", "merge": "UPDATE", "unmerge": "UPDATE"}


async def _load(ctx: Context, patient_ids: Sequence[int], shared: Shared) -> dict[int, list[Any]]:
    """The batch's amendments, read once by the builder (they date every record's lastUpdated too)."""
    amendments: dict[int, list[Any]] = shared.extra.get("amendments", {})
    for rows in amendments.values():
        for row in rows:
            if row.actor_id is not None:
                shared.want_staff.add(row.actor_id)
    return amendments


def _provenances(rows: list[Any], view: View) -> list[Built]:
    shown = view.shown("Amendment")
    built = []
    for amendment in rows:
        activity = ACTIVITY.get(amendment.kind)
        targets = view.sources.get((amendment.entity_type, int(amendment.entity_id)))
        if activity is None or not targets:
            continue
        agent = view.staff(amendment.actor_id, shown=shown.visible("by"))
        resource: dict[str, Any] = {
            "resourceType": "Provenance",
            "id": str(amendment.id),
            "meta": {"lastUpdated": amendment.at.isoformat()},
            "target": [{"reference": target} for target in targets],
            "occurredDateTime": amendment.at.isoformat(),
            "recorded": amendment.at.isoformat(),
            "activity": {"coding": [{"system": DATA_OPERATION, "code": activity}], "text": amendment.kind},
            "agent": [
                {
                    "type": {"coding": [{"system": PROVENANCE_AGENT, "code": "author"}]},
                    "who": agent or {"display": "the follow-up platform"},
                }
            ],
        }
        reason = shown("reason", amendment.reason)
        if reason:
            resource["reason"] = [{"text": reason}]
        built.append(Built(resource, None))
    return built


register(ResourceKind("amendments", ("Provenance",), _load, _provenances, gate=("Amendment", "at"), order=100))

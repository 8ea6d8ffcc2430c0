"""Resources of a batch of patients through the registry (resolvers/fhir/registry.py), and one patient's Bundle.

The caller has already read the patients through their scope (and recorded those reads); every other row comes
through the caller's scoped repository, every value through the field decision. A reference to a resource that is
not among a patient's resources (its record not shown to the caller) is dropped, so what is exported resolves.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from core.timeutil import utcnow
from models.integrity import Amendment
from models.organisation import Department
from models.user import User
from resolvers.fhir.common import Built, Shared, Systems, View, prune, reference_of
from resolvers.fhir.registry import kinds

if TYPE_CHECKING:
    from resolvers.data.context import Context

_REFERENCE = re.compile(rb'"reference":"([^"]+)"')  # as orjson writes a literal reference (no spaces)
_AMENDMENT_COLUMNS = ("id", "entity_type", "entity_id", "patient_id", "kind", "reason", "actor_id", "at")


def systems_of(ctx: Context) -> Systems:
    return Systems(ctx.settings.fhir_system_base.rstrip("/"))


async def _amendments(ctx: Context, patient_ids: Sequence[int]) -> dict[int, list[Any]]:
    data = ctx.data
    statement = await data.select(
        Amendment,
        columns=_AMENDMENT_COLUMNS,
        then=lambda s: s.where(Amendment.patient_id.in_(list(patient_ids))).order_by(Amendment.id),
    )
    grouped: dict[int, list[Any]] = defaultdict(list)
    for row in data.rows_as(Amendment, _AMENDMENT_COLUMNS, await data.rows(statement)):
        grouped[row.patient_id].append(row)
    return grouped


async def _names(ctx: Context, shared: Shared) -> None:
    data = ctx.data
    if shared.want_staff:
        statement = await data.select(
            User,
            User.id,
            User.display_name,
            purpose="name",
            then=lambda s: s.where(User.id.in_(sorted(shared.want_staff))),
        )
        shared.staff_names.update({pk: name for pk, name in await data.rows(statement)})
    if shared.want_departments:
        statement = await data.select(
            Department,
            Department.id,
            Department.name,
            then=lambda s: s.where(Department.id.in_(sorted(shared.want_departments))),
        )
        shared.department_names.update({pk: name for pk, name in await data.rows(statement)})


async def resources_of(ctx: Context, patients: Sequence[Any]) -> dict[int, list[dict[str, Any]]]:
    """Each patient's resources (Patient first), in the registry's order."""
    access = await ctx.access()
    shared = Shared(decision=access.decision, systems=systems_of(ctx))
    ids = [int(patient.id) for patient in patients]
    shared.extra["patients"] = {int(patient.id): patient for patient in patients}
    amendments = await _amendments(ctx, ids)
    shared.extra["amendments"] = amendments
    for rows in amendments.values():
        for row in rows:
            key = (row.entity_type, int(row.entity_id))
            if key not in shared.amended_at or shared.amended_at[key] < row.at:
                shared.amended_at[key] = row.at
    applying = [kind for kind in kinds() if kind.gate is None or shared.visible(*kind.gate)]
    loaded = {kind.name: await kind.load(ctx, ids, shared) for kind in applying}
    await _names(ctx, shared)
    result: dict[int, list[dict[str, Any]]] = {}
    for pid in ids:
        view = View(shared, pid)
        built: list[Built] = []
        for kind in applying:
            made = kind.build(loaded[kind.name].get(pid, []), view)
            for item in made:
                if item.source is not None:
                    view.sources.setdefault(item.source, []).append(reference_of(item.resource))
            built.extend(made)
        known = {reference_of(item.resource) for item in built}
        for item in built:
            # Serialising (C speed) and scanning for references costs a fraction of walking every resource; the
            # walk runs only for a resource that names a target not among the patient's resources.
            targets = _REFERENCE.findall(orjson.dumps(item.resource))
            if targets and not known.issuperset(target.decode() for target in targets):
                prune(item.resource, known)
        result[pid] = [item.resource for item in built]
    return result


async def patient_bundle(ctx: Context, patient: Any) -> dict[str, Any]:
    """Everything of one (already scope-checked and read-recorded) patient the caller's schema shows, as a FHIR
    R4 collection Bundle."""
    systems = systems_of(ctx)
    resources = (await resources_of(ctx, [patient]))[int(patient.id)]
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": utcnow().isoformat(),
        "entry": [{"fullUrl": systems.full_url(reference_of(r)), "resource": r} for r in resources],
    }

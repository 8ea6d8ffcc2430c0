"""A patient's records of one kind, to show: through the loaders, or looked ahead for a whole page.

Without look-ahead, each patient's `visits` (and each visit's `diagnoses`) is its own async resolver: a
DataLoader future, a task and an awaited completion per object, batched into one query per kind in the
end anyway. The list resolver knows the selection, so `prefetch_history` loads the same batches up front
(through the same scoped, projected loaders) and hands every object its records; those fields then
resolve as plain lists. Objects reached any other way load through `history_of`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from core.speedups import SPEEDUPS
from models.clinical import Diagnosis, FollowUp, Visit
from resolvers.data.context import Info
from schema.clinical import DiagnosisType, FollowUpType, VisitType, shown_rows
from schema.engine.projection import DIAGNOSIS, FOLLOW_UP, VISIT, Projection, columns_for, names_at


@dataclass(frozen=True)
class Kind:
    field: str  # the GraphQL field on Patient
    model: Any
    projection: Projection
    type: Any  # the strawberry type, with from_row

    def shown(self, info: Info, rows: Sequence[Any]) -> list[Any]:
        return [self.type.from_row(row) for row in shown_rows(info, self.model.__name__, list(rows))]


KINDS = {
    "visits": Kind("visits", Visit, VISIT, VisitType),
    "diagnoses": Kind("diagnoses", Diagnosis, DIAGNOSIS, DiagnosisType),
    "follow_ups": Kind("followUps", FollowUp, FOLLOW_UP, FollowUpType),
}


def history_of(info: Info, patient: Any, attribute: str) -> list[Any]:
    """A PatientType's records of one kind: the prefetched list, or an awaitable (GraphQL execution awaits it)."""
    if attribute in patient._prefetched:
        return cast(list[Any], patient._prefetched[attribute])
    return cast(list[Any], _load(info, KINDS[attribute], patient._row.id))


async def _load(info: Info, kind: Kind, patient_id: int) -> list[Any]:
    loader = info.context.loaders.of_patients(kind.model, columns_for(info, kind.projection))
    return kind.shown(info, await loader.load(patient_id))


async def prefetch_history(info: Info, patients: Sequence[Any], path: tuple[str, ...]) -> None:
    """Fill `_prefetched` of these PatientType objects (found at `path` below the current field)."""
    if not patients or not SPEEDUPS.prefetch:
        return
    names = names_at(info, path)
    loaders = info.context.loaders
    ids = [patient._row.id for patient in patients]
    for attribute, kind in KINDS.items():
        if kind.field not in names:
            continue
        kind_path = (*path, kind.field)
        kind_names = names_at(info, kind_path)
        # the loader's batch function itself: one query, without a future per key
        groups = await loaders.of_patients(kind.model, kind.projection.columns(kind_names)).load_fn(ids)
        for patient, rows in zip(patients, groups, strict=True):
            patient._prefetched[attribute] = kind.shown(info, rows)
        if kind is KINDS["visits"] and "diagnoses" in kind_names:
            visits = [visit for patient in patients for visit in patient._prefetched[attribute]]
            if not visits:
                continue
            visit_columns = DIAGNOSIS.columns(names_at(info, (*kind_path, "diagnoses")))
            by_visit = await loaders.diagnoses_of_visits(visit_columns).load_fn([visit._pk for visit in visits])
            for visit, rows in zip(visits, by_visit, strict=True):
                visit._prefetched["diagnoses"] = KINDS["diagnoses"].shown(info, rows)

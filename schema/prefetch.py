"""Look-ahead for a page of patients: each kind of record the selection asks for, for the whole page at once.

Without it, each patient's `visits` (and each visit's `diagnoses`) is its own async resolver: a
DataLoader future, a task and an awaited completion per object, batched into one query per kind in the
end anyway. The list resolver knows the selection, so it loads the same batches up front (through the
same scoped, projected loaders) and hands every object its records; those fields then resolve as plain
lists. Objects reached any other way still load through their resolvers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from models.clinical import Diagnosis, FollowUp, Visit
from resolvers.context import Info
from schema.clinical import DiagnosisType, FollowUpType, VisitType, shown_rows
from schema.projection import DIAGNOSIS, FOLLOW_UP, VISIT, names_at


async def prefetch_history(info: Info, patients: Sequence[Any], path: tuple[str, ...]) -> None:
    """Fill `_prefetched` of these PatientType objects (found at `path` below the current field)."""
    if not patients:
        return
    names = names_at(info, path)
    loaders = info.context.loaders
    ids = [patient._row.id for patient in patients]
    if "visits" in names:
        visit_path = (*path, "visits")
        groups = await loaders.of_patients(Visit, VISIT.columns(names_at(info, visit_path))).load_many(ids)
        visits: list[VisitType] = []
        for patient, rows in zip(patients, groups, strict=True):
            patient._prefetched["visits"] = [VisitType.from_row(row) for row in shown_rows(info, "Visit", rows)]
            visits += patient._prefetched["visits"]
        if visits and "diagnoses" in names_at(info, visit_path):
            columns = DIAGNOSIS.columns(names_at(info, (*visit_path, "diagnoses")))
            by_visit = await loaders.diagnoses_of_visits(columns).load_many([visit._pk for visit in visits])
            for visit, rows in zip(visits, by_visit, strict=True):
                visit._prefetched["diagnoses"] = [
                    DiagnosisType.from_row(row) for row in shown_rows(info, "Diagnosis", rows)
                ]
    kinds: tuple[tuple[str, str, Any, Any, Any], ...] = (
        ("diagnoses", "diagnoses", Diagnosis, DIAGNOSIS, DiagnosisType),
        ("followUps", "follow_ups", FollowUp, FOLLOW_UP, FollowUpType),
    )
    for field, attribute, model, projection, kind in kinds:
        if field not in names:
            continue
        columns = projection.columns(names_at(info, (*path, field)))
        groups = await loaders.of_patients(model, columns).load_many(ids)
        for patient, rows in zip(patients, groups, strict=True):
            patient._prefetched[attribute] = [kind.from_row(row) for row in shown_rows(info, model.__name__, rows)]

"""Which rows belong to a patient, derived from the schema's foreign keys rather than kept by hand.

A column that refers to `patient.id` (a foreign key, or a column named `patient_id`) either makes its row the
patient's (`OWNS`: the row moves when the patient is merged into another, comes back when the merge is undone,
is in the patient's own export and in their FHIR bundle) or only names the patient (`REFERS`, with why). A row
of a table with no patient column of its own but a foreign key to a patient's row belongs to that patient too
(a message through its conversation). A patient column classified neither way refuses start-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Column, Table
from sqlmodel import SQLModel

PATIENT_TABLE = "patient"

# (table, column) of rows that belong to the patient the column names.
OWNS: frozenset[tuple[str, str]] = frozenset(
    {
        ("visit", "patient_id"),
        ("diagnosis", "patient_id"),
        ("exam_report", "patient_id"),
        ("treatment_plan", "patient_id"),
        ("follow_up", "patient_id"),
        ("patient_binding_code", "patient_id"),
        ("conversation", "patient_id"),
        ("appointment", "patient_id"),
    }
)

# (table, column) that name a patient without the row being theirs: why each stays where it is.
REFERS: dict[tuple[str, str], str] = {
    ("patient", "merged_into_id"): "a merged duplicate names the record it was merged into",
    ("patient_merge", "keep_id"): "the merge record names both of its sides, as they were",
    ("patient_merge", "merged_id"): "the merge record names both of its sides, as they were",
    ("access_grant", "patient_id"): "a grant stays with the record it was given for (and ends with it)",
    ("amendment", "patient_id"): "history says which record was changed; it is never rewritten",
    ("appointment", "booked_for_id"): "the record a place was booked for keeps one place per record and session "
    "(a unique key); a merge moves the appointment, not whose booking it was",
    ("event", "patient_id"): "the audit trail says whose record was read or changed; it is never rewritten",
}


@dataclass(frozen=True)
class Owned:
    """One table whose rows belong to a patient: directly by `column`, or through `parent` (its foreign key
    `column` to a row of an owned table)."""

    table: Table
    column: str
    parent: str | None = None  # the owned table the row hangs off, when not owned directly

    @property
    def direct(self) -> bool:
        return self.parent is None


def _patient_columns(table: Table) -> list[Column[Any]]:
    found = []
    for column in table.columns:
        refers = any(fk.column.table.name == PATIENT_TABLE for fk in column.foreign_keys)
        if refers or (column.name == "patient_id" and table.name != PATIENT_TABLE):
            found.append(column)
    return found


def unclassified(metadata: Any = None) -> list[str]:
    """Patient columns that are neither OWNS nor REFERS (start-up refuses them), and classifications that name
    no such column (a renamed column would otherwise drop out silently)."""
    tables = (metadata or SQLModel.metadata).tables
    seen: set[tuple[str, str]] = set()
    problems = []
    for table in tables.values():
        for column in _patient_columns(table):
            key = (table.name, column.name)
            seen.add(key)
            if key not in OWNS and key not in REFERS:
                problems.append(f"{table.name}.{column.name} refers to a patient: classify it in policies/ownership.py")
    for key in sorted(OWNS | set(REFERS)):
        if key not in seen:
            problems.append(f"{key[0]}.{key[1]} is classified in policies/ownership.py but is no patient column")
    return problems


@cache
def owned_tables() -> tuple[Owned, ...]:
    """Every table whose rows belong to a patient, parents before children."""
    tables = SQLModel.metadata.tables
    direct = [
        Owned(table, column.name)
        for table in SQLModel.metadata.sorted_tables
        for column in _patient_columns(table)
        if (table.name, column.name) in OWNS
    ]
    found = {owned.table.name for owned in direct}
    result = list(direct)
    changed = True
    while changed:  # rows hanging off owned rows, transitively
        changed = False
        for table in tables.values():
            if table.name in found or table.name == PATIENT_TABLE or _patient_columns(table):
                continue
            for column in table.columns:
                parents = [fk.column.table.name for fk in column.foreign_keys if fk.column.name == "id"]
                parent = next((name for name in parents if name in found), None)
                if parent is not None and (table.name, column.name) not in REFERS:
                    result.append(Owned(table, column.name, parent=parent))
                    found.add(table.name)
                    changed = True
                    break
    return tuple(result)

"""Column projection: which table columns each GraphQL field reads, and what a selection needs.

A list of 50 patients with five fields used to load, convert and decrypt all 29 columns of each row;
now it loads the columns the selection shows. Each map below names, for a field of the type, the
columns its value (or its resolver) reads. A field missing from a map makes the read load every
column, so a field added to a type without a map entry is slower, never wrong; the test
tests/test_projection.py asks every field alone and compares it with the full read.

Columns in `always` are loaded whatever the selection: keys (for cursors and loaders) and `voided_at`,
which says whether a record is void (policies/voided.py decides whether the caller gets it at all).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField

from core.lru import LRU
from core.speedups import SPEEDUPS
from resolvers.data.projection import Columns
from schema.engine.sizes import COLUMNS_BYTES, node_weight

VOID = ("voided_at", "void_reason", "voided_by_id")


@dataclass(frozen=True)
class Projection:
    fields: dict[str, tuple[str, ...]]
    always: tuple[str, ...]

    def columns(self, names: Iterable[str]) -> Columns:
        """The columns these selected field names read; None (every column) if one is not mapped."""
        needed = set(self.always)
        for name in names:
            if name == "__typename":
                continue
            columns = self.fields.get(name)
            if columns is None:
                return None
            needed.update(columns)
        return tuple(sorted(needed))


PATIENT = Projection(
    fields={
        "id": (),
        "name": ("name",),
        "nameInitials": ("name_initials",),
        "gender": (),
        "birthDate": ("birth_date",),
        "idType": (),
        "address": ("address",),
        "emergencyContactName": ("emergency_contact_name",),
        "allergies": ("allergies",),
        "pastHistory": ("past_history",),
        "departmentId": ("department_id",),
        "departmentName": ("department_id",),
        "attendingPhysicianId": ("attending_physician_id",),
        "attendingPhysicianName": ("attending_physician_id",),
        "linkedToWechat": ("wechat_user_id",),
        "consent": ("consent_scope", "consent_version", "consent_at"),
        "createdAt": ("created_at",),
        "updatedAt": ("updated_at",),
        "version": ("version",),
        "voided": VOID,
        "mergedIntoId": ("merged_into_id",),
        "idNumber": ("id_number",),
        "phone": ("phone",),
        "emergencyContactPhone": ("emergency_contact_phone",),
        # by the patient's id, through loaders
        "visits": (),
        "diagnoses": (),
        "examReports": (),
        "treatmentPlans": (),
        "followUps": (),
    },
    always=("id", "gender", "id_type", "voided_at"),
)

VISIT = Projection(
    fields={
        "id": (),
        "visitDate": ("visit_date",),
        "visitType": (),
        "chiefComplaint": ("chief_complaint",),
        "presentIllness": ("present_illness",),
        "examinationFindings": ("examination_findings",),
        "notes": ("notes",),
        "createdAt": ("created_at",),
        "voided": VOID,
        "physicianName": ("physician_id",),
        "diagnoses": (),
    },
    always=("id", "patient_id", "physician_id", "visit_type", "voided_at"),
)

DIAGNOSIS = Projection(
    fields={
        "id": (),
        "visitId": (),
        "icd10Code": ("icd10_code",),
        "icd10Name": ("icd10_name",),
        "isPrimary": ("is_primary",),
        "tcmSyndrome": ("tcm_syndrome",),
        "createdAt": ("created_at",),
        "voided": VOID,
    },
    always=("id", "patient_id", "visit_id", "voided_at"),
)

FOLLOW_UP = Projection(
    fields={
        "id": (),
        "visitId": ("visit_id",),
        "dueDate": (),
        "status": (),
        "method": (),
        "overdue": (),
        "outcomeText": ("outcome_text",),
        "painScore": ("pain_score",),
        "bleeding": ("bleeding",),
        "wexnerScore": ("wexner_score",),
        "recurrence": ("recurrence",),
        "satisfaction": ("satisfaction",),
        "recordedAt": ("recorded_at",),
        "recordedByName": ("recorded_by_id",),
        "cancelReason": ("cancel_reason",),
        "response": (
            "response_text",
            "response_pain_score",
            "response_bleeding",
            "response_wexner_score",
            "response_satisfaction",
            "response_at",
        ),
        "voided": VOID,
        "patient": (),
    },
    always=("id", "patient_id", "protocol_id", "due_date", "status", "method", "voided_at"),
)


def selected_names(selections: Iterable[Any], path: Sequence[str] = ()) -> set[str]:
    """The field names selected at `path` below `selections`, fragments flattened.

    Fields under @include/@skip count as selected (loading a column too many is harmless).
    """
    names: set[str] = set()
    for selection in selections:
        if isinstance(selection, FragmentSpread | InlineFragment):
            names |= selected_names(selection.selections, path)
        elif isinstance(selection, SelectedField):
            if not path:
                names.add(selection.name)
            elif selection.name == path[0]:
                names |= selected_names(selection.selections, path[1:])
    return names


def names_at(info: Any, path: Sequence[str] = ()) -> set[str]:
    """The field names the current field's selection asks for at `path` (below the field itself)."""
    names: set[str] = set()
    for field in info.selected_fields:
        names |= selected_names(field.selections, path)
    return names


# Per field node, for the whole process: a prepared document's nodes are the same objects request after
# request, and a selection's columns depend on nothing else (@include/@skip count as selected). Entries hold
# their nodes, so the ids in a key stay theirs while cached.
_COLUMNS: LRU[tuple[Any, ...], tuple[tuple[Any, ...], Columns]] = LRU(
    4096, max_bytes=COLUMNS_BYTES, weigh=lambda _key, entry: node_weight(entry[0][0]) if entry[0] else 0
)


_NAMES: LRU[tuple[Any, ...], tuple[tuple[Any, ...], frozenset[str]]] = LRU(
    4096, max_bytes=COLUMNS_BYTES, weigh=lambda _key, entry: node_weight(entry[0][0]) if entry[0] else 0
)


def names_at_cached(info: Any, path: Sequence[str] = ()) -> frozenset[str]:
    """`names_at`, worked out once per field node and path (as `columns_for`: the names depend on nothing else)."""
    nodes = tuple(info._raw_info.field_nodes)
    key = (tuple(id(node) for node in nodes), tuple(path))
    entry = _NAMES.get(key)
    if entry is not None and all(a is b for a, b in zip(entry[0], nodes, strict=True)):
        return entry[1]
    names = frozenset(names_at(info, path))
    _NAMES.put(key, (nodes, names))
    return names


def columns_for(info: Any, projection: Projection, path: Sequence[str] = ()) -> Columns:
    """The columns the current field's selection needs at `path` (below the field itself).

    Worked out once per field node: a list resolves the same selection for every item. None (every column)
    when projection is switched off.
    """
    if not SPEEDUPS.projection:
        return None
    nodes = tuple(info._raw_info.field_nodes)
    key = (tuple(id(node) for node in nodes), id(projection), tuple(path))
    entry = _COLUMNS.get(key)
    if entry is not None and all(a is b for a, b in zip(entry[0], nodes, strict=True)):
        return entry[1]
    columns = projection.columns(names_at(info, path))
    _COLUMNS.put(key, (nodes, columns))
    return columns

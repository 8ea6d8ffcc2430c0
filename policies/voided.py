"""Voided records (entered in error: kept, never deleted) and who sees them.

A voided record comes back only to a caller who holds `records.voided` and whose schema shows the record type's
`voided` field, so it is never shown unmarked; for anyone else it does not exist. Every path that hands out
records asks here: the patient list, a patient by id, a patient's histories (the loaders, and through them the
look-ahead of lists and the FHIR bundle), the follow-up lists.

A record's type name is its model's class name (Patient, Visit, Diagnosis, ExamReport, TreatmentPlan, FollowUp),
as in the schema.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement

from policies.access import Access
from policies.capabilities import Capability

# The mark: the record type's `voided` field, a VoidInfo (schema/integrity.py). A schema has the field only where
# VoidInfo shows something too (a type with no visible field disappears, and the fields returning it).
MARK_TYPE = "VoidInfo"
MARK_FIELDS = ("at", "reason", "by")


def shows_voided(access: Access, type_name: str) -> bool:
    """Whether this caller sees the voided records of that type (marked void) alongside the others."""
    decision = access.decision
    return (
        access.can(Capability.RECORDS_VOIDED)
        and decision.visible(type_name, "voided")
        and any(decision.visible(MARK_TYPE, field) for field in MARK_FIELDS)
    )


def voided_hidden(model: Any, access: Access) -> tuple[ColumnElement[bool], ...]:
    """The conditions that leave out the voided rows of `model` this caller may not see: none, or one."""
    if shows_voided(access, model.__name__):
        return ()
    return (model.voided_at.is_(None),)

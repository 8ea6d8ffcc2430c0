"""Patients: scoped reads, each one recorded; search and filters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, exists, or_

from core.crypto import cipher
from core.errors import not_found
from models.clinical import Diagnosis, FollowUp, FollowUpStatus
from models.patient import Patient
from models.user import User
from policies.voided import shows_voided, voided_hidden
from resolvers.data.context import Context
from resolvers.data.matching import matching
from resolvers.data.pagination import Page
from resolvers.data.projection import Columns

# ---- reads -------------------------------------------------------------------------------------


@dataclass
class PatientFilter:
    search: str | None = None
    department_id: int | None = None
    physician_id: int | None = None
    diagnosis_code: str | None = None
    has_overdue_follow_up: bool | None = None
    include_voided: bool = False


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def _search_clause(ctx: Context, term: str) -> ColumnElement[bool]:
    term = term.strip()[:64]
    conditions: list[ColumnElement[bool]] = [Patient.name.like("%" + _escape_like(term) + "%", escape="\\")]
    if term.isascii() and term.isalpha():
        conditions.append(Patient.name_initials.like(_escape_like(term.upper()) + "%", escape="\\"))
    # Encrypted fields are found only by their keyed hash (an exact match, never a prefix), and only as the
    # caller may match them (resolvers/data/matching.py: freely in clear, a limited lookup when masked).
    digest = cipher().digest(term)
    for column, field_name in ((Patient.phone_hash, "phone"), (Patient.id_number_hash, "idNumber")):
        condition = await matching(ctx, "Patient", field_name, column, term, digest, operation="patients")
        if condition is not None:
            conditions.append(condition)
    return or_(*conditions)


def overdue_clause(today: date) -> ColumnElement[bool]:
    return and_(FollowUp.status == FollowUpStatus.SCHEDULED.value, FollowUp.due_date < today)


async def list_patients(
    ctx: Context, *, first: int | None, after: str | None, filters: PatientFilter, columns: Columns = None
) -> Page[Any]:
    """A page of patient rows with those columns (None: all), to show, never to write back."""
    data = ctx.data
    # The plain list (the console's first screen, every page of it) keeps its statements; filtered ones vary.
    plain = not (
        (filters.search and filters.search.strip())
        or filters.department_id is not None
        or filters.physician_id is not None
        or filters.diagnosis_code
        or filters.has_overdue_follow_up is not None
    )
    # Voided (and merged) records only for those who see them marked (policies/voided.py).
    include_voided = filters.include_voided and shows_voided(await data.access(), "Patient")
    statement = await data.select(
        Patient,
        columns=columns,
        then=lambda base: base if include_voided else base.where(Patient.voided_at.is_(None)),
        key=("patients", include_voided) if plain else None,
    )
    if filters.search and filters.search.strip():
        statement = statement.where(await _search_clause(ctx, filters.search))
    if filters.department_id is not None:
        statement = statement.where(Patient.department_id == filters.department_id)
    if filters.physician_id is not None:
        await data.reach_or_not_found(User, filters.physician_id, what="Physician")
        statement = statement.where(Patient.attending_physician_id == filters.physician_id)
    if filters.diagnosis_code:
        code = _escape_like(filters.diagnosis_code.strip().upper())
        statement = statement.where(
            exists().where(Diagnosis.patient_id == Patient.id, Diagnosis.icd10_code.like(code + "%", escape="\\"))
        )
    if filters.has_overdue_follow_up is not None:
        overdue = exists().where(FollowUp.patient_id == Patient.id, overdue_clause(ctx.today()))
        statement = statement.where(overdue if filters.has_overdue_follow_up else ~overdue)
    page = await data.page(statement, keys=[Patient.id], first=first, after=after, rows=True, reuse=plain)
    page.items = data.rows_as(Patient, columns, page.items)
    action = "search" if filters.search else "read"
    await data.record_reads([row.id for row in page.items], action=action, operation="patients")
    return page


async def get_patient(ctx: Context, patient_id: int, *, operation: str = "patient", columns: Columns = None) -> Any:
    """The patient as an ORM object, or, given `columns`, a row of just those columns (to show)."""
    data = ctx.data
    hidden = voided_hidden(Patient, await data.access())
    if columns is None:
        row: Any = await data.first(
            await data.select(Patient, then=lambda s: s.where(Patient.id == patient_id, *hidden))
        )
    else:
        by_id = await data.select(
            Patient,
            columns=columns,
            key=("by_id", bool(hidden)),
            then=lambda s: s.where(Patient.id == bindparam("patient_id"), *hidden),
        )
        found = await data.rows(by_id, {"patient_id": patient_id})
        row = data.rows_as(Patient, columns, found)[0] if found else None
    if row is None:
        raise not_found("Patient")
    await data.record_reads([patient_id], action="read", operation=operation)
    return row

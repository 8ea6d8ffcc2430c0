"""Patients: scoped reads (each one recorded), registration, versioned updates, binding codes."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, exists, or_

from core.crypto import cipher
from core.errors import AppError, ErrorCode, bad_input, conflict, forbidden, not_found
from core.ids import encode_id
from core.security import token_digest
from core.timeutil import utcnow
from core.validation import check_resident_id, choice, initials, text
from models.audit import Event
from models.clinical import Diagnosis, FollowUp, FollowUpStatus
from models.organisation import Department
from models.patient import Gender, IdType, Patient, PatientBindingCode, sync_hashes
from models.role import Role, UserRole
from models.user import User
from policies.roles import PATIENT_ROLE, may_bind_patient_record
from policies.voided import shows_voided, voided_hidden
from resolvers.audit import history
from resolvers.audit.unit import WriteUnit
from resolvers.data.context import Context
from resolvers.data.pagination import Page
from resolvers.data.projection import Columns

BINDING_CODE_HOURS = 24
# The events a patient sees in their access log: every way someone else reached their record.
ACCESS_ACTIONS = ("read", "search", "export", "reveal")
_BINDING_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I


# ---- reads -------------------------------------------------------------------------------------


class SearchMode:
    """Whether a caller may search a sensitive field (exactly, by its keyed hash) or not at all."""

    EXACT = "exact"
    NONE = "none"


@dataclass
class PatientFilter:
    search: str | None = None
    department_id: int | None = None
    physician_id: int | None = None
    diagnosis_code: str | None = None
    has_overdue_follow_up: bool | None = None
    include_voided: bool = False
    phone_search: str = SearchMode.EXACT
    id_number_search: str = SearchMode.NONE


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _sensitive(column: Any, term: str, mode: str) -> ColumnElement[bool] | None:
    """Encrypted fields are found only by their keyed hash: an exact match, never a prefix."""
    if mode == SearchMode.NONE:
        return None
    return column == cipher().digest(term)


def _search_clause(term: str, filters: PatientFilter) -> ColumnElement[bool]:
    term = term.strip()[:64]
    conditions: list[ColumnElement[bool]] = [Patient.name.like("%" + _escape_like(term) + "%", escape="\\")]
    if term.isascii() and term.isalpha():
        conditions.append(Patient.name_initials.like(_escape_like(term.upper()) + "%", escape="\\"))
    for column, mode in (
        (Patient.phone_hash, filters.phone_search),
        (Patient.id_number_hash, filters.id_number_search),
    ):
        condition = _sensitive(column, term, mode)
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
        statement = statement.where(_search_clause(filters.search, filters))
    if filters.department_id is not None:
        statement = statement.where(Patient.department_id == filters.department_id)
    if filters.physician_id is not None:
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


# ---- writes ------------------------------------------------------------------------------------


@dataclass
class PatientInput:
    name: str | None = None
    gender: str | None = None
    birth_date: date | None = None
    id_type: str | None = None
    id_number: str | None = None
    phone: str | None = None
    address: str | None = None
    emergency_contact_name: str | None = None
    emergency_contact_phone: str | None = None
    allergies: str | None = None
    past_history: str | None = None
    department_id: int | None = None
    consent_scope: str | None = None
    consent_version: str | None = None
    given: set[str] = field(default_factory=set)  # which fields the client sent (null clears)


def _apply(patient: Patient, data: PatientInput) -> list[str]:
    from resolvers.user import check_phone

    changed: list[str] = []
    if "name" in data.given:
        name = text(data.name, "name", limit=100, required=True)
        patient.name = name or ""
        patient.name_initials = initials(patient.name)
        changed.append("name")
    if "gender" in data.given and data.gender is not None:
        patient.gender = choice(Gender, data.gender, "gender").value
        changed.append("gender")
    if "birth_date" in data.given:
        if data.birth_date is not None and not date(1900, 1, 1) <= data.birth_date <= date.today():
            raise bad_input("Birth date out of range", "birthDate")
        patient.birth_date = data.birth_date
        changed.append("birthDate")
    if "id_type" in data.given and data.id_type is not None:
        patient.id_type = choice(IdType, data.id_type, "idType").value
        changed.append("idType")
    if "id_number" in data.given or "id_type" in data.given:
        number = data.id_number if "id_number" in data.given else patient.id_number
        if number is not None and patient.id_type == IdType.RESIDENT_ID.value:
            number = check_resident_id(number)
        elif number is not None:
            number = text(number, "idNumber", limit=64)
        patient.id_number = number
        changed.append("idNumber")
    for key, api_name, limit in (
        ("address", "address", 500),
        ("emergency_contact_name", "emergencyContactName", 100),
        ("allergies", "allergies", 5000),
        ("past_history", "pastHistory", 20000),
    ):
        if key in data.given:
            setattr(patient, key, text(getattr(data, key), api_name, limit=limit))
            changed.append(key)
    for key in ("phone", "emergency_contact_phone"):
        if key in data.given:
            value = getattr(data, key)
            setattr(patient, key, check_phone(value) if value is not None else None)
            changed.append(key)
    if "consent_scope" in data.given:
        patient.consent_scope = text(data.consent_scope, "consentScope", limit=255)
        patient.consent_version = text(data.consent_version, "consentVersion", limit=32)
        patient.consent_at = utcnow() if patient.consent_scope else None
        changed.append("consent")
    return changed


async def _department_for(ctx: Context, requested: int | None) -> int | None:
    department_id = (await ctx.access()).registration_department(requested)
    if requested is not None and department_id is None:
        raise forbidden("That department is outside your scope")
    return department_id


async def duplicate_candidates(
    ctx: Context, *, id_number: str | None, name: str | None, birth_date: Any, phone: str | None
) -> list[Patient]:
    """In-scope patients with the same identity number, or the same name, birth date and phone."""
    conditions = []
    if id_number:
        conditions.append(Patient.id_number_hash == cipher().digest(id_number))
    if name and birth_date and phone:
        conditions.append(
            (Patient.name == name.strip())
            & (Patient.birth_date == birth_date)
            & (Patient.phone_hash == cipher().digest(phone))
        )
    if not conditions:
        return []
    statement = await ctx.data.select(
        Patient,
        then=lambda s: s.where(or_(*conditions), Patient.voided_at.is_(None)).order_by(Patient.id).limit(10),
    )
    return await ctx.data.objects(statement)


async def register_patient(ctx: Context, data: PatientInput, *, allow_duplicate: bool = False) -> Patient:
    """Register a patient. A likely duplicate (same identity number, or same name, birth date and phone,
    among the patients the caller can see) is refused with CONFLICT listing the candidates, unless the
    caller confirms with allow_duplicate."""
    if "name" not in data.given:
        raise bad_input("Required", "name")
    department_id = await _department_for(ctx, data.department_id)
    patient = Patient(name="", department_id=department_id, created_by_id=ctx.principal.user_id)
    _apply(patient, data)
    if (await ctx.access()).attends_own_registrations:
        patient.attending_physician_id = ctx.principal.user_id  # the registering physician attends
    if not allow_duplicate:
        candidates = await duplicate_candidates(
            ctx, id_number=patient.id_number, name=patient.name, birth_date=patient.birth_date, phone=patient.phone
        )
        if candidates:
            raise AppError(
                ErrorCode.CONFLICT,
                "A patient with the same identity number, or name, birth date and phone, exists",
                candidates=[{"id": encode_id("Patient", c.id or 0), "name": c.name} for c in candidates],
            )
    async with ctx.data.write(operation="registerPatient", action="create", entity_type="Patient") as unit:
        if department_id is not None and await unit.find(Department, department_id) is None:
            raise bad_input("Unknown department", "departmentId")
        unit.add(patient)
        await unit.flush()
        unit.entity_id = str(patient.id)
        unit.patient_id = patient.id
        history.record_created(ctx, unit, patient, "Patient")
    return patient


async def update_patient(
    ctx: Context, patient_id: int, version: int, data: PatientInput, reason: str | None = None
) -> Patient:
    async with ctx.data.write(operation="updatePatient", action="update", entity_type="Patient") as unit:
        patient = await unit.get(Patient, patient_id)
        if patient.voided_at is not None:
            raise conflict("This record is void")
        before = history.snapshot(patient)
        unit.entity_id = str(patient_id)
        unit.patient_id = patient_id
        if "department_id" in data.given:
            patient.department_id = await _department_for(ctx, data.department_id)
            data.given.discard("department_id")
        changed = _apply(patient, data)
        await _bump(ctx, unit, patient, version)
        history.record_updated(ctx, unit, patient, "Patient", before, history.require_reason(reason, signed_off=False))
        unit.detail = {"changed": changed, "version": patient.version}
    return patient


async def _bump(ctx: Context, unit: WriteUnit, patient: Patient, version: int) -> None:
    """Optimistic lock: the row changes only if it still has the version the client read."""
    unit.detach(patient)  # written below in one guarded UPDATE, not by the ORM's flush
    sync_hashes(patient)
    values = {
        column: getattr(patient, column)
        for column in Patient.model_fields
        if column not in ("id", "version", "created_at", "created_by_id")
    }
    values["updated_at"] = utcnow()
    statement = await ctx.data.update(Patient)
    changed = await unit.execute(
        statement.where(Patient.id == patient.id, Patient.version == version)
        .values(**values, version=version + 1)
        .execution_options(synchronize_session=False)
    )
    if changed != 1:
        raise conflict("This patient was changed by someone else; reload and try again")
    patient.version = version + 1
    patient.updated_at = values["updated_at"]


async def reassign_patient(ctx: Context, patient_id: int, physician_id: int, version: int) -> Patient:
    async with ctx.data.write(operation="reassignPatient", action="update", entity_type="Patient") as unit:
        patient = await unit.get(Patient, patient_id)
        unit.entity_id = str(patient_id)
        unit.patient_id = patient_id
        if await unit.find(User, physician_id) is None:  # staff of the caller's departments
            raise not_found("Physician")
        before = history.snapshot(patient)
        previous = patient.attending_physician_id
        patient.attending_physician_id = physician_id
        await _bump(ctx, unit, patient, version)
        history.record_updated(ctx, unit, patient, "Patient", before)
        unit.detail = {"from": previous, "to": physician_id}
    return patient


# ---- the patient's side ------------------------------------------------------------------------


@dataclass
class BindingCode:
    code: str
    expires_at: datetime


async def issue_binding_code(ctx: Context, patient_id: int) -> BindingCode:
    code = "".join(secrets.choice(_BINDING_ALPHABET) for _ in range(10))
    expires = utcnow() + timedelta(hours=BINDING_CODE_HOURS)
    async with ctx.data.write(
        operation="issuePatientBindingCode", action="create", entity_type="PatientBindingCode"
    ) as unit:
        await unit.get(Patient, patient_id)
        unit.add(
            PatientBindingCode(
                code_hash=token_digest(code),
                patient_id=patient_id,
                issued_by_id=ctx.principal.user_id,
                expires_at=expires,
            )
        )
        unit.patient_id = patient_id
        unit.entity_id = str(patient_id)
    return BindingCode(code=code, expires_at=expires)


async def bind_record(ctx: Context, code: str) -> Patient:
    """Redeem a binding code: the caller's account is linked to the record and becomes a patient.

    The record is outside the caller's reach until then: the code, issued by the clinic, is what reaches it."""
    user_id = ctx.principal.user_id
    if not may_bind_patient_record(ctx.principal.role_keys):
        raise forbidden("A staff account cannot be linked to a patient record")
    normalised = code.strip().upper().replace("-", "").replace(" ", "")
    digest = token_digest(normalised)
    now = utcnow()
    system = ctx.data.unscoped("a binding code reaches the record it was issued for")
    async with ctx.data.write(operation="bindPatientRecord", action="update", entity_type="Patient") as unit:
        claimed = await unit.execute(
            system.update(PatientBindingCode)
            .where(
                PatientBindingCode.code_hash == digest,
                PatientBindingCode.used_at.is_(None),
                PatientBindingCode.expires_at > now,
            )
            .values(used_at=now, used_by_id=user_id)
        )
        if claimed != 1:
            raise bad_input("This code is unknown, used or expired; ask the clinic for a new one", "code")
        patient_id = (
            await unit.scalars(
                system.select(PatientBindingCode.patient_id).where(PatientBindingCode.code_hash == digest)
            )
        )[0]
        if await unit.scalars(system.select(Patient.id).where(Patient.wechat_user_id == user_id)):
            raise conflict("Your account is already linked to a patient record")
        patient = await unit.first(system.select(Patient).where(Patient.id == patient_id))
        if patient is None:
            raise not_found("Patient")
        if patient.wechat_user_id is not None:
            raise conflict("This record is already linked to another account")
        patient.wechat_user_id = user_id
        patient.updated_at = now
        unit.add(patient)
        role = await unit.first(system.select(Role).where(Role.key == PATIENT_ROLE))
        held = await unit.scalars(
            system.select(UserRole.role_id).where(UserRole.user_id == user_id, UserRole.role_id == role.id)
        )
        if not held:
            unit.add(UserRole(user_id=user_id, role_id=role.id))
        unit.entity_id = str(patient.id)
        unit.patient_id = patient.id
    return patient


async def my_record(ctx: Context) -> Patient | None:
    hidden = voided_hidden(Patient, await ctx.access())
    statement = await ctx.data.select(
        Patient, then=lambda s: s.where(Patient.wechat_user_id == ctx.principal.user_id, *hidden)
    )
    row: Patient | None = await ctx.data.first(statement)
    if row is not None:
        await ctx.data.record_reads([row.id or 0], action="read", operation="myRecord")
    return row


async def my_patient_id(ctx: Context) -> int | None:
    statement = await ctx.data.select(
        Patient, Patient.id, then=lambda s: s.where(Patient.wechat_user_id == ctx.principal.user_id)
    )
    found = await ctx.data.scalars(statement)
    return found[0] if found else None


async def access_log(ctx: Context, patient_id: int, *, first: int | None, after: str | None) -> Page[Event]:
    """Who opened this patient's record: reads, searches, exports, emergency access and reveals of masked values,
    by anyone but the patient."""
    me = ctx.principal.user_id
    statement = await ctx.data.select(
        Event,
        then=lambda s: s.where(
            Event.patient_id == patient_id,
            Event.action.in_(ACCESS_ACTIONS),
            or_(Event.actor_id.is_(None), Event.actor_id != me),
        ),
    )
    return await ctx.data.page(statement, keys=[Event.id], first=first, after=after, descending=True)


async def names_of(ctx: Context, user_ids: Sequence[int]) -> dict[int, str]:
    statement = await ctx.data.select(
        User, User.id, User.display_name, purpose="name", then=lambda s: s.where(User.id.in_(list(user_ids)))
    )
    return dict(await ctx.data.rows(statement))

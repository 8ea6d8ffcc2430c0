"""Patients: scoped reads (each one recorded), registration, versioned updates, binding codes."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, bindparam, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.crypto import cipher
from core.errors import bad_input, conflict, forbidden, not_found
from core.security import token_digest
from core.timeutil import utcnow
from core.validation import check_resident_id, choice, initials, text
from models.audit import Event
from models.clinical import Diagnosis, FollowUp, FollowUpStatus
from models.patient import Gender, IdType, Patient, PatientBindingCode, sync_hashes
from models.role import DataScope, Role, UserRole
from models.user import User
from policies.scope import cached_patient_scope
from resolvers import history
from resolvers.audit.chain import CONTENT_FIELDS
from resolvers.audit.unit import write_unit
from resolvers.data.context import Context
from resolvers.data.pagination import Page, paginate
from resolvers.data.projection import Columns, as_rows, select_columns
from resolvers.data.statements import reused
from resolvers.data.tree import scoped_department_ids

PATIENT_ROLE = "patient"
BINDING_CODE_HOURS = 24
_BINDING_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I


def clinic_today(ctx: Context) -> date:
    return datetime.now(ZoneInfo(ctx.settings.clinic_tz)).date()


async def scope_clause(ctx: Context) -> ColumnElement[bool]:
    """The principal's patient scope as SQL; every patient read and write goes through it."""
    if "patient_scope" not in ctx.memo:
        principal = ctx.principal
        allowed = await scoped_department_ids(ctx)
        ctx.memo["patient_scope"] = cached_patient_scope(
            principal.user_id, principal.data_scope, None if allowed is None else frozenset(allowed)
        )
    clause: ColumnElement[bool] = ctx.memo["patient_scope"]
    return clause


# What a read event sets: every content field of an event but its id and the free-form detail.
_EVENT_COLUMNS = tuple(name for name in CONTENT_FIELDS if name not in ("id", "detail"))
_EVENTS_PER_INSERT = 100  # a page at most (resolvers/data/pagination.py)
_EVENT_SQL: dict[tuple[Any, ...], tuple[str, dict[str, Any]]] = {}


def _events_insert(dialect: Any, rows: int) -> tuple[str, dict[str, Any]]:
    """The SQL of one INSERT of `rows` events with a VALUES list each, and each column's bind processor.

    One statement rather than an executemany: a driver may run an executemany of an INSERT as a bulk
    operation (asyncmy's COM_STMT_BULK_EXECUTE on MariaDB) for which the server may skip auto-increment
    ids, and the audit chain (resolvers/audit/chain.py) watches gaps in event ids as possibly uncommitted
    events. A multi-row VALUES list takes consecutive ids. Sent as the driver's own SQL, values processed
    as SQLAlchemy would process them: hundreds of bind parameters are costly to route through a compiled
    statement on every page."""
    key = (dialect.name, dialect.paramstyle, rows)
    cached = _EVENT_SQL.get(key)
    if cached is None:
        table = Event.__table__  # type: ignore[attr-defined]
        statement = table.insert().values(
            [{name: bindparam(f"{name}_{i}", type_=table.c[name].type) for name in _EVENT_COLUMNS} for i in range(rows)]
        )
        compiled = statement.compile(dialect=dialect)
        # positional, row by row, in _EVENT_COLUMNS order: what record_reads sends
        assert list(compiled.positiontup or ()) == [f"{name}_{i}" for i in range(rows) for name in _EVENT_COLUMNS]
        processors = {name: table.c[name].type._cached_bind_processor(dialect) for name in _EVENT_COLUMNS}
        cached = _EVENT_SQL[key] = (compiled.string, processors)
    return cached


def _bound(processors: dict[str, Any], name: str, value: Any) -> Any:
    """`value` as SQLAlchemy would send it for column `name`."""
    process = processors[name]
    return value if process is None else process(value)


async def record_reads(ctx: Context, patient_ids: Iterable[int], *, action: str, operation: str) -> None:
    """One event per patient read, written as multi-row inserts (one for a page)."""
    ids = list(dict.fromkeys(patient_ids))
    if not ids:
        return
    shared = {
        "occurred_at": utcnow(),
        "actor_id": ctx.principal.user_id,
        "action": action,
        "operation": operation,
        "entity_type": "Patient",
        "request_id": ctx.request_id,
        "ip": ctx.ip,
        "outcome": "success",
    }
    # Each multi-row INSERT is atomic by itself: on the request's (autocommit) connection.
    async with ctx.connection() as connection:
        for start in range(0, len(ids), _EVENTS_PER_INSERT):
            chunk = ids[start : start + _EVENTS_PER_INSERT]
            sql, processors = _events_insert(connection.dialect, len(chunk))
            common = {name: _bound(processors, name, value) for name, value in shared.items()}  # once, not per row
            params: list[Any] = []
            for pid in chunk:
                row = {
                    **common,
                    "entity_id": _bound(processors, "entity_id", str(pid)),
                    "patient_id": _bound(processors, "patient_id", pid),
                }
                params.extend(row[name] for name in _EVENT_COLUMNS)
            await connection.exec_driver_sql(sql, tuple(params))


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
    scope = await scope_clause(ctx)

    def base() -> Any:
        statement = select_columns(Patient, columns).where(scope)
        return statement if filters.include_voided else statement.where(Patient.voided_at.is_(None))

    # The plain list (the console's first screen, every page of it) keeps its statements; filtered ones vary.
    plain = not (
        (filters.search and filters.search.strip())
        or filters.department_id is not None
        or filters.physician_id is not None
        or filters.diagnosis_code
        or filters.has_overdue_follow_up is not None
    )
    if plain:
        statement = reused(("patients", columns, filters.include_voided), base, keep=(scope,))
    else:
        statement = base()
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
        overdue = exists().where(FollowUp.patient_id == Patient.id, overdue_clause(clinic_today(ctx)))
        statement = statement.where(overdue if filters.has_overdue_follow_up else ~overdue)
    page = await paginate(
        ctx.connection,
        statement,
        keys=[Patient.id],
        key_of=lambda row: [row.id],
        first=first,
        after=after,
        rows=True,
        reuse=plain,
    )
    page.items = as_rows(Patient, columns, page.items)
    action = "search" if filters.search else "read"
    await record_reads(ctx, [row.id for row in page.items], action=action, operation="patients")
    return page


async def get_patient(ctx: Context, patient_id: int, *, operation: str = "patient", columns: Columns = None) -> Any:
    """The patient as an ORM object, or, given `columns`, a row of just those columns (to show)."""
    scope = await scope_clause(ctx)
    if columns is None:
        async with ctx.reads() as session:
            statement = select(Patient).where(Patient.id == patient_id, scope)
            row: Any = (await session.execute(statement)).scalar_one_or_none()
    else:
        by_id = reused(
            ("patient", columns),
            lambda: select_columns(Patient, columns).where(Patient.id == bindparam("patient_id"), scope),
            keep=(scope,),
        )
        async with ctx.connection() as connection:
            found = (await connection.execute(by_id, {"patient_id": patient_id})).all()
        row = as_rows(Patient, columns, found)[0] if found else None
    if row is None:
        raise not_found("Patient")
    await record_reads(ctx, [patient_id], action="read", operation=operation)
    return row


async def load_for_write(ctx: Context, session: AsyncSession, patient_id: int) -> Patient:
    """The target of a write, through the same scope as reads: out of scope is NOT_FOUND."""
    row = (
        await session.execute(select(Patient).where(Patient.id == patient_id, await scope_clause(ctx)))
    ).scalar_one_or_none()
    if row is None:
        raise not_found("Patient")
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
    for key, column, limit in (
        ("address", "address", 500),
        ("emergency_contact_name", "emergency_contact_name", 100),
        ("allergies", "allergies", 5000),
        ("past_history", "past_history", 20000),
    ):
        if key in data.given:
            setattr(patient, column, text(getattr(data, key), key, limit=limit))
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
    allowed = await scoped_department_ids(ctx)
    if requested is None:
        return ctx.principal.department_id
    if ctx.principal.data_scope is DataScope.SELF:
        if requested != ctx.principal.department_id:
            raise forbidden("You may register patients only in your own department")
    elif allowed is not None and requested not in allowed:
        raise forbidden("That department is outside your scope")
    return requested


async def register_patient(ctx: Context, data: PatientInput, *, allow_duplicate: bool = False) -> Patient:
    """Register a patient. A likely duplicate (same identity number, or same name, birth date and phone,
    among the patients the caller can see) is refused with CONFLICT listing the candidates, unless the
    caller confirms with allow_duplicate."""
    from resolvers.integrity import duplicate_candidates

    if "name" not in data.given:
        raise bad_input("Required", "name")
    department_id = await _department_for(ctx, data.department_id)
    patient = Patient(name="", department_id=department_id, created_by_id=ctx.principal.user_id)
    _apply(patient, data)
    if ctx.principal.data_scope is DataScope.SELF:
        patient.attending_physician_id = ctx.principal.user_id  # the registering physician attends
    if not allow_duplicate:
        candidates = await duplicate_candidates(
            ctx, id_number=patient.id_number, name=patient.name, birth_date=patient.birth_date, phone=patient.phone
        )
        if candidates:
            from core.errors import AppError, ErrorCode
            from core.ids import encode_id

            raise AppError(
                ErrorCode.CONFLICT,
                "A patient with the same identity number, or name, birth date and phone, exists",
                candidates=[{"id": encode_id("Patient", c.id or 0), "name": c.name} for c in candidates],
            )
    async with write_unit(ctx, operation="registerPatient", action="create", entity_type="Patient") as unit:
        if department_id is not None:
            from models.organisation import Department

            if await unit.session.get(Department, department_id) is None:
                raise bad_input("Unknown department", "departmentId")
        unit.session.add(patient)
        await unit.session.flush()
        unit.entity_id = str(patient.id)
        unit.patient_id = patient.id
        history.record_created(ctx, unit, patient, "Patient")
    return patient


async def update_patient(
    ctx: Context, patient_id: int, version: int, data: PatientInput, reason: str | None = None
) -> Patient:
    async with write_unit(ctx, operation="updatePatient", action="update", entity_type="Patient") as unit:
        patient = await load_for_write(ctx, unit.session, patient_id)
        if patient.voided_at is not None:
            raise conflict("This record is void")
        before = history.snapshot(patient)
        unit.entity_id = str(patient_id)
        unit.patient_id = patient_id
        if "department_id" in data.given:
            patient.department_id = await _department_for(ctx, data.department_id)
            data.given.discard("department_id")
        changed = _apply(patient, data)
        await _bump(unit.session, patient, version)
        history.record_updated(ctx, unit, patient, "Patient", before, history.require_reason(reason, signed_off=False))
        unit.detail = {"changed": changed, "version": patient.version}
    return patient


async def _bump(session: AsyncSession, patient: Patient, version: int) -> None:
    """Optimistic lock: the row changes only if it still has the version the client read."""
    session.expunge(patient)  # written below in one guarded UPDATE, not by the ORM's flush
    sync_hashes(patient)
    values = {
        column: getattr(patient, column)
        for column in Patient.model_fields
        if column not in ("id", "version", "created_at", "created_by_id")
    }
    values["updated_at"] = utcnow()
    result = await session.execute(
        update(Patient)
        .where(Patient.id == patient.id, Patient.version == version)
        .values(**values, version=version + 1)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise conflict("This patient was changed by someone else; reload and try again")
    patient.version = version + 1
    patient.updated_at = values["updated_at"]


async def reassign_patient(ctx: Context, patient_id: int, physician_id: int, version: int) -> Patient:
    async with write_unit(ctx, operation="reassignPatient", action="update", entity_type="Patient") as unit:
        patient = await load_for_write(ctx, unit.session, patient_id)
        unit.entity_id = str(patient_id)
        unit.patient_id = patient_id
        physician = await unit.session.get(User, physician_id)
        allowed = await scoped_department_ids(ctx)
        if physician is None or (allowed is not None and physician.department_id not in allowed):
            raise not_found("Physician")
        before = history.snapshot(patient)
        previous = patient.attending_physician_id
        patient.attending_physician_id = physician_id
        await _bump(unit.session, patient, version)
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
    async with write_unit(
        ctx, operation="issuePatientBindingCode", action="create", entity_type="PatientBindingCode"
    ) as unit:
        await load_for_write(ctx, unit.session, patient_id)
        unit.session.add(
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
    """Redeem a binding code: the caller's account is linked to the record and becomes a patient."""
    user_id = ctx.principal.user_id
    normalised = code.strip().upper().replace("-", "").replace(" ", "")
    now = utcnow()
    async with write_unit(ctx, operation="bindPatientRecord", action="update", entity_type="Patient") as unit:
        session = unit.session
        claimed = await session.execute(
            update(PatientBindingCode)
            .where(
                PatientBindingCode.code_hash == token_digest(normalised),
                PatientBindingCode.used_at.is_(None),
                PatientBindingCode.expires_at > now,
            )
            .values(used_at=now, used_by_id=user_id)
        )
        if claimed.rowcount != 1:
            raise bad_input("This code is unknown, used or expired; ask the clinic for a new one", "code")
        binding = await session.get(PatientBindingCode, token_digest(normalised))
        assert binding is not None
        if (await session.execute(select(Patient.id).where(Patient.wechat_user_id == user_id))).first():
            raise conflict("Your account is already linked to a patient record")
        patient = await session.get(Patient, binding.patient_id)
        if patient is None:
            raise not_found("Patient")
        if patient.wechat_user_id is not None:
            raise conflict("This record is already linked to another account")
        patient.wechat_user_id = user_id
        patient.updated_at = now
        session.add(patient)
        role = (await session.execute(select(Role).where(Role.key == PATIENT_ROLE))).scalar_one()
        has_role = await session.execute(
            select(UserRole).where(UserRole.user_id == user_id, UserRole.role_id == role.id)
        )
        if has_role.first() is None:
            session.add(UserRole(user_id=user_id, role_id=role.id))
        unit.entity_id = str(patient.id)
        unit.patient_id = patient.id
    return patient


async def my_record(ctx: Context) -> Patient | None:
    async with ctx.db.session() as session:
        row = (
            await session.execute(select(Patient).where(Patient.wechat_user_id == ctx.principal.user_id))
        ).scalar_one_or_none()
    if row is not None:
        await record_reads(ctx, [row.id or 0], action="read", operation="myRecord")
    return row


async def my_patient_id(ctx: Context) -> int | None:
    async with ctx.db.session() as session:
        return (
            await session.execute(select(Patient.id).where(Patient.wechat_user_id == ctx.principal.user_id))
        ).scalar_one_or_none()


async def access_log(ctx: Context, patient_id: int, *, first: int | None, after: str | None) -> Page[Event]:
    """Who opened this patient's record: reads and searches by anyone but the patient."""
    statement = select(Event).where(
        Event.patient_id == patient_id,
        Event.action.in_(("read", "search")),
        or_(Event.actor_id.is_(None), Event.actor_id != ctx.principal.user_id),
    )
    return await paginate(
        ctx.reads,
        statement,
        keys=[Event.id],
        key_of=lambda row: [row.id],
        first=first,
        after=after,
        descending=True,
    )


async def names_of(ctx: Context, user_ids: Sequence[int]) -> dict[int, str]:
    async with ctx.db.session() as session:
        rows = await session.execute(select(User.id, User.display_name).where(User.id.in_(list(user_ids))))
    return dict(rows.all())

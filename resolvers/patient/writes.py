"""Patients: registration (with duplicate candidates), versioned updates, reassignment."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import or_

from core.crypto import cipher
from core.errors import AppError, ErrorCode, bad_input, conflict, forbidden, not_found
from core.ids import encode_id
from core.timeutil import utcnow
from core.validation import check_resident_id, choice, initials, text
from models.patient import Gender, IdType, Patient, sync_hashes
from models.user import User
from resolvers.audit import history
from resolvers.audit.unit import WriteUnit
from resolvers.data.context import Context
from resolvers.data.matching import matching
from resolvers.organisation import open_department

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
    """In-scope patients with the same identity number, or the same name, birth date and phone: each value
    compared only as the caller may match it (resolvers/data/matching.py). A number hidden from the caller
    is not compared at all, so registering answers the same whether or not such a patient exists."""
    conditions = []
    if id_number:
        digest = cipher().digest(id_number)
        same_number = await matching(
            ctx, "Patient", "idNumber", Patient.id_number_hash, id_number, digest, operation="registerPatient"
        )
        if same_number is not None:
            conditions.append(same_number)
    if name and birth_date and phone:
        digest = cipher().digest(phone)
        same_phone = await matching(
            ctx, "Patient", "phone", Patient.phone_hash, phone, digest, operation="registerPatient"
        )
        if same_phone is not None:
            conditions.append((Patient.name == name.strip()) & (Patient.birth_date == birth_date) & same_phone)
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
            decision = (await ctx.access()).decision  # a candidate shows only what the caller may see of it
            raise AppError(
                ErrorCode.CONFLICT,
                "A patient with the same identity number, or name, birth date and phone, exists",
                candidates=[
                    {"id": encode_id("Patient", c.id or 0), "name": decision.shown("Patient", "name", c.name)}
                    for c in candidates
                ],
            )
    async with ctx.data.write(operation="registerPatient", action="create", entity_type="Patient") as unit:
        if department_id is not None:
            await open_department(unit, department_id)  # known, and taking new patients
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
            department_id = await _department_for(ctx, data.department_id)
            if department_id is not None and department_id != patient.department_id:
                await open_department(unit, department_id)
            patient.department_id = department_id
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

"""The patient's side: binding codes, one's own record, who opened it."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_

from core.errors import bad_input, conflict, forbidden, not_found
from core.security import token_digest
from core.timeutil import utcnow
from models.audit import Event
from models.patient import Patient, PatientBindingCode
from models.role import Role, UserRole
from models.user import User
from policies.roles import PATIENT_ROLE, may_bind_patient_record
from policies.voided import voided_hidden
from resolvers.data.context import Context
from resolvers.data.pagination import Page

BINDING_CODE_HOURS = 24
# The events a patient sees in their access log: every way someone else reached their record.
ACCESS_ACTIONS = ("read", "search", "export", "reveal")
_BINDING_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I


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


@dataclass
class IssuedCode:
    """A binding code as staff see it afterwards: never the code itself (only its digest is kept)."""

    issued_at: datetime
    expires_at: datetime
    used_at: datetime | None
    issued_by_id: int | None


async def binding_codes(ctx: Context, patient_id: int, *, limit: int = 50) -> list[IssuedCode]:
    """The codes issued for a patient within reach, newest first; NOT_FOUND for a patient out of reach."""
    data = ctx.data
    await data.reach_or_not_found(Patient, patient_id)
    code = PatientBindingCode
    statement = await data.select(
        code,
        code.created_at,
        code.expires_at,
        code.used_at,
        code.issued_by_id,
        then=lambda s: s.where(code.patient_id == patient_id).order_by(code.created_at.desc()).limit(limit),
    )
    return [IssuedCode(*row) for row in await data.rows(statement)]


async def revoke_binding_codes(ctx: Context, patient_id: int) -> int:
    """Every code of the patient not yet redeemed stops working now (it shows as expired); how many did."""
    now = utcnow()
    async with ctx.data.write(
        operation="revokePatientBindingCodes", action="update", entity_type="PatientBindingCode"
    ) as unit:
        await unit.get(Patient, patient_id)
        code = PatientBindingCode
        revoked = await unit.execute(
            (await ctx.data.update(code))
            .where(code.patient_id == patient_id, code.used_at.is_(None), code.expires_at > now)
            .values(expires_at=now)
        )
        unit.patient_id = patient_id
        unit.entity_id = str(patient_id)
        unit.detail = {"revoked": revoked}
    return revoked


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

"""Integrity of the record: voiding (never deleting), history, duplicates and undoable merges,
break-the-glass access, and the patient's own rights (data export, account deletion)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import inspect as sa_inspect
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel

from core.crypto import cipher
from core.errors import bad_input, conflict, not_found
from core.timeutil import utcnow
from models.auth import AuthSession
from models.clinical import Diagnosis, ExamReport, FollowUp, PlanStatus, TreatmentPlan, Visit
from models.integrity import AccessGrant, Amendment, GrantKind, PatientMerge
from models.patient import Patient, PatientBindingCode
from models.role import Role, UserRole
from models.user import User, UserStatus
from resolvers import history
from resolvers.audit.unit import write_unit
from resolvers.data.context import Context
from resolvers.data.pagination import Page, paginate
from resolvers.data.tree import scoped_department_ids
from resolvers.patient import PATIENT_ROLE, load_for_write, my_patient_id, record_reads, scope_clause

# ---- what belongs to a patient -----------------------------------------------------------------
# Every table holding rows that belong to a patient registers here (model, its patient column), so a
# merge moves all of them and an undo moves them back. Later modules call register_patient_table().
PATIENT_OWNED: list[tuple[type[SQLModel], str]] = []


def register_patient_table(model: type[SQLModel], column: str = "patient_id") -> None:
    if (model, column) not in PATIENT_OWNED:
        PATIENT_OWNED.append((model, column))


for _model in (Visit, Diagnosis, ExamReport, TreatmentPlan, FollowUp, PatientBindingCode):
    register_patient_table(_model)


# Records that can be voided (entered in error), and when each counts as signed off.
VOIDABLE: dict[str, type[SQLModel]] = {
    "Visit": Visit,
    "Diagnosis": Diagnosis,
    "ExamReport": ExamReport,
    "TreatmentPlan": TreatmentPlan,
    "FollowUp": FollowUp,
}
SIGNED_OFF: dict[str, Callable[[Any], bool]] = {
    "Patient": lambda _row: False,
    "Visit": lambda _row: True,
    "Diagnosis": lambda _row: True,
    "ExamReport": lambda _row: True,
    "TreatmentPlan": lambda row: row.status in (PlanStatus.COMPLETED.value, PlanStatus.STOPPED.value),
    "FollowUp": lambda row: row.status != "scheduled",
}


def _primary_key(model: type[SQLModel]) -> Any:
    return sa_inspect(model).primary_key[0]


async def _scoped_row(ctx: Context, session: AsyncSession, entity_type: str, entity_id: int) -> Any:
    """A patient's record (or the patient), through the caller's patient scope; else NOT_FOUND."""
    if entity_type == "Patient":
        return await load_for_write(ctx, session, entity_id)
    model: Any = VOIDABLE.get(entity_type)
    if model is None:
        raise bad_input(f"Unknown record type {entity_type}", "entityType")
    row = (
        await session.execute(
            select(model)
            .join(Patient, Patient.id == model.patient_id)
            .where(model.id == entity_id, await scope_clause(ctx))
        )
    ).scalar_one_or_none()
    if row is None:
        raise not_found(entity_type)
    return row


# ---- voiding and history -----------------------------------------------------------------------


async def void_record(ctx: Context, *, entity_type: str, entity_id: int, reason: str) -> Any:
    """Mark a record entered in error as void: kept, visible as voided to those allowed, never deleted."""
    text = history.require_reason(reason, signed_off=True)
    async with write_unit(ctx, operation="voidRecord", action="delete", entity_type=entity_type) as unit:
        row = await _scoped_row(ctx, unit.session, entity_type, entity_id)
        if row.voided_at is not None:
            raise conflict("This record is already void")
        before = history.snapshot(row)
        row.voided_at = utcnow()
        row.voided_by_id = ctx.principal.user_id
        row.void_reason = text
        unit.session.add(row)
        patient_id = row.id if entity_type == "Patient" else row.patient_id
        history.record_change(
            ctx,
            unit,
            entity_type=entity_type,
            entity_id=entity_id,
            patient_id=patient_id,
            before=before,
            after=history.snapshot(row),
            kind="void",
            reason=text,
        )
        unit.entity_id = str(entity_id)
        unit.patient_id = patient_id
    return row


async def record_history(ctx: Context, *, entity_type: str, entity_id: int) -> list[Amendment]:
    async with ctx.db.session() as session:
        row = await _scoped_row(ctx, session, entity_type, entity_id)
    patient_id = row.id if entity_type == "Patient" else row.patient_id
    await record_reads(ctx, [patient_id], action="read", operation="history")
    return await history.history(ctx, entity_type=entity_type, entity_id=entity_id)


# ---- duplicates and merges ---------------------------------------------------------------------


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
    async with ctx.db.session() as session:
        rows = await session.execute(
            select(Patient)
            .where(or_(*conditions), Patient.voided_at.is_(None), await scope_clause(ctx))
            .order_by(Patient.id)
            .limit(10)
        )
    return list(rows.scalars().all())


async def merge_patients(ctx: Context, *, keep_id: int, merge_id: int, reason: str) -> PatientMerge:
    text = history.require_reason(reason, signed_off=True)
    if keep_id == merge_id:
        raise bad_input("A patient cannot be merged into itself", "mergeId")
    async with write_unit(ctx, operation="mergePatients", action="update", entity_type="Patient") as unit:
        session = unit.session
        keep = await load_for_write(ctx, session, keep_id)
        merged = await load_for_write(ctx, session, merge_id)
        if merged.merged_into_id is not None or merged.voided_at is not None or keep.voided_at is not None:
            raise conflict("One of these records is already merged or void")
        moved: dict[str, Any] = {}
        for model, column in PATIENT_OWNED:
            key = _primary_key(model)
            owner = getattr(model, column)
            keys = list((await session.execute(select(key).where(owner == merge_id))).scalars().all())
            if keys:
                await session.execute(update(model).where(key.in_(keys)).values({column: keep_id}))
                moved[model.__tablename__] = keys  # type: ignore[index]
        if merged.wechat_user_id is not None:
            moved["wechat_user_id"] = merged.wechat_user_id
            user_id = merged.wechat_user_id
            merged.wechat_user_id = None
            await session.flush()
            if keep.wechat_user_id is None:
                keep.wechat_user_id = user_id
                moved["wechat_moved_to_keep"] = True
        merged.merged_into_id = keep_id
        merged.voided_at = utcnow()
        merged.voided_by_id = ctx.principal.user_id
        merged.void_reason = f"merged into patient {keep_id}: {text}"
        session.add_all([keep, merged])
        record = PatientMerge(
            keep_id=keep_id, merged_id=merge_id, reason=text or "", moved=moved, actor_id=ctx.principal.user_id
        )
        session.add(record)
        await session.flush()
        for pid, kind in ((keep_id, "merge"), (merge_id, "merge")):
            history.record_change(
                ctx,
                unit,
                entity_type="Patient",
                entity_id=pid,
                patient_id=pid,
                before=None,
                after={"merge": record.id, "keep": keep_id, "merged": merge_id, "moved": moved},
                kind=kind,
                reason=text,
            )
        unit.entity_id = str(record.id)
        unit.patient_id = keep_id
        unit.detail = {
            "keep": keep_id,
            "merged": merge_id,
            "moved": {k: len(v) if isinstance(v, list) else v for k, v in moved.items()},
        }
    return record


async def unmerge_patients(ctx: Context, *, merge_record_id: int, reason: str) -> PatientMerge:
    text = history.require_reason(reason, signed_off=True)
    async with write_unit(ctx, operation="unmergePatients", action="update", entity_type="Patient") as unit:
        session = unit.session
        record = await session.get(PatientMerge, merge_record_id)
        if record is None:
            raise not_found("Merge")
        keep = await load_for_write(ctx, session, record.keep_id)
        merged = await session.get(Patient, record.merged_id)
        if merged is None:
            raise not_found("Patient")
        if record.undone_at is not None:
            raise conflict("This merge was already undone")
        by_table = {model.__tablename__: (model, column) for model, column in PATIENT_OWNED}
        for table_name, keys in record.moved.items():
            if table_name not in by_table:
                continue
            model, column = by_table[table_name]
            await session.execute(update(model).where(_primary_key(model).in_(keys)).values({column: merged.id}))
        if "wechat_user_id" in record.moved:
            if record.moved.get("wechat_moved_to_keep"):
                keep.wechat_user_id = None
                session.add(keep)
                await session.flush()
            merged.wechat_user_id = record.moved["wechat_user_id"]
        merged.merged_into_id = None
        merged.voided_at = None
        merged.voided_by_id = None
        merged.void_reason = None
        session.add(merged)
        record.undone_at = utcnow()
        record.undone_by_id = ctx.principal.user_id
        record.undo_reason = text
        session.add(record)
        for pid in (record.keep_id, record.merged_id):
            history.record_change(
                ctx,
                unit,
                entity_type="Patient",
                entity_id=pid,
                patient_id=pid,
                before=None,
                after={"unmerge": record.id},
                kind="unmerge",
                reason=text,
            )
        unit.entity_id = str(record.id)
        unit.patient_id = record.keep_id
    return record


# ---- break-the-glass ---------------------------------------------------------------------------

REVEALABLE = {
    "PHONE": ("phone", GrantKind.REVEAL_PHONE),
    "ID_NUMBER": ("id_number", GrantKind.REVEAL_ID_NUMBER),
    "EMERGENCY_CONTACT_PHONE": ("emergency_contact_phone", GrantKind.REVEAL_EMERGENCY_CONTACT_PHONE),
}


def _reason(reason: str) -> str:
    text = reason.strip()
    if len(text) < 10 or len(text) > 500:
        raise bad_input("Say why, in 10 to 500 characters", "reason")
    return text


async def reveal_field(ctx: Context, *, patient_id: int, field: str, reason: str) -> str | None:
    """The whole value of a masked field, for a stated reason: granted, recorded, listed for review."""
    column, kind = REVEALABLE[field]
    text = _reason(reason)
    async with write_unit(ctx, operation="revealField", action="reveal", entity_type="Patient") as unit:
        patient = await load_for_write(ctx, unit.session, patient_id)
        now = utcnow()
        unit.session.add(
            AccessGrant(
                user_id=ctx.principal.user_id,
                patient_id=patient_id,
                kind=kind.value,
                reason=text,
                granted_at=now,
                expires_at=now,
            )
        )
        unit.entity_id = str(patient_id)
        unit.patient_id = patient_id
        unit.detail = {"field": field}
    value: str | None = getattr(patient, column)
    return value


async def emergency_access(ctx: Context, *, patient_id: int, reason: str) -> AccessGrant:
    """Reach a patient outside one's scope for a short time; recorded and listed for review."""
    text = _reason(reason)
    minutes = ctx.settings.break_glass_minutes
    async with write_unit(ctx, operation="emergencyAccess", action="reveal", entity_type="Patient") as unit:
        patient = await unit.session.get(Patient, patient_id)
        if patient is None or patient.voided_at is not None:
            raise not_found("Patient")
        now = utcnow()
        grant = AccessGrant(
            user_id=ctx.principal.user_id,
            patient_id=patient_id,
            kind=GrantKind.EMERGENCY.value,
            reason=text,
            granted_at=now,
            expires_at=now + timedelta(minutes=minutes),
        )
        unit.session.add(grant)
        await unit.session.flush()
        unit.entity_id = str(patient_id)
        unit.patient_id = patient_id
        unit.detail = {"minutes": minutes}
    ctx.memo.pop("patient_scope", None)  # the grant widens this request's scope from now on
    return grant


async def list_grants(ctx: Context, *, first: int | None, after: str | None, unreviewed: bool) -> Page[AccessGrant]:
    """Break-the-glass grants for review: of patients or by staff in the reviewer's departments."""
    statement = select(AccessGrant)
    allowed = await scoped_department_ids(ctx)
    if allowed is not None:
        departments = sorted(allowed)
        statement = statement.where(
            or_(
                AccessGrant.patient_id.in_(select(Patient.id).where(Patient.department_id.in_(departments))),
                AccessGrant.user_id.in_(select(User.id).where(User.department_id.in_(departments))),
            )
        )
    if unreviewed:
        statement = statement.where(AccessGrant.reviewed_at.is_(None))
    return await paginate(
        ctx.reads,
        statement,
        keys=[AccessGrant.id],
        key_of=lambda row: [row.id],
        first=first,
        after=after,
        descending=True,
    )


async def review_grant(ctx: Context, *, grant_id: int, note: str) -> AccessGrant:
    async with write_unit(ctx, operation="reviewBreakGlass", action="update", entity_type="AccessGrant") as unit:
        grant = await unit.session.get(AccessGrant, grant_id)
        allowed = await scoped_department_ids(ctx)
        if grant is None:
            raise not_found("Grant")
        if allowed is not None:
            patient = await unit.session.get(Patient, grant.patient_id)
            user = await unit.session.get(User, grant.user_id)
            if not ((patient and patient.department_id in allowed) or (user and user.department_id in allowed)):
                raise not_found("Grant")
        grant.reviewed_at = utcnow()
        grant.reviewed_by_id = ctx.principal.user_id
        grant.review_note = note.strip()[:500] or None
        unit.session.add(grant)
        unit.entity_id = str(grant_id)
        unit.patient_id = grant.patient_id
    return grant


# ---- the patient's rights ----------------------------------------------------------------------


@dataclass
class Export:
    data: dict[str, Any]


async def my_data_export(ctx: Context) -> dict[str, Any] | None:
    """Everything the platform holds about the caller's own record, as plain JSON."""
    patient_id = await my_patient_id(ctx)
    if patient_id is None:
        return None
    async with ctx.db.session() as session:
        patient = await session.get(Patient, patient_id)
        sections: dict[str, Any] = {}
        for model, column in PATIENT_OWNED:
            if model is PatientBindingCode:
                continue
            table: Any = model
            rows = (await session.execute(select(table).where(getattr(table, column) == patient_id))).scalars().all()
            sections[table.__tablename__] = [
                history.snapshot(row) for row in rows if getattr(row, "voided_at", None) is None
            ]
    profile = history.snapshot(patient) or {}
    for key in history.SENSITIVE:
        profile[key] = getattr(patient, key, None)
    for key in ("wechat_user_id", "created_by_id", "voided_by_id", "merged_into_id"):
        profile.pop(key, None)
    await record_reads(ctx, [patient_id], action="export", operation="myDataExport")
    return {"exportedAt": utcnow().isoformat(), "patient": profile, **sections}


async def delete_my_account(ctx: Context) -> bool:
    """Unlink the WeChat account and close it; the medical record stays, as the law requires."""
    user_id = ctx.principal.user_id
    async with write_unit(ctx, operation="deleteMyAccount", action="delete", entity_type="User") as unit:
        session = unit.session
        user = await session.get(User, user_id)
        if user is None:
            raise not_found("User")
        await session.execute(update(Patient).where(Patient.wechat_user_id == user_id).values(wechat_user_id=None))
        role = (await session.execute(select(Role).where(Role.key == PATIENT_ROLE))).scalar_one_or_none()
        if role is not None:
            from sqlalchemy import delete

            await session.execute(delete(UserRole).where(UserRole.user_id == user_id, UserRole.role_id == role.id))
        user.wechat_openid = None
        user.display_name = ""
        user.phone = None
        user.status = UserStatus.DISABLED.value
        user.updated_at = utcnow()
        session.add(user)
        await session.execute(
            update(AuthSession)
            .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
            .values(revoked_at=utcnow(), revoke_reason="account_deleted")
        )
        unit.entity_id = str(user_id)
    return True

"""Integrity of the record: voiding (never deleting), history, duplicates and undoable merges,
break-the-glass access, and the patient's own rights (data export, account deletion)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from core.errors import bad_input, conflict, forbidden, not_found
from core.timeutil import utcnow
from models.auth import AuthSession
from models.clinical import Diagnosis, ExamReport, FollowUp, TreatmentPlan, Visit
from models.integrity import AccessGrant, Amendment, GrantKind, PatientMerge
from models.patient import Patient
from models.role import Role, UserRole
from models.user import User, UserStatus
from policies.decision import FieldMode
from policies.roles import PATIENT_ROLE
from policies.voided import voided_hidden
from resolvers.audit import history
from resolvers.audit.unit import WriteUnit
from resolvers.data.context import Context
from resolvers.data.ownership import move_owned, owned_rows, restore_owned
from resolvers.data.pagination import Page
from resolvers.patient import my_patient_id

# Records that can be voided (entered in error).
VOIDABLE: dict[str, type[Any]] = {
    "Visit": Visit,
    "Diagnosis": Diagnosis,
    "ExamReport": ExamReport,
    "TreatmentPlan": TreatmentPlan,
    "FollowUp": FollowUp,
}


def _model(entity_type: str) -> Any:
    if entity_type == "Patient":
        return Patient
    model: Any = VOIDABLE.get(entity_type)
    if model is None:
        raise bad_input(f"Unknown record type {entity_type}", "entityType")
    return model


# ---- voiding and history -----------------------------------------------------------------------


async def void_record(ctx: Context, *, entity_type: str, entity_id: int, reason: str) -> Any:
    """Mark a record entered in error as void: kept, visible as voided to those allowed, never deleted."""
    text = history.require_reason(reason, signed_off=True)
    async with ctx.data.write(operation="voidRecord", action="delete", entity_type=entity_type) as unit:
        row = await unit.get(_model(entity_type), entity_id, what=entity_type)
        if row.voided_at is not None:
            raise conflict("This record is already void")
        before = history.snapshot(row)
        row.voided_at = utcnow()
        row.voided_by_id = ctx.principal.user_id
        row.void_reason = text
        unit.add(row)
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
    model = _model(entity_type)
    hidden = voided_hidden(model, await ctx.access())  # a voided record's history goes where the record goes
    row = await ctx.data.first(await ctx.data.select(model, then=lambda s: s.where(model.id == entity_id, *hidden)))
    if row is None:
        raise not_found(entity_type)
    patient_id = row.id if entity_type == "Patient" else row.patient_id
    await ctx.data.record_reads([patient_id], action="read", operation="history")
    return await history.history(ctx, entity_type=entity_type, entity_id=entity_id)


# ---- duplicates and merges ---------------------------------------------------------------------


async def merge_patients(ctx: Context, *, keep_id: int, merge_id: int, reason: str) -> PatientMerge:
    """Merge a duplicate into the record kept: every row the duplicate owns moves (policies/ownership.py),
    the duplicate is voided, pointing at the record kept, and the merge can be undone."""
    text = history.require_reason(reason, signed_off=True)
    if keep_id == merge_id:
        raise bad_input("A patient cannot be merged into itself", "mergeId")
    async with ctx.data.write(operation="mergePatients", action="update", entity_type="Patient") as unit:
        keep = await unit.get(Patient, keep_id)
        merged = await unit.get(Patient, merge_id)
        if merged.merged_into_id is not None or merged.voided_at is not None or keep.voided_at is not None:
            raise conflict("One of these records is already merged or void")
        moved: dict[str, Any] = await move_owned(unit, from_patient=merge_id, to_patient=keep_id)
        if merged.wechat_user_id is not None:
            moved["wechat_user_id"] = merged.wechat_user_id
            user_id = merged.wechat_user_id
            merged.wechat_user_id = None
            await unit.flush()
            if keep.wechat_user_id is None:
                keep.wechat_user_id = user_id
                moved["wechat_moved_to_keep"] = True
        merged.merged_into_id = keep_id
        merged.voided_at = utcnow()
        merged.voided_by_id = ctx.principal.user_id
        merged.void_reason = f"merged into patient {keep_id}: {text}"
        unit.add_all([keep, merged])
        record = PatientMerge(
            keep_id=keep_id, merged_id=merge_id, reason=text or "", moved=moved, actor_id=ctx.principal.user_id
        )
        unit.add(record)
        await unit.flush()
        _merge_history(
            ctx,
            unit,
            (keep_id, merge_id),
            {"merge": record.id, "keep": keep_id, "merged": merge_id, "moved": moved},
            "merge",
            text,
        )
        unit.entity_id = str(record.id)
        unit.patient_id = keep_id
        unit.detail = {
            "keep": keep_id,
            "merged": merge_id,
            "moved": {k: len(v) if isinstance(v, list) else v for k, v in moved.items()},
        }
    return record


def _merge_history(
    ctx: Context, unit: WriteUnit, patient_ids: tuple[int, int], after: dict[str, Any], kind: str, reason: str | None
) -> None:
    for pid in patient_ids:
        history.record_change(
            ctx,
            unit,
            entity_type="Patient",
            entity_id=pid,
            patient_id=pid,
            before=None,
            after=after,
            kind=kind,
            reason=reason,
        )


async def unmerge_patients(ctx: Context, *, merge_record_id: int, reason: str) -> PatientMerge:
    """Undo a merge: both of its patients must be within the caller's reach."""
    text = history.require_reason(reason, signed_off=True)
    async with ctx.data.write(operation="unmergePatients", action="update", entity_type="Patient") as unit:
        record = await unit.get(PatientMerge, merge_record_id, what="Merge")
        keep = await unit.get(Patient, record.keep_id)
        merged = await unit.get(Patient, record.merged_id)
        if record.undone_at is not None:
            raise conflict("This merge was already undone")
        await restore_owned(unit, record.moved, to_patient=merged.id)
        if "wechat_user_id" in record.moved:
            if record.moved.get("wechat_moved_to_keep"):
                keep.wechat_user_id = None
                unit.add(keep)
                await unit.flush()
            merged.wechat_user_id = record.moved["wechat_user_id"]
        merged.merged_into_id = None
        merged.voided_at = None
        merged.voided_by_id = None
        merged.void_reason = None
        unit.add(merged)
        record.undone_at = utcnow()
        record.undone_by_id = ctx.principal.user_id
        record.undo_reason = text
        unit.add(record)
        _merge_history(ctx, unit, (record.keep_id, record.merged_id), {"unmerge": record.id}, "unmerge", text)
        unit.entity_id = str(record.id)
        unit.patient_id = record.keep_id
    return record


# ---- break-the-glass ---------------------------------------------------------------------------

# field -> (column, the field in the schema, grant kind)
REVEALABLE = {
    "PHONE": ("phone", "phone", GrantKind.REVEAL_PHONE),
    "ID_NUMBER": ("id_number", "idNumber", GrantKind.REVEAL_ID_NUMBER),
    "EMERGENCY_CONTACT_PHONE": (
        "emergency_contact_phone",
        "emergencyContactPhone",
        GrantKind.REVEAL_EMERGENCY_CONTACT_PHONE,
    ),
}


def _reason(reason: str) -> str:
    text = reason.strip()
    if len(text) < 10 or len(text) > 500:
        raise bad_input("Say why, in 10 to 500 characters", "reason")
    return text


async def reveal_field(ctx: Context, *, patient_id: int, field: str, reason: str) -> str | None:
    """The whole value of a masked field, for a stated reason: granted, recorded, listed for review. Only a field
    the caller's policy shows masked can be revealed: one it hides stays hidden, one it shows needs no reveal."""
    column, schema_field, kind = REVEALABLE[field]
    text = _reason(reason)
    async with ctx.data.write(operation="revealField", action="reveal", entity_type="Patient") as unit:
        patient = await unit.get(Patient, patient_id)  # out of reach first: NOT_FOUND, whatever the field
        mode = (await ctx.access()).decision.mode("Patient", schema_field)
        if mode is FieldMode.HIDDEN:
            raise forbidden("Your role does not see this field at all")
        if mode is FieldMode.CLEAR:
            raise bad_input("You see this field in full already", "field")
        now = utcnow()
        unit.add(
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
    system = ctx.data.unscoped("break the glass: the patient is outside the caller's reach by definition")
    async with ctx.data.write(operation="emergencyAccess", action="reveal", entity_type="Patient") as unit:
        patient = await unit.first(system.select(Patient).where(Patient.id == patient_id))
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
        unit.add(grant)
        await unit.flush()
        unit.entity_id = str(patient_id)
        unit.patient_id = patient_id
        unit.detail = {"minutes": minutes}
    ctx.forget_access()  # the grant widens this request's reach from now on
    return grant


async def list_grants(ctx: Context, *, first: int | None, after: str | None, unreviewed: bool) -> Page[AccessGrant]:
    """Break-the-glass grants for review: of patients or by staff in the reviewer's departments."""
    statement = await ctx.data.select(AccessGrant, purpose="write")
    if unreviewed:
        statement = statement.where(AccessGrant.reviewed_at.is_(None))
    return await ctx.data.page(statement, keys=[AccessGrant.id], first=first, after=after, descending=True)


async def review_grant(ctx: Context, *, grant_id: int, note: str) -> AccessGrant:
    async with ctx.data.write(operation="reviewBreakGlass", action="update", entity_type="AccessGrant") as unit:
        grant = await unit.get(AccessGrant, grant_id, what="Grant")
        if grant.user_id == ctx.principal.user_id:
            raise forbidden("Nobody reviews their own emergency access")
        grant.reviewed_at = utcnow()
        grant.reviewed_by_id = ctx.principal.user_id
        grant.review_note = note.strip()[:500] or None
        unit.add(grant)
        unit.entity_id = str(grant_id)
        unit.patient_id = grant.patient_id
    return grant


# ---- the patient's rights ----------------------------------------------------------------------


async def my_data_export(ctx: Context) -> dict[str, Any] | None:
    """Everything the platform holds about the caller's own record, as plain JSON: the record and every row
    it owns (policies/ownership.py), consultation messages included."""
    patient_id = await my_patient_id(ctx)
    if patient_id is None:
        return None
    patient = await ctx.data.get(Patient, patient_id)
    sections = await owned_rows(ctx, patient_id)
    profile = history.snapshot(patient) or {}
    for key in history.SENSITIVE:
        profile[key] = getattr(patient, key, None)
    for key in ("wechat_user_id", "created_by_id", "voided_by_id", "merged_into_id"):
        profile.pop(key, None)
    await ctx.data.record_reads([patient_id], action="export", operation="myDataExport")
    return {"exportedAt": utcnow().isoformat(), "patient": profile, **sections}


async def delete_my_account(ctx: Context) -> bool:
    """Unlink the WeChat account and close it; the medical record stays, as the law requires."""
    user_id = ctx.principal.user_id
    data = ctx.data
    async with data.write(operation="deleteMyAccount", action="delete", entity_type="User") as unit:
        user = await unit.get(User, user_id)
        await unit.execute(
            (await data.update(Patient, purpose="read"))
            .where(Patient.wechat_user_id == user_id)
            .values(wechat_user_id=None)
        )
        system = data.unscoped("closing one's own account removes one's own role and sessions")
        role = await unit.first(system.select(Role).where(Role.key == PATIENT_ROLE))
        if role is not None:
            await unit.execute(system.delete(UserRole).where(UserRole.user_id == user_id, UserRole.role_id == role.id))
        user.wechat_openid = None
        user.display_name = ""
        user.phone = None
        user.status = UserStatus.DISABLED.value
        user.updated_at = utcnow()
        unit.add(user)
        await unit.execute(
            (await data.update(AuthSession))
            .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
            .values(revoked_at=utcnow(), revoke_reason="account_deleted")
        )
        unit.entity_id = str(user_id)
    return True

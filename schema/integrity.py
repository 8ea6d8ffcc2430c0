"""Record integrity over the API: history, voiding, merges, break-the-glass, the patient's own rights."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.scalars import JSON

from core.ids import decode_id, encode_id
from models.integrity import AccessGrant, Amendment, PatientMerge
from resolvers import integrity
from resolvers.data.context import Info
from schema.engine.connection import Connection, connection
from schema.history import api_changes


@strawberry.enum(name="RecordType")
class RecordType(Enum):
    PATIENT = "Patient"
    VISIT = "Visit"
    DIAGNOSIS = "Diagnosis"
    EXAM_REPORT = "ExamReport"
    TREATMENT_PLAN = "TreatmentPlan"
    FOLLOW_UP = "FollowUp"


@strawberry.enum(name="RevealableField")
class RevealableField(Enum):
    PHONE = "PHONE"
    ID_NUMBER = "ID_NUMBER"
    EMERGENCY_CONTACT_PHONE = "EMERGENCY_CONTACT_PHONE"


@strawberry.type(name="VoidInfo")
class VoidInfoType:
    """A record entered in error: kept, shown as void, never deleted (to those who see voided records at all:
    policies/voided.py)."""

    at: datetime
    reason: str | None
    _by: strawberry.Private[int | None]

    @strawberry.field
    async def by(self, info: Info) -> str | None:
        return None if self._by is None else await info.context.loaders.user_name_by_id.load(self._by)

    @classmethod
    def of(cls, row: Any) -> VoidInfoType | None:
        if getattr(row, "voided_at", None) is None:
            return None
        return cls(at=row.voided_at, reason=row.void_reason, _by=row.voided_by_id)


@strawberry.type(name="Amendment")
class AmendmentType:
    at: datetime
    kind: str = strawberry.field(description="create, update, void, merge or unmerge")
    changes: JSON = strawberry.field(
        description='{field: {"before": ..., "after": ...}} in API terms: keys are the GraphQL fields of the record '
        "type (`painScore`, `voided.reason`; a reference is its opaque id, `physicianId`), values as the field "
        "shows them to you (enum values by name, masked where your role sees the field masked); fields your role "
        'does not see are left out; encrypted fields show only that they changed ("(set)", "(changed)"). A merge '
        "entry holds mergeId, keepId, mergedId and movedRecords (opaque ids by record type)."
    )
    reason: str | None
    _actor_id: strawberry.Private[int | None]

    @strawberry.field
    async def by(self, info: Info) -> str | None:
        return None if self._actor_id is None else await info.context.loaders.user_name_by_id.load(self._actor_id)

    @classmethod
    def from_row(cls, row: Amendment, info: Info) -> AmendmentType:
        """The amendment as the caller's schema shows it (schema/history.py)."""
        schema = info.schema
        changes = api_changes(schema._schema, schema.decision, row.entity_type, row.kind, row.changes or {})
        return cls(at=row.at, kind=row.kind, changes=changes, reason=row.reason, _actor_id=row.actor_id)


@strawberry.type(name="VoidResult")
class VoidResultType:
    record_type: RecordType
    id: strawberry.ID
    voided_at: datetime
    reason: str


@strawberry.type(name="PatientMerge")
class PatientMergeType:
    id: strawberry.ID
    keep_id: strawberry.ID
    merged_id: strawberry.ID
    reason: str
    moved: JSON = strawberry.field(description="The rows moved, by table: what an undo moves back.")
    at: datetime
    undone_at: datetime | None

    @classmethod
    def from_row(cls, row: PatientMerge) -> PatientMergeType:
        return cls(
            id=strawberry.ID(encode_id("PatientMerge", row.id)),  # type: ignore[arg-type]
            keep_id=strawberry.ID(encode_id("Patient", row.keep_id)),
            merged_id=strawberry.ID(encode_id("Patient", row.merged_id)),
            reason=row.reason,
            moved=row.moved,
            at=row.at,
            undone_at=row.undone_at,
        )


@strawberry.type(name="AccessGrant")
class AccessGrantType:
    id: strawberry.ID
    patient_id: strawberry.ID
    kind: str = strawberry.field(description="emergency, or reveal_<field>")
    reason: str
    granted_at: datetime
    expires_at: datetime
    reviewed_at: datetime | None
    review_note: str | None
    _user_id: strawberry.Private[int]

    @strawberry.field
    async def by(self, info: Info) -> str | None:
        return await info.context.loaders.user_name_by_id.load(self._user_id)

    @classmethod
    def from_row(cls, row: AccessGrant) -> AccessGrantType:
        return cls(
            id=strawberry.ID(encode_id("AccessGrant", row.id)),  # type: ignore[arg-type]
            patient_id=strawberry.ID(encode_id("Patient", row.patient_id)),
            kind=row.kind,
            reason=row.reason,
            granted_at=row.granted_at,
            expires_at=row.expires_at,
            reviewed_at=row.reviewed_at,
            review_note=row.review_note,
            _user_id=row.user_id,
        )


@strawberry.type
class IntegrityQuery:
    @strawberry.field(name="history", description="Every change to a record, oldest first.")
    async def record_history(
        self, info: Info, entity_type: RecordType, entity_id: strawberry.ID
    ) -> list[AmendmentType]:
        rows = await integrity.record_history(
            info.context, entity_type=entity_type.value, entity_id=decode_id(entity_type.value, entity_id)
        )
        return [AmendmentType.from_row(row, info) for row in rows]

    @strawberry.field(description="Break-the-glass reveals and emergency accesses, for review, newest first.")
    async def break_glass_accesses(
        self, info: Info, first: int | None = 20, after: str | None = None, unreviewed_only: bool = False
    ) -> Connection[AccessGrantType]:
        page = await integrity.list_grants(info.context, first=first, after=after, unreviewed=unreviewed_only)
        return connection(page, AccessGrantType.from_row)

    @strawberry.field(description="Everything held about your own record, as JSON (mini-program).")
    async def my_data_export(self, info: Info) -> JSON | None:
        return await integrity.my_data_export(info.context)  # type: ignore[return-value]


@strawberry.type
class IntegrityMutation:
    @strawberry.mutation(description="Void a record entered in error (kept and shown as void; never deleted).")
    async def void_record(self, info: Info, entity_type: RecordType, id: strawberry.ID, reason: str) -> VoidResultType:
        row = await integrity.void_record(
            info.context, entity_type=entity_type.value, entity_id=decode_id(entity_type.value, id), reason=reason
        )
        return VoidResultType(record_type=entity_type, id=id, voided_at=row.voided_at, reason=row.void_reason or "")

    @strawberry.mutation(description="Move every record of a duplicate patient to the kept one (undoable).")
    async def merge_patients(
        self, info: Info, keep_id: strawberry.ID, merge_id: strawberry.ID, reason: str
    ) -> PatientMergeType:
        row = await integrity.merge_patients(
            info.context, keep_id=decode_id("Patient", keep_id), merge_id=decode_id("Patient", merge_id), reason=reason
        )
        return PatientMergeType.from_row(row)

    @strawberry.mutation(description="Undo a merge: the moved records go back to the merged patient.")
    async def unmerge_patients(self, info: Info, merge_id: strawberry.ID, reason: str) -> PatientMergeType:
        row = await integrity.unmerge_patients(
            info.context, merge_record_id=decode_id("PatientMerge", merge_id), reason=reason
        )
        return PatientMergeType.from_row(row)

    @strawberry.mutation(description="Break the glass: see a masked field whole, for a recorded reason.")
    async def reveal_field(
        self, info: Info, patient_id: strawberry.ID, field: RevealableField, reason: str
    ) -> str | None:
        return await integrity.reveal_field(
            info.context, patient_id=decode_id("Patient", patient_id), field=field.value, reason=reason
        )

    @strawberry.mutation(description="Break the glass: reach a patient outside your scope for a short time.")
    async def emergency_access(self, info: Info, patient_id: strawberry.ID, reason: str) -> AccessGrantType:
        grant = await integrity.emergency_access(
            info.context, patient_id=decode_id("Patient", patient_id), reason=reason
        )
        return AccessGrantType.from_row(grant)

    @strawberry.mutation
    async def review_break_glass(self, info: Info, id: strawberry.ID, note: str = "") -> AccessGrantType:
        grant = await integrity.review_grant(info.context, grant_id=decode_id("AccessGrant", id), note=note)
        return AccessGrantType.from_row(grant)

    @strawberry.mutation(description="Close your mini-program account; your medical record stays, as the law requires.")
    async def delete_my_account(self, info: Info, confirm: bool) -> bool:
        if not confirm:
            from core.errors import bad_input

            raise bad_input("Confirm with confirm: true", "confirm")
        return await integrity.delete_my_account(info.context)

"""Patients: the whole history in one place, scoped, masked by policy, every read recorded."""

from __future__ import annotations

import dataclasses
import enum
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.scalars import JSON

from core.ids import decode_id, decode_optional_id, encode_id
from core.timeutil import utcnow
from models.audit import Event
from models.base import enum_member
from models.patient import Gender, IdType, Patient
from resolvers import patient as patients
from resolvers.data.context import Info
from resolvers.fhir import patient_bundle
from schema.engine.connection import Connection, connection
from schema.engine.masking import shown
from schema.engine.prefetch import history_of, prefetch_history
from schema.engine.projection import PATIENT, columns_for
from schema.integrity import VoidInfoType

if TYPE_CHECKING:
    from schema.clinical.follow_ups import FollowUpType
    from schema.clinical.records import DiagnosisType, ExamReportType, TreatmentPlanType, VisitType

# A patient's records are the clinical domain's types, which refer back to patients (a follow-up's patient): they
# are named lazily here, and loaded through the records schema/clinical registers (schema/engine/prefetch.py).
_RECORDS = "schema.clinical.records"
_FOLLOW_UPS = "schema.clinical.follow_ups"

GenderEnum = strawberry.enum(Gender, name="Gender")
IdTypeEnum = strawberry.enum(IdType, name="IdType")


@strawberry.type(name="Consent")
class ConsentType:
    scope: str
    version: str | None
    given_at: datetime | None


@strawberry.type(name="Patient")
class PatientType:
    id: strawberry.ID
    name: str
    name_initials: str
    gender: GenderEnum  # type: ignore[valid-type]
    birth_date: date | None
    id_type: IdTypeEnum  # type: ignore[valid-type]
    address: str | None
    emergency_contact_name: str | None
    allergies: str | None
    past_history: str | None
    department_id: strawberry.ID | None
    attending_physician_id: strawberry.ID | None
    linked_to_wechat: bool
    consent: ConsentType | None
    created_at: datetime
    updated_at: datetime
    version: int = strawberry.field(description="Send it back with an update; a stale one gets CONFLICT.")
    _row: strawberry.Private[Patient]
    _pk: strawberry.Private[int]
    # Filled by a list resolver that looked ahead (schema/engine/prefetch.py): no loader round per patient.
    _prefetched: strawberry.Private[dict[str, list[Any]]] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_row(cls, row: Patient) -> PatientType:
        consent = None
        if row.consent_scope:
            consent = ConsentType(scope=row.consent_scope, version=row.consent_version, given_at=row.consent_at)
        return cls(
            id=strawberry.ID(encode_id("Patient", row.id)),  # type: ignore[arg-type]
            name=row.name,
            name_initials=row.name_initials,
            gender=enum_member(Gender, row.gender),
            birth_date=row.birth_date,
            id_type=enum_member(IdType, row.id_type),
            address=row.address,
            emergency_contact_name=row.emergency_contact_name,
            allergies=row.allergies,
            past_history=row.past_history,
            department_id=strawberry.ID(encode_id("Department", row.department_id)) if row.department_id else None,
            attending_physician_id=(
                strawberry.ID(encode_id("User", row.attending_physician_id)) if row.attending_physician_id else None
            ),
            linked_to_wechat=row.wechat_user_id is not None,
            consent=consent,
            created_at=row.created_at,
            updated_at=row.updated_at,
            version=row.version,
            _row=row,
            _pk=row.id,  # type: ignore[arg-type]
        )

    # Sensitive fields: whole for `read`, masked for `read_masked`, absent otherwise (policy).
    @strawberry.field(description="Set when the record was voided (entered in error) or merged into another.")
    def voided(self) -> VoidInfoType | None:
        return VoidInfoType.of(self._row)

    @strawberry.field
    def merged_into_id(self) -> strawberry.ID | None:
        merged = self._row.merged_into_id
        return None if merged is None else strawberry.ID(encode_id("Patient", merged))

    @strawberry.field(description="Identity document number (masked or absent by role).")
    def id_number(self, info: Info) -> str | None:
        return shown(info, self._row.id_number)

    @strawberry.field(description="Phone number (masked as 138****5678 for some roles).")
    def phone(self, info: Info) -> str | None:
        return shown(info, self._row.phone)

    @strawberry.field
    def emergency_contact_phone(self, info: Info) -> str | None:
        return shown(info, self._row.emergency_contact_phone)

    @strawberry.field
    async def attending_physician_name(self, info: Info) -> str | None:
        physician = self._row.attending_physician_id
        return None if physician is None else await info.context.loaders.user_name_by_id.load(physician)

    @strawberry.field
    async def department_name(self, info: Info) -> str | None:
        return await info.context.loaders.department_name(self._row.department_id)

    @strawberry.field(description="Visits, newest last.")
    def visits(self, info: Info) -> list[Annotated[VisitType, strawberry.lazy(_RECORDS)]]:
        return history_of(info, self, "visits")

    @strawberry.field
    def diagnoses(self, info: Info) -> list[Annotated[DiagnosisType, strawberry.lazy(_RECORDS)]]:
        return history_of(info, self, "diagnoses")

    @strawberry.field
    def exam_reports(self, info: Info) -> list[Annotated[ExamReportType, strawberry.lazy(_RECORDS)]]:
        return history_of(info, self, "exam_reports")

    @strawberry.field
    def treatment_plans(self, info: Info) -> list[Annotated[TreatmentPlanType, strawberry.lazy(_RECORDS)]]:
        return history_of(info, self, "treatment_plans")

    @strawberry.field
    def follow_ups(self, info: Info) -> list[Annotated[FollowUpType, strawberry.lazy(_FOLLOW_UPS)]]:
        return history_of(info, self, "follow_ups")


@strawberry.type(name="BindingCode")
class BindingCodeType:
    code: str = strawberry.field(
        description="One-time code for the patient's mini-program; show it as text or a QR code."
    )
    expires_at: datetime


@strawberry.enum(name="BindingCodeState")
class BindingCodeState(enum.Enum):
    ACTIVE = "active"
    USED = "used"
    EXPIRED = "expired"


@strawberry.type(name="IssuedBindingCode", description="A code issued for a patient (the code itself is never kept).")
class IssuedBindingCodeType:
    issued_at: datetime
    expires_at: datetime
    used_at: datetime | None
    _issued_by_id: strawberry.Private[int | None]

    @strawberry.field(description="ACTIVE until redeemed (USED) or past its time or revoked (EXPIRED).")
    def state(self) -> BindingCodeState:
        if self.used_at is not None:
            return BindingCodeState.USED
        return BindingCodeState.ACTIVE if self.expires_at > utcnow() else BindingCodeState.EXPIRED

    @strawberry.field(description="Who issued it.")
    async def issued_by(self, info: Info) -> str | None:
        if self._issued_by_id is None:
            return None
        return await info.context.loaders.user_name_by_id.load(self._issued_by_id)

    @classmethod
    def of(cls, code: patients.IssuedCode) -> IssuedBindingCodeType:
        return cls(
            issued_at=code.issued_at, expires_at=code.expires_at, used_at=code.used_at, _issued_by_id=code.issued_by_id
        )


@strawberry.type(name="RecordAccess")
class RecordAccessType:
    """One opening of the patient's record by someone else."""

    at: datetime
    action: str
    _actor_id: strawberry.Private[int | None]

    @strawberry.field
    async def by(self, info: Info) -> str:
        if self._actor_id is None:
            return "system"
        return await info.context.loaders.user_name_by_id.load(self._actor_id) or "staff"

    @classmethod
    def from_row(cls, row: Event) -> RecordAccessType:
        return cls(at=row.occurred_at, action=row.action, _actor_id=row.actor_id)


# ---- inputs --------------------------------------------------------------------------------------


@strawberry.input
class PatientFilter:
    search: str | None = strawberry.field(
        default=None, description="Part of the name, pinyin initials, or an exact phone or identity number."
    )
    department_id: strawberry.ID | None = None
    physician_id: strawberry.ID | None = None
    diagnosis_code: str | None = strawberry.field(
        default=None, description="ICD-10 code or prefix (K64 matches K64.2)."
    )
    has_overdue_follow_up: bool | None = None
    include_voided: bool = strawberry.field(default=False, description="Also list voided and merged records.")


@strawberry.input
class RegisterPatientInput:
    name: str
    gender: GenderEnum = Gender.UNKNOWN  # type: ignore[valid-type]
    birth_date: date | None = None
    id_type: IdTypeEnum = IdType.RESIDENT_ID  # type: ignore[valid-type]
    id_number: str | None = None
    phone: str | None = None
    address: str | None = None
    emergency_contact_name: str | None = None
    emergency_contact_phone: str | None = None
    allergies: str | None = None
    past_history: str | None = None
    department_id: strawberry.ID | None = None
    consent_scope: str | None = strawberry.field(default=None, description="What the patient consented to.")
    consent_version: str | None = strawberry.field(default=None, description="Version of the consent text shown.")


@strawberry.input
class UpdatePatientInput:
    name: str | None = strawberry.UNSET
    gender: GenderEnum | None = strawberry.UNSET  # type: ignore[valid-type]
    birth_date: date | None = strawberry.UNSET
    id_type: IdTypeEnum | None = strawberry.UNSET  # type: ignore[valid-type]
    id_number: str | None = strawberry.UNSET
    phone: str | None = strawberry.UNSET
    address: str | None = strawberry.UNSET
    emergency_contact_name: str | None = strawberry.UNSET
    emergency_contact_phone: str | None = strawberry.UNSET
    allergies: str | None = strawberry.UNSET
    past_history: str | None = strawberry.UNSET
    department_id: strawberry.ID | None = strawberry.UNSET
    consent_scope: str | None = strawberry.UNSET
    consent_version: str | None = strawberry.UNSET


_INPUT_FIELDS = [
    "name",
    "gender",
    "birth_date",
    "id_type",
    "id_number",
    "phone",
    "address",
    "emergency_contact_name",
    "emergency_contact_phone",
    "allergies",
    "past_history",
    "department_id",
    "consent_scope",
    "consent_version",
]


def _patient_input(source: Any) -> patients.PatientInput:
    data = patients.PatientInput()
    for name in _INPUT_FIELDS:
        value = getattr(source, name)
        if value is strawberry.UNSET:
            continue
        if name == "department_id":
            value = decode_optional_id("Department", value)
        elif hasattr(value, "value"):
            value = value.value
        setattr(data, name, value)
        data.given.add(name)
    return data


# ---- operations ----------------------------------------------------------------------------------


@strawberry.type
class PatientQuery:
    @strawberry.field(
        description=(
            "Patients in your scope. Phone and identity numbers (encrypted at rest) match only exactly, and only as"
            " you see them: freely in clear; where you see them masked, each search is recorded and limited per day"
            " (RATE_LIMITED past it); where hidden, never."
        )
    )
    async def patients(
        self, info: Info, first: int | None = 20, after: str | None = None, filter: PatientFilter | None = None
    ) -> Connection[PatientType]:
        f = filter or PatientFilter()
        filters = patients.PatientFilter(
            search=f.search,
            department_id=decode_optional_id("Department", f.department_id),
            physician_id=decode_optional_id("User", f.physician_id),
            diagnosis_code=f.diagnosis_code,
            has_overdue_follow_up=f.has_overdue_follow_up,
            include_voided=f.include_voided,
        )
        columns = columns_for(info, PATIENT, ("edges", "node"))
        page = await patients.list_patients(info.context, first=first, after=after, filters=filters, columns=columns)
        result = connection(page, PatientType.from_row)
        await prefetch_history(info, [edge.node for edge in result.edges], ("edges", "node"))
        return result

    @strawberry.field(description="One patient with the whole history. Out of your scope: NOT_FOUND.")
    async def patient(self, info: Info, id: strawberry.ID) -> PatientType:
        row = await patients.get_patient(info.context, decode_id("Patient", id), columns=columns_for(info, PATIENT))
        return PatientType.from_row(row)

    @strawberry.field(
        description="A patient's record as an HL7 FHIR R4 Bundle (collection); sensitive values as your role sees them."
    )
    async def patient_fhir_bundle(self, info: Info, id: strawberry.ID) -> JSON:
        row = await patients.get_patient(info.context, decode_id("Patient", id), operation="patientFhirBundle")
        return await patient_bundle(info.context, row)  # type: ignore[return-value]

    @strawberry.field(description="The binding codes issued for a patient, newest first (50 at most).")
    async def patient_binding_codes(self, info: Info, patient_id: strawberry.ID) -> list[IssuedBindingCodeType]:
        codes = await patients.binding_codes(info.context, decode_id("Patient", patient_id))
        return [IssuedBindingCodeType.of(code) for code in codes]

    @strawberry.field(description="Your own patient record (mini-program), once bound with a code from the clinic.")
    async def my_record(self, info: Info) -> PatientType | None:
        row = await patients.my_record(info.context)
        return PatientType.from_row(row) if row else None

    @strawberry.field(description="Who opened your record, newest first.")
    async def my_record_access_log(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> Connection[RecordAccessType]:
        patient_id = await patients.my_patient_id(info.context)
        if patient_id is None:
            from resolvers.data.pagination import Page

            async def zero() -> int:
                return 0

            return connection(Page([], [], False, False, zero), RecordAccessType.from_row)
        page = await patients.access_log(info.context, patient_id, first=first, after=after)
        return connection(page, RecordAccessType.from_row)


@strawberry.type
class PatientMutation:
    @strawberry.mutation(description="Register a patient; a registering physician becomes the attending physician.")
    async def register_patient(
        self,
        info: Info,
        input: RegisterPatientInput,
        allow_duplicate: Annotated[
            bool, strawberry.argument(description="Register even though likely duplicates exist (CONFLICT lists them).")
        ] = False,
    ) -> PatientType:
        row = await patients.register_patient(info.context, _patient_input(input), allow_duplicate=allow_duplicate)
        return PatientType.from_row(row)

    @strawberry.mutation(description="Update a patient; `version` is the one you read (stale: CONFLICT).")
    async def update_patient(
        self, info: Info, id: strawberry.ID, version: int, input: UpdatePatientInput, reason: str | None = None
    ) -> PatientType:
        row = await patients.update_patient(
            info.context, decode_id("Patient", id), version, _patient_input(input), reason=reason
        )
        return PatientType.from_row(row)

    @strawberry.mutation(description="Hand a patient to another physician.")
    async def reassign_patient(
        self, info: Info, id: strawberry.ID, physician_id: strawberry.ID, version: int
    ) -> PatientType:
        row = await patients.reassign_patient(
            info.context, decode_id("Patient", id), decode_id("User", physician_id), version
        )
        return PatientType.from_row(row)

    @strawberry.mutation(description="A one-time code (24 hours) the patient redeems in the mini-program.")
    async def issue_patient_binding_code(self, info: Info, patient_id: strawberry.ID) -> BindingCodeType:
        code = await patients.issue_binding_code(info.context, decode_id("Patient", patient_id))
        return BindingCodeType(code=code.code, expires_at=code.expires_at)

    @strawberry.mutation(
        description="Stop every code issued for the patient and not yet redeemed (a code handed out by mistake or"
        " lost); how many were stopped."
    )
    async def revoke_patient_binding_codes(self, info: Info, patient_id: strawberry.ID) -> int:
        return await patients.revoke_binding_codes(info.context, decode_id("Patient", patient_id))

    @strawberry.mutation(description="Link your mini-program account to your patient record with the clinic's code.")
    async def bind_patient_record(self, info: Info, code: str) -> PatientType:
        return PatientType.from_row(await patients.bind_record(info.context, code))

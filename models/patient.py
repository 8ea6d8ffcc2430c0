"""Patients and the one-time codes that bind a patient record to a mini-program user."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import event
from sqlmodel import Field, SQLModel

from models.base import MYSQL_TABLE_ARGS, EncryptedString, LongText, created_at_field, instant_field, updated_at_field


class Gender(StrEnum):
    MALE = "male"
    FEMALE = "female"
    OTHER = "other"
    UNKNOWN = "unknown"


class IdType(StrEnum):
    RESIDENT_ID = "resident_id"  # mainland resident identity card, checksum verified
    PASSPORT = "passport"
    HK_MACAO_PERMIT = "hk_macao_permit"
    OTHER = "other"


class Patient(SQLModel, table=True):
    __tablename__ = "patient"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, index=True)
    name_initials: str = Field(default="", max_length=40, index=True)
    gender: str = Field(default=Gender.UNKNOWN.value, max_length=16)
    birth_date: date | None = None
    id_type: str = Field(default=IdType.RESIDENT_ID.value, max_length=24)
    # Encrypted at rest; searched only through the keyed hashes beside them.
    id_number: str | None = Field(default=None, sa_type=EncryptedString)
    id_number_hash: str | None = Field(default=None, max_length=64, index=True)
    phone: str | None = Field(default=None, sa_type=EncryptedString)
    phone_hash: str | None = Field(default=None, max_length=64, index=True)
    address: str | None = Field(default=None, sa_type=LongText)
    emergency_contact_name: str | None = Field(default=None, max_length=100)
    emergency_contact_phone: str | None = Field(default=None, sa_type=EncryptedString)
    allergies: str | None = Field(default=None, sa_type=LongText)
    past_history: str | None = Field(default=None, sa_type=LongText)
    department_id: int | None = Field(default=None, foreign_key="department.id", index=True)
    attending_physician_id: int | None = Field(default=None, foreign_key="app_user.id", index=True)
    wechat_user_id: int | None = Field(default=None, foreign_key="app_user.id", unique=True)
    consent_scope: str | None = Field(default=None, max_length=255)
    consent_version: str | None = Field(default=None, max_length=32)
    consent_at: datetime | None = instant_field()
    merged_into_id: int | None = Field(default=None, foreign_key="patient.id")
    voided_at: datetime | None = instant_field()
    voided_by_id: int | None = None
    void_reason: str | None = Field(default=None, max_length=500)
    created_by_id: int | None = Field(default=None, foreign_key="app_user.id")
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()
    version: int = 1


class PatientBindingCode(SQLModel, table=True):
    """A one-time code (stored as a digest) a patient redeems in the mini-program, valid 24 hours."""

    __tablename__ = "patient_binding_code"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    code_hash: str = Field(primary_key=True, max_length=64)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    issued_by_id: int | None = Field(default=None, foreign_key="app_user.id")
    created_at: datetime = created_at_field()
    expires_at: datetime = created_at_field()
    used_at: datetime | None = instant_field()
    used_by_id: int | None = Field(default=None, foreign_key="app_user.id")


def sync_hashes(patient: Patient) -> None:
    """Keep the search hashes in step with the encrypted values."""
    from core.crypto import digest_or_none

    patient.id_number_hash = digest_or_none(patient.id_number)
    patient.phone_hash = digest_or_none(patient.phone)


@event.listens_for(Patient, "before_insert")
@event.listens_for(Patient, "before_update")
def _hash_before_write(_mapper: object, _connection: object, target: Patient) -> None:
    sync_hashes(target)

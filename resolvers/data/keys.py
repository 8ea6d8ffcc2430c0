"""Key rotation for the encrypted patient fields: re-encrypt under the newest key, re-hash."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import col

from core.db import Database
from models.patient import Patient, sync_hashes

BATCH = 500


async def rotate_patient_keys(db: Database) -> int:
    """Reading decrypts with any configured key; writing encrypts with the first. Returns rows done."""
    done = 0
    last_id = 0
    while True:
        async with db.transaction() as session:
            statement = select(Patient).where(col(Patient.id) > last_id).order_by(col(Patient.id)).limit(BATCH)
            rows = (await session.execute(statement)).scalars().all()
            if not rows:
                return done
            for patient in rows:
                sync_hashes(patient)
                # Assigning the (decrypted) values again makes the ORM write them, encrypted afresh.
                patient.id_number = str(patient.id_number) if patient.id_number is not None else None
                patient.phone = str(patient.phone) if patient.phone is not None else None
                patient.emergency_contact_phone = (
                    str(patient.emergency_contact_phone) if patient.emergency_contact_phone is not None else None
                )
                from sqlalchemy.orm.attributes import flag_modified

                for column in ("id_number", "phone", "emergency_contact_phone"):
                    flag_modified(patient, column)
                session.add(patient)
            last_id = rows[-1].id or last_id
            done += len(rows)

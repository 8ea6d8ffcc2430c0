"""Encrypt patient identity and phone numbers at rest, with keyed hashes for exact search

Revision ID: 0003_encryption
Revises: 0002
Create Date: 2026-11-25 22:21:48
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_encryption"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ENCRYPTED = ("id_number", "phone", "emergency_contact_phone")


def upgrade() -> None:
    with op.batch_alter_table("patient", schema=None) as batch_op:
        batch_op.add_column(sa.Column("id_number_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("phone_hash", sa.String(length=64), nullable=True))
        for column, old in (("id_number", 64), ("phone", 32), ("emergency_contact_phone", 32)):
            batch_op.alter_column(
                column, existing_type=sa.String(length=old), type_=sa.String(length=255), existing_nullable=True
            )
        batch_op.drop_index(batch_op.f("ix_patient_id_number"))
        batch_op.drop_index(batch_op.f("ix_patient_phone"))
        batch_op.create_index(batch_op.f("ix_patient_id_number_hash"), ["id_number_hash"], unique=False)
        batch_op.create_index(batch_op.f("ix_patient_phone_hash"), ["phone_hash"], unique=False)
    _encrypt_existing()


def _encrypt_existing() -> None:
    """Rows written before this revision hold plain values: encrypt them and fill the hashes."""
    from core.crypto import cipher

    connection = op.get_bind()
    patient = sa.table(
        "patient",
        sa.column("id", sa.Integer),
        *(sa.column(name, sa.String) for name in _ENCRYPTED),
        sa.column("id_number_hash", sa.String),
        sa.column("phone_hash", sa.String),
    )
    rows = connection.execute(sa.select(patient.c.id, *(patient.c[name] for name in _ENCRYPTED))).all()
    c = cipher()
    for row in rows:
        values = {
            name: (c.encrypt(row[i + 1]) if row[i + 1] is not None else None) for i, name in enumerate(_ENCRYPTED)
        }
        values["id_number_hash"] = c.digest(row[1]) if row[1] is not None else None
        values["phone_hash"] = c.digest(row[2]) if row[2] is not None else None
        connection.execute(sa.update(patient).where(patient.c.id == row[0]).values(**values))


def downgrade() -> None:
    from core.crypto import cipher

    connection = op.get_bind()
    patient = sa.table("patient", sa.column("id", sa.Integer), *(sa.column(name, sa.String) for name in _ENCRYPTED))
    c = cipher()
    for row in connection.execute(sa.select(patient.c.id, *(patient.c[name] for name in _ENCRYPTED))).all():
        values = {
            name: (c.decrypt(row[i + 1]) if row[i + 1] is not None else None) for i, name in enumerate(_ENCRYPTED)
        }
        connection.execute(sa.update(patient).where(patient.c.id == row[0]).values(**values))
    with op.batch_alter_table("patient", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_patient_phone_hash"))
        batch_op.drop_index(batch_op.f("ix_patient_id_number_hash"))
        batch_op.create_index(batch_op.f("ix_patient_id_number"), ["id_number"], unique=False)
        batch_op.create_index(batch_op.f("ix_patient_phone"), ["phone"], unique=False)
        batch_op.drop_column("phone_hash")
        batch_op.drop_column("id_number_hash")

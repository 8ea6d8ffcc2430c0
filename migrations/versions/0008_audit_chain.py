"""tamper-evident audit: event and event_seal refuse UPDATE/DELETE (triggers), the seal chain and its state

Revision ID: 0007_audit_chain
Revises: 0005_persisted
Create Date: 2026-11-26 12:00:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import models.base
from resolvers.audit.chain import create_trigger_statements, drop_trigger_statements

revision: str = "0007_audit_chain"
down_revision: str | None = "0005_persisted"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS_HASH = "0" * 64
TABLE_ARGS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci", "mysql_engine": "InnoDB"}


def upgrade() -> None:
    op.create_table(
        "event_seal",
        sa.Column("event_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("chain_hash", sa.String(length=64), nullable=False),
        sa.Column("sealed_at", models.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
        **TABLE_ARGS,
    )
    with op.batch_alter_table("event_seal", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_event_seal_seq"), ["seq"], unique=True)
    state = op.create_table(
        "audit_seal_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_chain_hash", sa.String(length=64), nullable=False),
        sa.Column("max_sealed_event_id", sa.BigInteger(), nullable=False),
        sa.Column("scan_from_id", sa.BigInteger(), nullable=False),
        sa.Column("gap_seen_at", models.base.UTCDateTime(), nullable=True),
        sa.Column("archived_seq", sa.BigInteger(), nullable=False),
        sa.Column("archived_chain_hash", sa.String(length=64), nullable=False),
        sa.Column("updated_at", models.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        **TABLE_ARGS,
    )
    op.bulk_insert(
        state,
        [
            {
                "id": 1,
                "last_seq": 0,
                "last_chain_hash": GENESIS_HASH,
                "max_sealed_event_id": 0,
                "scan_from_id": 0,
                "gap_seen_at": None,
                "archived_seq": 0,
                "archived_chain_hash": GENESIS_HASH,
                "updated_at": datetime.now(UTC),
            }
        ],
    )
    # MariaDB with binary logging needs SUPER or log_bin_trust_function_creators=1 to create triggers.
    for statement in create_trigger_statements(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    for statement in drop_trigger_statements():
        op.execute(statement)
    op.drop_table("audit_seal_state")
    with op.batch_alter_table("event_seal", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_seal_seq"))
    op.drop_table("event_seal")

"""one head: engagement and the audit chain

Revision ID: 0009_one_head
Revises: 0006_engagement, 0007_audit_chain
Create Date: 2026-12-01 07:07:09.178757
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.base


revision: str = '0009_one_head'
down_revision: tuple[str, str] = ("0006_engagement", "0007_audit_chain")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

"""text columns hold any request: MEDIUMTEXT on MySQL (TEXT holds 65,535 bytes there, not characters)

Revision ID: 0010_long_text
Revises: 0009_one_head
Create Date: 2026-12-01 07:44:35
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0010_long_text"
down_revision: str | None = "0009_one_head"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column, nullable): every free-text column
COLUMNS = [
    ("article", "body_markdown", False),
    ("article", "body_html", False),
    ("comment", "body", False),
    ("exam_report", "findings", True),
    ("exam_report", "conclusion", True),
    ("follow_up", "outcome_text", True),
    ("follow_up", "response_text", True),
    ("learning_task", "description", False),
    ("message", "body", False),
    ("patient", "address", True),
    ("patient", "allergies", True),
    ("patient", "past_history", True),
    ("persisted_document", "document", False),
    ("treatment_plan", "description", False),
    ("video", "description", False),
    ("visit", "chief_complaint", True),
    ("visit", "present_illness", True),
    ("visit", "examination_findings", True),
    ("visit", "notes", True),
]


def upgrade() -> None:
    if op.get_bind().dialect.name != "mysql":
        return  # SQLite's TEXT has no such limit: nothing to change
    for table, column, nullable in COLUMNS:
        op.alter_column(
            table,
            column,
            existing_type=mysql.TEXT(),
            type_=sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql"),
            existing_nullable=nullable,
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "mysql":
        return
    for table, column, nullable in COLUMNS:
        op.alter_column(
            table,
            column,
            existing_type=mysql.MEDIUMTEXT(),
            type_=mysql.TEXT(),
            existing_nullable=nullable,
        )

"""The append-only event tables: triggers refusing UPDATE and DELETE, and `maintenance()`, the only way around them.

The `event` and `event_seal` tables refuse UPDATE and DELETE in the database itself (triggers, created by
migration 0007_audit_chain). `maintenance()` (the operator's archive command, the test reset) lifts them for one
transaction and logs what it does.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import Database
from resolvers.audit.records import AuditChainError

log = logging.getLogger(__name__)

APPEND_ONLY_TABLES = ("event", "event_seal")


def _trigger_name(table: str, operation: str) -> str:
    return f"{table}_append_only_{operation.lower()}"


def create_trigger_statements(dialect: str) -> list[str]:
    """CREATE TRIGGER statements refusing UPDATE and DELETE on the append-only tables (used by the migration)."""
    statements = []
    for table in APPEND_ONLY_TABLES:
        for operation in ("UPDATE", "DELETE"):
            name = _trigger_name(table, operation)
            if dialect == "sqlite":
                body = f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            elif dialect in ("mysql", "mariadb"):
                body = f"FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '{table} is append-only'"
            else:
                raise AuditChainError(f"no append-only triggers for the {dialect} dialect")
            statements.append(f"CREATE TRIGGER IF NOT EXISTS {name} BEFORE {operation} ON {table} {body}")
    return statements


def drop_trigger_statements() -> list[str]:
    return [
        f"DROP TRIGGER IF EXISTS {_trigger_name(table, operation)}"
        for table in APPEND_ONLY_TABLES
        for operation in ("UPDATE", "DELETE")
    ]


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def suspend_append_only(session: AsyncSession, *, reason: str = "maintenance") -> None:
    """Drop the append-only triggers. Maintenance only (archive, test reset); always paired with
    `restore_append_only`. On MariaDB this DDL commits the session's open transaction."""
    log.warning("audit maintenance: append-only triggers on %s suspended (%s)", ", ".join(APPEND_ONLY_TABLES), reason)
    for statement in drop_trigger_statements():
        await session.execute(text(statement))


async def restore_append_only(session: AsyncSession) -> None:
    for statement in create_trigger_statements(_dialect(session)):
        await session.execute(text(statement))
    log.warning("audit maintenance: append-only triggers restored")


@asynccontextmanager
async def maintenance(db: Database, *, reason: str) -> AsyncIterator[AsyncSession]:
    """A transaction in which the append-only tables accept UPDATE and DELETE; the triggers come back after it,
    whatever happens. On SQLite it is one transaction (the triggers are never missing for anyone else); on
    MariaDB trigger DDL commits, so the triggers are dropped just before the transaction and restored after."""
    if db.dialect == "sqlite":
        async with db.transaction() as session:
            await suspend_append_only(session, reason=reason)
            yield session
            await restore_append_only(session)
        return
    async with db.transaction() as session:
        await suspend_append_only(session, reason=reason)
    try:
        async with db.transaction() as session:
            yield session
    finally:
        async with db.transaction() as session:
            await restore_append_only(session)

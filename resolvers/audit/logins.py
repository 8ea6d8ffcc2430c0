"""The login log: every attempt to log in, successful or not (read back by `loginLogs`, resolvers/audit/log.py),
and the lockout it feeds.

A password attempt is counted before the password is checked (`claim_attempt`): its entry is written,
"pending", in a transaction that first takes the account's gate row for that address (an upsert: a row lock
on MariaDB, the write lock on SQLite) and reads the lockout inside it. Parallel attempts therefore count one
after another, and no more than LOGIN_MAX_FAILURES of them reach the password check however many arrive at
once. The entry is then settled with the outcome (`settle`; a successful login settles it in the write unit
that opens the session). Attempts with no password to check (a WeChat code) are recorded afterwards
(`record_failure`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from core.settings import Settings
from core.timeutil import utcnow
from models.auth import LoginGate, LoginLog

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from resolvers.audit.unit import WriteUnit
    from resolvers.data.context import Context

PENDING = "pending"
LOCKED = "locked"


@dataclass
class Attempt:
    """A counted attempt: its login-log entry, and the seconds the caller must wait (0: go on and check)."""

    entry_id: int
    wait: int


def _take_gate(dialect: str, username: str, ip: str) -> Any:
    now = utcnow()
    table: Any = LoginGate.__table__  # type: ignore[attr-defined]
    values = {"username": username, "ip": ip, "attempts": 1, "updated_at": now}
    if dialect == "sqlite":
        lite = sqlite_insert(table).values(values)
        return lite.on_conflict_do_update(
            index_elements=["username", "ip"], set_={"attempts": table.c.attempts + 1, "updated_at": now}
        )
    return mysql_insert(table).values(values).on_duplicate_key_update(attempts=table.c.attempts + 1, updated_at=now)


async def _locked_for(session: AsyncSession, settings: Settings, username: str, ip: str) -> int:
    """Seconds until this address may try this account again (0: not locked): LOGIN_MAX_FAILURES attempts
    that did not succeed (pending ones included) within the window, the newest less than the lockout ago."""
    now = utcnow()
    limit = settings.login_max_failures
    horizon = now - timedelta(minutes=settings.login_failure_window_minutes + settings.login_lockout_minutes)
    rows = (
        await session.execute(
            select(LoginLog.success, LoginLog.created_at)
            .where(
                LoginLog.username == username,
                LoginLog.ip == ip,
                LoginLog.reason != LOCKED,
                LoginLog.created_at >= horizon,
            )
            .order_by(LoginLog.created_at.desc(), LoginLog.id.desc())  # type: ignore[union-attr]
            .limit(limit)
        )
    ).all()
    if len(rows) < limit or any(success for success, _ in rows):
        return 0
    newest, oldest = rows[0][1], rows[-1][1]
    if newest - oldest > timedelta(minutes=settings.login_failure_window_minutes):
        return 0
    until = newest + timedelta(minutes=settings.login_lockout_minutes)
    return max(0, int((until - now).total_seconds()) + 1) if until > now else 0


async def claim_attempt(ctx: Context, *, username: str, method: str = "password") -> Attempt:
    """Count an attempt on `username` from the caller's address before its password is checked: locked ones
    are entered as "locked" (and not checked), the others as "pending" until `settle`."""
    name = username[:128]
    async with ctx.db.transaction() as session:
        # First statement of the transaction: the gate's row lock is held before anything is read.
        await session.execute(_take_gate(ctx.db.dialect, name, ctx.ip[:64]))
        wait = await _locked_for(session, ctx.settings, name, ctx.ip)
        row = entry(ctx, username=name, user_id=None, success=False, reason=LOCKED if wait else PENDING, method=method)
        session.add(row)
        await session.flush()
        return Attempt(entry_id=int(row.id or 0), wait=wait)


def _settled(attempt: Attempt, *, user_id: int | None, success: bool, reason: str) -> Any:
    return (
        update(LoginLog)
        .where(LoginLog.id == attempt.entry_id)  # type: ignore[arg-type]
        .values(user_id=user_id, success=success, reason=reason)
    )


async def settle(ctx: Context, attempt: Attempt, *, user_id: int | None, success: bool, reason: str) -> None:
    """The attempt's outcome, committed at once (whatever the caller then answers)."""
    async with ctx.db.transaction() as session:
        await session.execute(_settled(attempt, user_id=user_id, success=success, reason=reason))


async def settle_in(unit: WriteUnit, attempt: Attempt, *, user_id: int | None, reason: str = "ok") -> None:
    """A successful attempt, settled in the write unit that acts on it (it commits with it, or not at all)."""
    from policies.enforce import mark

    await unit.session.execute(mark(_settled(attempt, user_id=user_id, success=True, reason=reason), "unscoped"))


def entry(
    ctx: Context, *, username: str, user_id: int | None, success: bool, reason: str, method: str = "password"
) -> LoginLog:
    return LoginLog(
        username=username[:128],
        user_id=user_id,
        method=method,
        success=success,
        reason=reason,
        ip=ctx.ip,
        user_agent=ctx.user_agent[:255],
    )


async def record_failure(
    ctx: Context, *, username: str, user_id: int | None, reason: str, method: str = "password"
) -> None:
    """A failed attempt, committed at once (whatever the caller then answers)."""
    async with ctx.db.transaction() as session:
        session.add(entry(ctx, username=username, user_id=user_id, success=False, reason=reason, method=method))

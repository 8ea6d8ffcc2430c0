"""The login log: every attempt to log in, successful or not (read back by `loginLogs`, resolvers/audit/log.py).

A successful login adds its entry to the write unit that opens the session (`entry`). A failed attempt has no
write to join: like a refused write's event (resolvers/audit/unit.py), its entry is kept in a transaction of
its own (`record_failure`), and the lockout counts it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from models.auth import LoginLog

if TYPE_CHECKING:
    from resolvers.data.context import Context


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

"""The audit chain's periodic steps as scheduled jobs call them: the one place that knows where they live.

The audit chain (resolvers/audit/) seals events no write has sealed yet and archives old ones; the jobs in
resolvers/operations/system.py call these two functions only, so when the sealer moves, this adapter is all that
changes. Sealing goes through the app's own sealer (in its process, off the event loop) when there is one.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from resolvers.audit.chain import AuditChainError, Sealer, archive_events, seal_pending

if TYPE_CHECKING:
    from resolvers.data.context import Context

__all__ = ["AuditChainError", "archive_before", "seal_unsealed"]


async def seal_unsealed(ctx: Context, *, batch_size: int | None = None) -> int:
    """Link the events no write has sealed yet (reads' events) into the chain; how many were sealed."""
    sealer: Sealer | None = ctx.services.sealer
    if sealer is not None:
        return await sealer.seal(batch_size=batch_size)
    return await seal_pending(ctx.db, batch_size=batch_size)


async def archive_before(ctx: Context, *, before: datetime, out: Path) -> int:
    """Move the sealed events older than `before` to the JSON Lines file `out`; how many moved."""
    return (await archive_events(ctx.db, before=before, out=out)).count

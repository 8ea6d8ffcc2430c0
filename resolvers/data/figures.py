"""Request figures: counted in memory on the request path, written per minute in the background.

Each GraphQL operation adds one request to three groupings (its operation, the caller's roles, and for staff
the staff member), under its error code ('' when it succeeded), with its latency in fixed buckets. Nothing
is written on the request path: every FIGURES_FLUSH_SECONDS (and on shutdown, and before serviceStats reads)
the buffer is added to the `request_minute` rows of this instance (one multi-row upsert: `INSERT ... ON
DUPLICATE KEY UPDATE` / `ON CONFLICT DO UPDATE`, counters added in the database). Only this instance writes
its rows, so concurrent flushes of several instances never meet; the figures of all instances add up when read.
A flush that fails keeps its figures for the next one.

Figures are telemetry, like a session's last-seen mark: not write units (auditing every flush would fill the
audit trail with itself). Operation names are bounded (OPERATION_NAMES per minute, the rest count as `other`).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from bisect import bisect_left
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from core.background import stop_task
from core.db import Database
from core.timeutil import utcnow
from models.operations import BUCKET_COLUMNS, LATENCY_BUCKETS_MS, FigureKind, RequestMinute
from policies.access import Principal
from policies.roles import is_staff

log = logging.getLogger("followup.figures")

OTHER = "other"
OPERATION_NAMES = 200  # distinct operation names kept per minute; beyond them: `other`
METRIC_NAMES = 1000  # distinct operation names /metrics labels since start; beyond them: `other`
BUFFERED_KEYS = 100_000  # figures kept while the database cannot take them; the oldest minutes go first
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_KEY = ("minute", "instance", "kind", "key", "code")
_COUNTERS = ("requests", "duration_ms", *BUCKET_COLUMNS)
Key = tuple[datetime, str, str, int | None, str]  # minute, kind, key, user id, code


def operation_label(name: str | None) -> str:
    return name if name is not None and _NAME.match(name) else OTHER


def role_label(principal: Principal) -> str:
    if not principal.is_authenticated:
        return "anonymous"
    return "+".join(sorted(principal.role_keys)) or "authenticated"


class RequestFigures:
    def __init__(self, db: Database, *, instance: str, flush_seconds: float) -> None:
        self.db = db
        self.instance = instance[:32]
        self.flush_seconds = flush_seconds
        self._buffer: dict[Key, list[int]] = {}
        self._names: dict[datetime, set[str]] = {}
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        # Since start, for /metrics (Prometheus keeps its own per-process counters): (operation, code) -> count,
        # operation -> latency bucket counts.
        self.totals: dict[tuple[str, str], int] = {}
        self.latency: dict[str, list[int]] = {}
        self.latency_sum: dict[str, float] = {}
        self._minute_key = -1
        self._minute_value = datetime.fromtimestamp(0, UTC)
        self._roles: dict[Any, str] = {}  # role keys (None: anonymous) -> role label
        self._staff_keys: dict[Any, bool] = {}

    def _staff(self, role_keys: Any) -> bool:
        staff = self._staff_keys.get(role_keys)
        if staff is None:
            if len(self._staff_keys) >= METRIC_NAMES:
                self._staff_keys.clear()
            staff = self._staff_keys[role_keys] = is_staff(role_keys)
        return staff

    # ---- the request path: memory only ----------------------------------------------------------

    def _minute(self) -> datetime:
        """The current minute (UTC), made once per minute: a request's clock read is one `time.time()`."""
        epoch_minute = int(time.time()) // 60
        if epoch_minute != self._minute_key:
            self._minute_key = epoch_minute
            self._minute_value = datetime.fromtimestamp(epoch_minute * 60, UTC)
        return self._minute_value

    def _role(self, principal: Principal) -> str:
        keys = principal.role_keys if principal.is_authenticated else None
        label = self._roles.get(keys)
        if label is None:
            if len(self._roles) >= METRIC_NAMES:
                self._roles.clear()
            label = self._roles[keys] = role_label(principal)[:100]
        return label

    def record(self, *, operation: str, principal: Principal, code: str, seconds: float) -> None:
        minute = self._minute()
        names = self._names.get(minute)
        if names is None:
            names = self._names[minute] = set()
        if operation != OTHER and operation not in names:
            if len(names) >= OPERATION_NAMES:
                operation = OTHER
            else:
                names.add(operation)
        milliseconds = max(0, int(seconds * 1000))
        bucket = bisect_left(LATENCY_BUCKETS_MS, milliseconds)
        code = code[:32]
        self._add((minute, FigureKind.OPERATION.value, operation, None, code), milliseconds, bucket)
        self._add((minute, FigureKind.ROLE.value, self._role(principal), None, code), milliseconds, bucket)
        if principal.user_id is not None and self._staff(principal.role_keys):
            user = principal.user_id
            self._add((minute, FigureKind.STAFF.value, str(user), user, code), milliseconds, bucket)
        label = operation if operation in self.latency or len(self.latency) < METRIC_NAMES else OTHER
        self.totals[(label, code)] = self.totals.get((label, code), 0) + 1
        counts = self.latency.setdefault(label, [0] * len(BUCKET_COLUMNS))
        counts[bucket] += 1
        self.latency_sum[label] = self.latency_sum.get(label, 0.0) + seconds

    def _add(self, key: Key, milliseconds: int, bucket: int) -> None:
        counters = self._buffer.get(key)
        if counters is None:
            counters = self._buffer[key] = [0] * (len(_COUNTERS) + 1)  # + max_ms at the end
        counters[0] += 1
        counters[1] += milliseconds
        counters[2 + bucket] += 1
        counters[-1] = max(counters[-1], milliseconds)

    # ---- in the background ----------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="request-figures")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)
        await self.flush()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_seconds)
            await self.flush()

    async def flush(self) -> int:
        """Write what is buffered (never raises: a failed write keeps its figures for the next flush)."""
        async with self._lock:
            taken, self._buffer = self._buffer, {}
            current = utcnow().replace(second=0, microsecond=0)
            self._names = {minute: names for minute, names in self._names.items() if minute >= current}
            if not taken:
                return 0
            try:
                await self._write(taken.items())
            except Exception as error:  # the statement's text, without values, is all the driver would add
                log.warning("request figures not written (kept for the next flush): %s", type(error).__name__)
                for key, counters in taken.items():
                    mine = self._buffer.setdefault(key, [0] * len(counters))
                    for index, value in enumerate(counters[:-1]):
                        mine[index] += value
                    mine[-1] = max(mine[-1], counters[-1])
                if len(self._buffer) > BUFFERED_KEYS:  # a long outage: keep the newest figures, bounded
                    newest = sorted(self._buffer, key=lambda key: key[0], reverse=True)[:BUFFERED_KEYS]
                    self._buffer = {key: self._buffer[key] for key in newest}
                    log.warning("request figures: the oldest minutes dropped while the database is away")
                return 0
            return len(taken)

    async def _write(self, items: Iterable[tuple[Key, list[int]]]) -> None:
        rows: list[dict[str, Any]] = []
        for (minute, kind, key, user_id, code), counters in items:
            row: dict[str, Any] = {
                "minute": minute,
                "instance": self.instance,
                "kind": kind,
                "key": key,
                "user_id": user_id,
                "code": code,
                "max_ms": counters[-1],
            }
            row.update(zip(_COUNTERS, counters[:-1], strict=True))
            rows.append(row)
        table = RequestMinute.__table__  # type: ignore[attr-defined]
        async with self.db.transaction() as session:
            for start in range(0, len(rows), 500):
                await session.execute(_upsert(self.db.dialect, table, rows[start : start + 500]))


def _upsert(dialect: str, table: Any, rows: list[dict[str, Any]]) -> Any:
    """Add the rows' counters to those already stored under the same key (and keep the larger maximum)."""
    if dialect == "sqlite":
        lite = sqlite_insert(table).values(rows)
        new = lite.excluded
        added = {name: table.c[name] + new[name] for name in _COUNTERS}
        added["max_ms"] = _larger(table.c.max_ms, new.max_ms)
        return lite.on_conflict_do_update(index_elements=list(_KEY), set_=added)
    mysql = mysql_insert(table).values(rows)
    inserted = mysql.inserted
    updates = {name: table.c[name] + inserted[name] for name in _COUNTERS}
    updates["max_ms"] = _larger(table.c.max_ms, inserted.max_ms)
    return mysql.on_duplicate_key_update(updates)


def _larger(current: Any, new: Any) -> Any:
    from sqlalchemy import case

    return case((new > current, new), else_=current)

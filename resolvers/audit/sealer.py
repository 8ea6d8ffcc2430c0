"""The background sealer: links new events into the chain in a process of its own, so no request waits for it.

Sealing costs tens of microseconds of CPU per event (reading the row, its canonical JSON, two sha256, the seal
row): at the read rate one instance serves, ~10,000 events per 2 s pass. Run on the server's event loop, each
1,000-event step held the loop for tens of milliseconds and every request waited behind it (issue 23: p99 40x).
So each pass runs `seal_pending` in a child process (one worker, spawned at start-up, with its own event
loop and connections): the server's loop only sends a call and awaits its answer. The child seals in short locked
steps with the content hashed before the lock (resolvers/audit/seal.py), so the database's write lock (SQLite)
is held for a few milliseconds per step, not for the hashing; on SQLite each step is followed by a pause as long
as its hold, in which the requests' read events get the lock.

Woken when a write commits, and every `interval` seconds for the events of reads; two passes start at least
WRITE_PASS_GAP seconds apart, so a stream of writes shares passes (a pass costs milliseconds of CPU whatever it
seals: at one pass per write the sealer took 9.8 of 17.3 ms CPU per write in bench/results/workloads.md's Q5) and
a write's event is sealed within that gap plus a pass. Several instances may run one each: the lock on the seal
state row orders them. With `interval` 0 there is no task and no child: each write
seals inline before its response (the tests use this, for determinism).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event

from core.background import stop_task
from core.db import Database
from resolvers.audit.seal import longer_step, needs_sealing, seal_pending, step_events

log = logging.getLogger(__name__)

WRITE_PASS_GAP = 0.25  # seconds from the start of a pass to the start of the next one woken by a write


def next_step(step: int, base: int, pass_seconds: float, interval: float) -> int:
    """Events per locked step for the next pass. Each step costs milliseconds whatever it seals (two sessions, the
    state row read and written), so short steps seal fewer events per second of CPU: a pass that lasted longer
    than the interval is falling behind (reads write events faster than it seals; within it, seal_pending's
    `grow_after` has made its steps longer already), and the next pass starts with steps twice as long, up to
    MAX_STEP_EVENTS; one that lasted under half the interval goes back towards `base`, whose short holds of
    SQLite's write lock are what requests wait for."""
    if pass_seconds > interval:
        return longer_step(step)
    if pass_seconds < interval / 2:
        return max(base, step // 2)
    return step


# ---- the child process ---------------------------------------------------------------------------

_child_loop: asyncio.AbstractEventLoop | None = None
_child_dbs: dict[str, Database] = {}


async def _seal_if_needed(
    db: Database, batch_size: int | None, max_batches: int | None, full: bool, grow_after: float | None = None
) -> int:
    if not full and not await needs_sealing(db):
        return 0
    return await seal_pending(db, batch_size=batch_size, max_batches=max_batches, full=full, grow_after=grow_after)


def _commit_without_fsync(dbapi_connection: Any, _record: Any) -> None:
    """SQLite: the sealer's commits skip the fsync (WAL with synchronous=NORMAL), which held the database's write
    lock for milliseconds per step. The database stays consistent; a power cut can lose the last seal steps (the
    state row with them), and the next pass seals the same events again into the same links. The server's own
    connections, which write the events, are left as they are."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def seal_in_child(
    url: str, batch_size: int | None, max_batches: int | None, full: bool, grow_after: float | None = None
) -> int:
    """One sealing pass, run in the sealer's process (its own event loop and connections, kept between passes)."""
    warm_child(url)
    assert _child_loop is not None
    return _child_loop.run_until_complete(_seal_if_needed(_child_dbs[url], batch_size, max_batches, full, grow_after))


def warm_child(url: str) -> None:
    """Import what sealing needs and open the child's connections, before any pass asks for them."""
    global _child_loop
    if _child_loop is None:
        _child_loop = asyncio.new_event_loop()
    if url not in _child_dbs:
        _child_dbs[url] = db = Database(url, pool_size=2)
        if db.dialect == "sqlite":
            for engine in db.engines:
                event.listen(engine.sync_engine, "connect", _commit_without_fsync)


def _child_started() -> None:
    """The child stops when its server tells it (`Sealer.stop`, which seals what is left first), not when a SIGTERM
    or Ctrl-C reaches the whole process group (systemd, a container runtime, a terminal); and it ends when its server
    dies without telling it (SIGKILL, the kernel's out-of-memory killer): the pool's pipes, both of whose ends the
    child holds, never report that, and an orphaned child kept its database connections open (make cluster-test
    left one after each instance it killed)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), name="sealer-parent-watch", daemon=True).start()


def _exit_with(sentinel: int) -> None:
    """Wait for the server's process to end, then end this one at once: a step in progress is rolled back by the
    database when the connection drops, and the next sealer (a new instance's) seals those events again."""
    multiprocessing.connection.wait([sentinel])
    log.warning("the server process ended without stopping its audit sealer; the sealer exits")
    os._exit(1)


def close_child() -> None:
    """Give back the child's connections before it exits (aiosqlite's threads would keep it alive)."""
    if _child_loop is None:
        return
    for db in _child_dbs.values():
        _child_loop.run_until_complete(db.dispose())
    _child_dbs.clear()


# ---- the server's side ---------------------------------------------------------------------------


@dataclass
class SealerFigures:
    """What the sealer did since start: for /metrics-style reports, the benchmarks and the tests."""

    passes: int = 0
    sealed: int = 0
    failures: int = 0
    longest_pass_seconds: float = 0.0
    recent: list[int] = field(default_factory=list)  # events sealed by the last few passes
    step_events: int = 0  # events per locked step now (next_step)


class Sealer:
    def __init__(self, db: Database, *, interval: float, batch_size: int | None = None) -> None:
        self.db = db
        self.interval = interval
        self.batch_size = batch_size or step_events(db.dialect)  # events per locked step, when keeping up
        self.figures = SealerFigures(step_events=self.batch_size)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._pool: ProcessPoolExecutor | None = None

    @property
    def inline(self) -> bool:
        return self.interval <= 0

    async def start(self) -> None:
        if not self.inline and self._task is None:
            # the child is spawned now, from a thread: starting a process holds its caller for milliseconds; it
            # opens its connections at once, so the first pass (maybe the last, at shutdown) finds it ready
            await asyncio.to_thread(self._executor().submit, warm_child, self.db.url)
            self._task = asyncio.create_task(self._run(), name="audit-sealer")

    async def after_write(self) -> None:
        """A write unit committed: wake the background pass, or (inline) seal one batch before answering."""
        if self.inline:
            await self.seal_now(max_batches=1)  # a write never waits for a long backlog of reads
        else:
            self._wake.set()

    async def seal(self, *, batch_size: int | None = None, max_batches: int | None = None, full: bool = False) -> int:
        """Seal what is pending: in the sealer's process (here, on this loop, when inline); how many were sealed.
        Raises what sealing raised (the `audit.seal_pending` job records it)."""
        size = batch_size or self.figures.step_events
        if self.inline:
            return await _seal_if_needed(self.db, size, max_batches, full)
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            sealed = await loop.run_in_executor(
                self._executor(), seal_in_child, self.db.url, size, max_batches, full, self.interval
            )
        except BrokenProcessPool:
            self._pool = None  # the child died (killed, out of memory): the next pass starts another
            raise
        figures = self.figures
        figures.passes += 1
        figures.sealed += sealed
        figures.longest_pass_seconds = max(figures.longest_pass_seconds, loop.time() - started)
        figures.recent = [*figures.recent[-9:], sealed]
        return sealed

    async def seal_now(self, *, max_batches: int | None = None) -> int:
        """Seal what is pending; never raises (the events stay unsealed until the next pass)."""
        try:
            return await self.seal(max_batches=max_batches)
        except Exception:
            self.figures.failures += 1
            log.exception("audit sealing failed; the events stay unsealed until the next pass")
        return 0

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn, not fork: the server has threads (aiosqlite, the driver's) that a fork would copy half-way
            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=_child_started
            )
        return self._pool

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        gap = min(WRITE_PASS_GAP, self.interval)
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
            self._wake.clear()
            started = loop.time()
            await self.seal_now()
            figures = self.figures
            figures.step_events = next_step(figures.step_events, self.batch_size, loop.time() - started, self.interval)
            # the writes that commit meanwhile set the wake again: their pass starts after the gap, together
            await asyncio.sleep(max(0.0, started + gap - loop.time()))

    async def stop(self) -> None:
        """Stop the task, then seal what the last requests left (shutdown) and end the child."""
        task, self._task = self._task, None
        if task is not None:
            await stop_task(task)
            await self.seal_now()
        pool, self._pool = self._pool, None
        if pool is not None:
            with contextlib.suppress(Exception):
                await asyncio.get_running_loop().run_in_executor(pool, close_child)
            await asyncio.to_thread(pool.shutdown)

"""Engine and session factory for SQLite (aiosqlite) and MySQL/MariaDB (aiomysql or asyncmy)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from sqlalchemy import event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import QueuePool
from sqlalchemy.util import greenlet_spawn

from core.deadline import committing

log = logging.getLogger(__name__)
T = TypeVar("T")

# MariaDB/MySQL errors that mean another writer won: a deadlock (a Galera certification failure is reported as
# one, at COMMIT or at any statement of a transaction the cluster aborted) and a lock wait timeout.
LOST_RACE_CODES = frozenset({1213, 1205})


CONNECT_TIMEOUT_SECONDS = 5

# Codes meaning the database cannot be reached, or this node cannot serve now: can't connect (2002, 2003), gone
# away or lost during a query (2006, 2013, 2055), a Galera node outside the primary component (1047 WSREP has not
# yet prepared node), shutting down (1053), killed (1927), an idle connection closed by the server (4031).
UNREACHABLE_CODES = frozenset({2002, 2003, 2006, 2013, 2055, 1047, 1053, 1927, 4031})


def _raw_code(orig: BaseException) -> int | None:
    args = getattr(orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def driver_code(error: BaseException) -> int | None:
    """The numeric code a MySQL/MariaDB driver put first in its error (aiomysql, asyncmy, pymysql alike), or
    None (SQLite, or not a driver error)."""
    if not isinstance(error, exc.DBAPIError) or error.orig is None:
        return None
    return _raw_code(error.orig)


def violates_unique(error: BaseException, constraint: str, column: str) -> bool:
    """An IntegrityError raised by that unique key: MariaDB/MySQL names the key (`for key 'uq_...'`, with the table
    in front on newer servers), SQLite names the column (`UNIQUE constraint failed: table.column`). Compared on
    those names only, never on the values the message also holds."""
    if not isinstance(error, exc.IntegrityError) or error.orig is None:
        return False
    args: tuple[Any, ...] = tuple(getattr(error.orig, "args", ()))
    message = args[1] if len(args) > 1 and isinstance(args[1], str) else str(error.orig)
    if driver_code(error) == 1062:  # ER_DUP_ENTRY: "Duplicate entry '<values>' for key '[<table>.]<key>'"
        key = message.rpartition(" for key ")[2].strip().strip("'\"")
        return key == constraint or key.endswith(f".{constraint}")
    return "UNIQUE constraint failed" in message and f".{column}" in message


def unreachable(error: BaseException) -> bool:
    """The database or Redis could not be reached (or the pool had no connection free in time): nothing of the
    request ran to its end on it; the client may retry (UNAVAILABLE, HTTP 503)."""
    if isinstance(error, exc.TimeoutError | exc.DisconnectionError | ConnectionError | TimeoutError):
        return True
    if isinstance(error, exc.DBAPIError):
        return error.connection_invalidated or driver_code(error) in UNREACHABLE_CODES
    kind = type(error)
    return kind.__module__.startswith("redis") and kind.__name__ in _REDIS_UNREACHABLE


_REDIS_UNREACHABLE = frozenset({"ConnectionError", "TimeoutError", "BusyLoadingError"})


def lost_race(error: BaseException) -> bool:
    """A database error that means another writer won (Galera certification, a deadlock, a lock wait): the whole
    transaction was rolled back and may be run again from its start."""
    return driver_code(error) in LOST_RACE_CODES


FAILOVER_PARAMETER = "failover"
HOST_DOWN_SECONDS = 5.0


class Failover:
    """Connects to the URL's host or, when it cannot serve, to the next of its `failover` hosts, in order.

    `DATABASE_URL=mysql+aiomysql://u@node1:3306/db?failover=node2:3306,node3:3306`: the instance talks to
    node1 (its own, nearest node) and, while node1 is down or outside the Galera primary component, to node2 or
    node3. A host that failed is skipped for `HOST_DOWN_SECONDS` (a black-holed host would cost a connect
    timeout per new connection); when every host failed recently, all are tried again. A connection made to a
    Galera node checks that the node is ready (`wsrep_ready`) before the pool hands it out. Connections to a
    fallback host stay until they are recycled or break; new ones try the first host again once it is back.
    Handled in SQLAlchemy's `do_connect` hook, so the pool, its ping and its invalidation work as for one host.
    """

    def __init__(self, hosts: list[tuple[str, int]]) -> None:
        self.hosts = hosts
        self._down_until: dict[tuple[str, int], float] = {}

    def __call__(self, dialect: Any, _record: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
        now = time.monotonic()
        candidates = [host for host in self.hosts if self._down_until.get(host, 0.0) <= now] or self.hosts
        failure: BaseException | None = None
        for host, port in candidates:
            try:
                connection = dialect.connect(*cargs, **{**cparams, "host": host, "port": port})
            except Exception as error:
                if not (isinstance(error, OSError) or _raw_code(error) in UNREACHABLE_CODES):
                    raise  # wrong password, unknown database: the same on every node
                self._down_until[(host, port)] = now + HOST_DOWN_SECONDS
                failure = error
                continue
            if not _node_ready(connection):
                connection.close()
                self._down_until[(host, port)] = now + HOST_DOWN_SECONDS
                failure = ConnectionError(f"database node {host}:{port} is not ready (wsrep_ready OFF)")
                continue
            self._down_until.pop((host, port), None)
            return connection
        assert failure is not None
        raise failure


def _node_ready(connection: Any) -> bool:
    """A Galera node outside the primary component accepts connections but refuses queries (1047)."""
    cursor = connection.cursor()
    try:
        cursor.execute("SHOW VARIABLES LIKE 'wsrep_on'")
        row = cursor.fetchone()
        if row is None or str(row[1]).upper() != "ON":
            return True  # not a Galera node
        cursor.execute("SHOW STATUS LIKE 'wsrep_ready'")
        row = cursor.fetchone()
    finally:
        cursor.close()
    return row is not None and str(row[1]).upper() == "ON"


def split_failover(url: str) -> tuple[str, list[tuple[str, int]]]:
    """The URL without its `failover` parameter, and every host to try in order (the URL's own first)."""
    parsed = make_url(url)
    extra = parsed.query.get(FAILOVER_PARAMETER)
    if not extra:
        return url, []
    parts = ",".join([extra] if isinstance(extra, str) else extra).split(",")
    hosts = [(parsed.host or "127.0.0.1", parsed.port or 3306)]
    for part in filter(None, (p.strip() for p in parts)):
        host, _, port = part.rpartition(":") if ":" in part else (part, "", "3306")
        hosts.append((host.strip("[]"), int(port)))
    return parsed.difference_update_query([FAILOVER_PARAMETER]).render_as_string(hide_password=False), hosts


def normalise_url(url: str) -> str:
    """Force utf8mb4 on MySQL so Chinese names round-trip."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "mysql":
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    return parsed.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_no_autocheckpoint(dbapi_connection: Any, _record: Any) -> None:
    """The request pool's connections: their commits run no WAL checkpoint (WriteTurns runs them beside)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


def _sqlite_no_busy_handler(dbapi_connection: Any, _record: Any) -> None:
    """The write turns' connections: a write that finds the lock taken fails at once (WriteTurns waits itself)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=0")
    cursor.close()


def _ping_when_idle(engine: AsyncEngine, idle_seconds: float) -> None:
    """Check a pooled connection with a ping only when it has sat idle for `idle_seconds` or more.

    SQLAlchemy's `pool_pre_ping` pings on every checkout: one more round trip per request (a fifth of
    the statements of a one-patient read). A connection given back moments ago is as alive as a ping
    would find it; one that has waited long enough for a server timeout, a failover or a proxy to drop
    it is pinged, and replaced (the pool's retry on DisconnectionError) if it does not answer.
    """
    pool, dialect = engine.sync_engine.pool, engine.sync_engine.dialect

    def checkin(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info["idle_since"] = time.monotonic()

    def checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < idle_seconds:
            return
        if not _answers_ping(dialect, dbapi_connection):
            raise exc.DisconnectionError("connection lost while idle")

    event.listen(pool, "checkin", checkin)
    event.listen(pool, "checkout", checkout)


def _answers_ping(dialect: Any, dbapi_connection: Any) -> bool:
    try:
        return bool(dialect.do_ping(dbapi_connection))
    except Exception:
        return False


def _no_transaction(_dbapi_connection: Any) -> None:
    """COMMIT/ROLLBACK on an autocommit connection: there is no transaction to end."""


def make_engine(
    url: str,
    *,
    pool_size: int = 10,
    autocommit: bool = False,
    ping_idle_seconds: float = 10.0,
    statement_cache: int = 0,
    pool_timeout: float = 30.0,
    turns: bool = False,
) -> AsyncEngine:
    url, failover_hosts = split_failover(normalise_url(url))
    kwargs: dict[str, Any] = {"hide_parameters": True}  # driver messages never carry patient data
    if statement_cache and make_url(url).get_driver_name() == "asyncmy":
        # asyncmy runs a statement with positional parameters as a server-side prepared statement, kept
        # per connection (least recently used out): no escaping, binary rows, no parsing on the server.
        # A statement the server refuses to prepare falls back to the text protocol.
        kwargs["connect_args"] = {"stmt_cache_size": statement_cache}
    if autocommit:
        # Every statement is its own transaction: nothing to roll back when a connection goes back.
        kwargs.update(isolation_level="AUTOCOMMIT", pool_reset_on_return=None)
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 10}
    else:
        kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800, pool_timeout=pool_timeout)
        # a server that does not answer at all (a host gone, not a refused port) fails the connect in seconds
        kwargs["connect_args"] = {**kwargs.get("connect_args", {}), "connect_timeout": CONNECT_TIMEOUT_SECONDS}
    engine = create_async_engine(url, **kwargs)
    if autocommit:
        # SQLAlchemy keeps its transaction bookkeeping on an AUTOCOMMIT connection and, when a Connection
        # closes, calls the driver's rollback() expecting it to do nothing; MySQL drivers send a ROLLBACK
        # anyway: one more round trip per request, for nothing. This engine's own dialect skips them.
        dialect = engine.sync_engine.dialect
        dialect.do_rollback = _no_transaction  # type: ignore[method-assign,assignment]
        dialect.do_commit = _no_transaction  # type: ignore[method-assign,assignment]
    if url.startswith("sqlite"):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        if autocommit:  # the request pool, whose writes take turns (WriteTurns)
            event.listen(engine.sync_engine, "connect", _sqlite_no_autocheckpoint)
        if turns:  # the write turns' own connections (WriteTurns)
            event.listen(engine.sync_engine, "connect", _sqlite_no_busy_handler)
    else:
        _ping_when_idle(engine, ping_idle_seconds)
        if failover_hosts:
            event.listen(engine.sync_engine, "do_connect", Failover(failover_hosts))
    return engine


class FairGate:
    """First come, first served admission to a connection pool, one gate per event loop.

    SQLAlchemy's async pool hands a returned connection to a waiter by waking it, and a request that
    reaches the pool before the woken waiter runs takes the connection instead; the waiter queues again at
    the back. Under load (more requests in flight than connections) that barging gave some requests several
    turns in the queue: at 50 concurrent requests on 20 connections, p99 latency was 2-3 times what a fair
    queue gives (bench/results/extra.md). asyncio.Semaphore lets no newcomer pass a waiter, so a request
    first takes a place here (as many places as the pool has connections) and then finds its connection
    free. It waits as long as the pool would (`pool_timeout`) and then fails as the pool would.
    """

    def __init__(self, places: int, timeout: float) -> None:
        self.places, self.timeout = places, timeout
        self._gates: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None

    def _gate(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._gates is None or self._gates[0] is not loop:
            self._gates = (loop, asyncio.Semaphore(self.places))
        return self._gates[1]

    async def enter(self) -> asyncio.Semaphore:
        """Waits for a place; give it back with `.release()` on what this returns."""
        gate = self._gate()
        if not gate.locked():  # a place is free and nobody waits: taken at once, no timer to set up and cancel
            await gate.acquire()
            return gate
        try:
            async with asyncio.timeout(self.timeout):
                await gate.acquire()
        except TimeoutError:
            raise exc.TimeoutError(f"no database connection free within {self.timeout:g} s") from None
        return gate

    @classmethod
    def of(cls, engine: AsyncEngine) -> FairGate | None:
        pool = engine.sync_engine.pool
        if not isinstance(pool, QueuePool):
            return None
        return cls(pool.size() + max(pool._max_overflow, 0), pool._timeout)


class Shelf:
    """A pool's connections kept checked out between uses, each lent to one user at a time: the requests' (each
    request's `RequestConnection`) and the write units' (`Database.core_transaction`).

    Taking a connection from SQLAlchemy's pool and giving it back (a Connection object, the pool's checkout and
    checkin with their events, a root transaction's bookkeeping, a greenlet switch each way; for transactions, the
    pool's reset sending a ROLLBACK after the COMMIT) was about a tenth of the CPU of a one-patient read. A request
    now takes the connection the last request gave back, as it is.
    What the pool's checkout would have checked is checked here: a connection idle `idle_seconds` or more is
    pinged (as `_ping_when_idle` does) and replaced if it does not answer; an invalidated one (a disconnect or a
    cancelled statement), one older than the pool's recycle time, or one opened before the pool was last
    invalidated (a disconnect seen on another connection) goes back to the pool instead, which replaces it. At
    most `places` are kept, as many as the pool keeps: one given back to a full shelf is closed, as the pool closes
    its overflow.
    One shelf per event loop, like the gate.

    The requests' pool is autocommit: its connections are shelved with SQLAlchemy's (bookkeeping) transaction
    begun, as `RequestConnection` uses them. The transactions' pool (`autocommit=False`, write units) shelves a
    connection only once its transaction has ended (committed or rolled back)."""

    def __init__(self, engine: AsyncEngine, places: int, idle_seconds: float, *, autocommit: bool = True) -> None:
        self.engine, self.places, self.idle_seconds, self.autocommit = engine, places, idle_seconds, autocommit
        self._shelves: tuple[asyncio.AbstractEventLoop, list[tuple[AsyncConnection, float]]] | None = None
        self._closed = False

    def _shelf(self) -> list[tuple[AsyncConnection, float]]:
        loop = asyncio.get_running_loop()
        if self._shelves is None or self._shelves[0] is not loop:
            self._shelves = (loop, [])
        return self._shelves[1]

    def __len__(self) -> int:
        """How many connections wait on the shelf (checked out of the pool, lent to nobody)."""
        return len(self._shelves[1]) if self._shelves is not None else 0

    async def take(self) -> AsyncConnection:
        shelf = self._shelf()
        while shelf:
            connection, since = shelf.pop()  # the one given back last: its server thread is the warmest
            try:
                if self._usable(connection) and await self._alive(connection, since):
                    return connection
            except BaseException:
                await _close_quietly(connection)
                raise
            await _close_quietly(connection)  # back to the pool, which replaces it
        connection = await self.engine.connect()
        if self.autocommit:
            try:
                await connection.begin()  # (bookkeeping only: an autocommit connection sends no BEGIN)
            except BaseException:
                await _close_quietly(connection)
                raise
        return connection

    async def give_back(self, connection: AsyncConnection) -> None:
        shelf = self._shelf()
        as_taken = connection.in_transaction() == self.autocommit
        if not self._closed and as_taken and self._usable(connection):
            if len(shelf) < self.places:
                shelf.append((connection, time.monotonic()))
                return
            # More than the pool keeps: closed, as the pool closes its overflow (given back as it is, it would
            # wait in the pool's queue while the shelf holds as many again).
            await connection.invalidate()
        await connection.close()

    async def close(self) -> None:
        """Give every shelved connection back to the pool (before the engine is disposed); later ones too."""
        self._closed = True
        if self._shelves is None or self._shelves[0] is not asyncio.get_running_loop():
            return
        shelf, self._shelves = self._shelves[1], None
        for connection, _since in shelf:
            await _close_quietly(connection)

    def _usable(self, connection: AsyncConnection) -> bool:
        sync = connection.sync_connection
        if sync is None or sync.closed or sync.invalidated:
            return False
        pool: Any = self.engine.sync_engine.pool
        record = sync.connection._connection_record
        if record is None or pool._invalidate_time > record.starttime:
            return False
        return not (pool._recycle > -1 and time.time() - record.starttime > pool._recycle)

    async def _alive(self, connection: AsyncConnection, since: float) -> bool:
        if time.monotonic() - since < self.idle_seconds or self.engine.dialect.name == "sqlite":
            return True
        dialect = self.engine.sync_engine.dialect

        if await connection.run_sync(lambda sync: _answers_ping(dialect, sync.connection.dbapi_connection)):
            return True
        await connection.invalidate()
        return False


_UNIT_PLACE: ContextVar[bool] = ContextVar("unit_place", default=False)  # this task holds a write unit's place


def _kept(engine: AsyncEngine, pool_size: int) -> int:
    """How many connections a shelf keeps: as many as the pool itself keeps (its overflow is closed on return)."""
    pool = engine.sync_engine.pool
    return pool.size() if isinstance(pool, QueuePool) else pool_size


async def _close_quietly(connection: AsyncConnection) -> None:
    try:
        await connection.close()
    except Exception:  # a connection already broken: the pool has let it go
        log.debug("closing a shelved connection failed", exc_info=True)


CHECKPOINT_EVERY_WRITES = 100  # SQLite: write turns between two background WAL checkpoints
BUSY_POLL_SECONDS = 0.001  # SQLite: a write turn that found the lock taken by another process tries again after
BUSY_WAIT_SECONDS = 10.0  # ... for as long as the busy handler waits elsewhere (_sqlite_pragmas)


def _sqlite_busy(error: exc.OperationalError) -> bool:
    """SQLITE_BUSY (or one of its extended codes): another connection holds the write lock."""
    code = getattr(error.orig, "sqlite_errorcode", None)
    return code is not None and code & 0xFF == sqlite3.SQLITE_BUSY


@dataclass(eq=False)
class _Write:
    """A write waiting for its turn, and its outcome."""

    run: Callable[[AsyncConnection], Awaitable[Any]]
    done: asyncio.Future[Any]


def _retrieved(done: asyncio.Future[Any]) -> None:
    if not done.cancelled():
        done.exception()


async def _begin_immediate(connection: AsyncConnection) -> None:
    await connection.exec_driver_sql("BEGIN IMMEDIATE")


class WriteTurns:
    """SQLite: the request pool's writes (read events, counters) take turns here, first come first served, so that
    they never meet inside SQLite, and its WAL checkpoints run beside them (issue 23).

    SQLite has one write lock per database file. A connection that finds it taken sleeps in SQLite's busy handler,
    which does not wake when the lock is given back: it sleeps 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, then 100 ms
    between tries. Each request writes its read events (one INSERT, committed with the WAL's fsync: milliseconds
    under the lock), and at 5 concurrent requests about half of those INSERTs lost a try to another request's and
    slept, up to hundreds of milliseconds for one that lost several in a row (bench/seal_probe.py counts the busy
    handler's calls). Here a writer is woken the moment the one before it is done.

    A writer of another process (the audit sealer's steps, another instance, a command) can still hold the lock when
    a turn starts. So the turns write through connections of their own with no busy handler (`busy_timeout=0`): a
    write that finds the lock taken fails at once, untouched (each statement is its own transaction), and the turn
    tries it again every BUSY_POLL_SECONDS, for BUSY_WAIT_SECONDS as the busy handler would. It waits about as long
    as the other writer holds the lock (a seal step's few milliseconds), not the busy handler's growing sleeps (up
    to 78 ms measured behind the sealer's steps).

    The commit that takes the WAL past 1,000 pages ran the checkpoint (copying the WAL into the database file and
    its fsync, 1-100 ms) inside that request's INSERT, now inside its turn, with the others waiting behind it. So
    the request pool's connections do not checkpoint (`wal_autocheckpoint=0`, make_engine) and every
    CHECKPOINT_EVERY_WRITES turns a PASSIVE checkpoint runs in the background on the transactional pool (one at a
    time): it takes no write lock, so the next turns go on meanwhile; then it copies what they added in a turn of
    its own (short), so the WAL is wholly copied and the next write restarts it. That pool's own commits still
    checkpoint as SQLite does by default. One lock per event loop. Other databases lock rows: nothing to take
    turns for, and a write runs on the request's own connection."""

    def __init__(self, enabled: bool, checkpoint_engine: AsyncEngine, writer: AsyncEngine | None = None) -> None:
        self.enabled = enabled and writer is not None
        self._checkpoint_engine = checkpoint_engine
        self._writer = writer
        self._locks: tuple[asyncio.AbstractEventLoop, asyncio.Lock, list[_Write]] | None = None
        self._writes = 0
        self._checkpoint: asyncio.Task[None] | None = None
        self.busy_retries = 0  # tries that found another process's writer holding the lock (tests, benchmarks)
        self.commits = 0  # transactions the turns committed: fewer than writes when turns were shared

    def _turn(self) -> tuple[asyncio.Lock, list[_Write]]:
        loop = asyncio.get_running_loop()
        if self._locks is None or self._locks[0] is not loop:
            self._locks = (loop, asyncio.Lock(), [])
        return self._locks[1], self._locks[2]

    def _lock(self) -> asyncio.Lock:
        return self._turn()[0]

    async def write(
        self,
        connection_of: Callable[[], AbstractAsyncContextManager[AsyncConnection]],
        run: Callable[[AsyncConnection], Awaitable[T]],
    ) -> T:
        """`run` one single-statement write: in a turn, on SQLite, or on `connection_of()`'s connection elsewhere.

        SQLite: the writes that queued while a turn ran share the next one, as one transaction (group commit):
        one fsync of the WAL for all of them, each committed before its request goes on. If one of them fails,
        the transaction is rolled back and each runs again alone, so each gets its own outcome."""
        if not self.enabled:
            async with connection_of() as connection:
                return await run(connection)
        lock, queued = self._turn()
        write = _Write(run, asyncio.get_running_loop().create_future())
        # a writer cancelled while its write is queued (the next turn runs it) or running never reads the outcome:
        # read here, so that a failure is not reported as "Future exception was never retrieved"
        write.done.add_done_callback(_retrieved)
        queued.append(write)
        async with lock:
            if write in queued:  # not taken by the turn before (else done, or being written by it)
                batch = list(queued)
                queued.clear()
                # shielded: a request cancelled meanwhile does not cut the others' writes short
                await asyncio.shield(asyncio.get_running_loop().create_task(self._write_batch(batch)))
        return cast("T", await write.done)

    async def _write_batch(self, batch: list[_Write]) -> None:
        assert self._writer is not None
        try:
            async with self._writer.connect() as connection:
                if len(batch) > 1 and await self._together(connection, batch):
                    return
                for write in batch:  # alone, each its own transaction
                    try:
                        result = await self._retrying(connection, write.run)
                    except Exception as error:
                        write.done.set_exception(error)
                    else:
                        write.done.set_result(result)
                        self.commits += 1
        finally:
            for write in batch:  # the connection failed: nothing was written for these
                if not write.done.done():
                    write.done.set_exception(exc.OperationalError("write turn", None, Exception("no connection")))
            self._writes += len(batch)
            if self._writes >= CHECKPOINT_EVERY_WRITES and (self._checkpoint is None or self._checkpoint.done()):
                self._writes = 0
                self._checkpoint = asyncio.get_running_loop().create_task(
                    self._run_checkpoint(), name="sqlite-wal-checkpoint"
                )

    async def _together(self, connection: AsyncConnection, batch: list[_Write]) -> bool:
        """The batch as one transaction; False (rolled back) if one of its writes failed."""
        await self._retrying(connection, _begin_immediate)  # the write lock, waited for as a single write waits
        try:
            results = [await write.run(connection) for write in batch]
            await connection.exec_driver_sql("COMMIT")
        except Exception:
            with contextlib.suppress(Exception):
                await connection.exec_driver_sql("ROLLBACK")
            return False
        self.commits += 1
        for write, result in zip(batch, results, strict=True):
            write.done.set_result(result)
        return True

    async def _retrying(self, connection: AsyncConnection, run: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + BUSY_WAIT_SECONDS
        while True:
            try:
                return await run(connection)
            except exc.OperationalError as error:
                if not _sqlite_busy(error) or loop.time() >= give_up:
                    raise
            self.busy_retries += 1
            await asyncio.sleep(BUSY_POLL_SECONDS)

    async def _run_checkpoint(self) -> None:
        """The bulk of the copy beside the writes, then what they added meanwhile in a turn of its own: with the
        WAL wholly copied when that turn ends, the next write starts the WAL again from its beginning (SQLite
        restarts it only then; checkpoints that never caught up with back-to-back writes let it grow by tens
        of megabytes a minute)."""
        try:
            async with self._checkpoint_engine.connect() as connection:
                await connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
                async with self._lock():
                    await connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception:
            log.exception("WAL checkpoint failed; the next one copies what this one did not")

    async def finish(self) -> None:
        """Wait for a checkpoint still running (before the engines are disposed)."""
        task, self._checkpoint = self._checkpoint, None
        if task is not None and task.get_loop() is asyncio.get_running_loop():
            await asyncio.wait([task])


class Database:
    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        ping_idle_seconds: float = 10.0,
        statement_cache: int = 0,
        pool_timeout: float = 30.0,
        direct: bool = True,
    ) -> None:
        self.url = url
        self.engine = make_engine(
            url,
            pool_size=pool_size,
            ping_idle_seconds=ping_idle_seconds,
            statement_cache=statement_cache,
            pool_timeout=pool_timeout,
        )
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        # Reads and single-statement writes (read events) of a request: an autocommit pool, so a request
        # needs one checkout and no BEGIN/ROLLBACK (RequestConnection).
        self.read_engine = make_engine(
            url,
            pool_size=pool_size,
            autocommit=True,
            ping_idle_seconds=ping_idle_seconds,
            statement_cache=statement_cache,
            pool_timeout=pool_timeout,
        )
        self.request_gate = FairGate.of(self.read_engine)
        # the requests' and the write units' connections stay checked out between uses (Shelf)
        self.shelf = Shelf(self.read_engine, _kept(self.read_engine, pool_size), ping_idle_seconds)
        self.transaction_shelf = Shelf(self.engine, _kept(self.engine, pool_size), ping_idle_seconds, autocommit=False)
        self.transaction_gate = FairGate(self.transaction_shelf.places, pool_timeout)
        # SQLite: the request pool's writes take turns, on connections of their own (WriteTurns)
        self.turns_engine = make_engine(url, autocommit=True, turns=True) if self.dialect == "sqlite" else None
        self.write_turns = WriteTurns(self.dialect == "sqlite", self.engine, self.turns_engine)
        # a request's statements may run through the driver itself where it is a MySQL one (RequestConnection)
        self.direct = direct and self.read_engine.dialect.name == "mysql"

    @property
    def engines(self) -> tuple[AsyncEngine, ...]:
        return (self.engine, self.read_engine, *([self.turns_engine] if self.turns_engine is not None else []))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessionmaker() as session:
            yield session

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        """An autocommit connection of its own, for Core reads of rows and single-statement writes."""
        async with self.read_engine.connect() as connection:
            yield connection

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One all-or-nothing unit of work: commit on success, roll back on any error."""
        async with self.sessionmaker() as session, session.begin():
            yield session
            committing()  # from here the request's deadline no longer cancels it (core/deadline.py)

    @asynccontextmanager
    async def core_transaction(self) -> AsyncIterator[AsyncConnection]:
        """`transaction()` as a Core connection, for work that may need no ORM session at all (a write unit opens
        one on this connection only when its work loads or adds ORM objects): commit on success, roll back on
        any error."""
        # A place at the units' gate first (first come, first served; a unit opened inside another one of the same
        # task uses its place): at most as many units as the pool keeps hold connections, so a unit never waits in
        # the pool's own (unfair) queue, and the pool's overflow stays free for the ORM transactions beside them.
        gate = None if _UNIT_PLACE.get() else self.transaction_gate
        place = await gate.enter() if gate is not None else None
        token = _UNIT_PLACE.set(True) if place is not None else None
        try:
            connection = await self.transaction_shelf.take()
            try:
                async with connection.begin():
                    yield connection
                    committing()
            finally:
                await self.transaction_shelf.give_back(connection)
        finally:
            if token is not None:
                _UNIT_PLACE.reset(token)
            if place is not None:
                place.release()

    async def dispose(self) -> None:
        await self.shelf.close()
        await self.transaction_shelf.close()
        await self.write_turns.finish()
        for engine in self.engines:
            await engine.dispose()


class _NoContext:
    """What SQLAlchemy's error handling reads of an execution context, for a statement run without one."""

    executemany = False

    def handle_dbapi_exception(self, _error: BaseException) -> None:
        pass


def _handled(sync: Any, error: BaseException, sql: str, args: Any) -> None:
    """SQLAlchemy's handling of an error raised while a statement ran: the driver adapter's (an asyncmy
    AttributeError on a broken connection becomes an InternalError), then the Connection's (a DBAPIError,
    handle_error events, the connection invalidated on a disconnect or an exit exception such as a
    cancellation). Always raises."""
    if isinstance(error, Exception):
        try:
            sync.connection.dbapi_connection._handle_exception(error)
        except BaseException as translated:
            error = translated
    try:
        raise error
    except BaseException as raised:  # (SQLAlchemy reads the exception being handled from sys.exc_info())
        sync._handle_dbapi_exception(raised, sql, args, None, _NoContext())


async def driver_run(connection: AsyncConnection, sql: str, args: tuple[Any, ...]) -> tuple[Any, list[Any], int]:
    """Run `sql` (the driver's SQL, positional `args`) on a MySQL driver's connection through the driver itself,
    not through SQLAlchemy's execution path (a greenlet, an execution context, a cursor adapter and a result
    object per statement), in whatever transaction the connection is in. Returns the cursor's description, its
    rows and its row count (rows matched, for an UPDATE: SQLAlchemy's MySQL dialects connect with FOUND_ROWS).

    The same as SQLAlchemy's path where it matters: the driver connection's lock, the engine's cursor events
    (statement counters, logging), and any error handed to SQLAlchemy's own handling (wrapped as a DBAPIError,
    an IntegrityError or a deadlock included; the connection invalidated on a disconnect or a cancellation).
    The caller orders its own users of the connection (RequestConnection's lock; a write unit's one task)."""
    sync = connection.sync_connection
    assert sync is not None
    adapted: Any = sync.connection.dbapi_connection
    try:
        async with adapted._execute_mutex:
            cursor = await adapted._connection.cursor().__aenter__()  # (aiomysql's cursor() is awaitable)
            dispatch = sync.dispatch
            if dispatch.before_cursor_execute:
                for listener in dispatch.before_cursor_execute:
                    listener(sync, cursor, sql, args, None, False)
            await cursor.execute(sql, args)
            description = cursor.description
            rows = list(await cursor.fetchall()) if description else []
            count = int(cursor.rowcount or 0)
            await cursor.close()
            if dispatch.after_cursor_execute:
                for listener in dispatch.after_cursor_execute:
                    listener(sync, cursor, sql, args, None, False)
    except BaseException as error:
        # (the failed cursor is dropped, not closed: closing reads what is left of a result, which a lost
        # or cancelled statement may never send)
        await greenlet_spawn(_handled, sync, error, sql, args)
        raise  # (not reached: _handled raises)
    return description, rows, count


def _session_on(connection: AsyncConnection) -> AsyncSession:
    # Joins the connection's (autocommit) transaction and leaves it open on close: no ROLLBACK per use.
    return AsyncSession(bind=connection, join_transaction_mode="rollback_only", expire_on_commit=False, autoflush=False)


class RequestConnection:
    """One autocommit connection for the reads of one request, taken from the pool on first use.

    Each statement sees everything committed before it (this request's own writes included), and
    single statements that write (a multi-row INSERT of read events) are atomic by themselves. Work that
    needs several statements to be all-or-nothing keeps using `Database.transaction()`.

    DataLoaders run concurrently, and a connection serves one statement at a time: a lock orders them.
    A `session()` block must not open another `session()` of the same request (it would wait for itself);
    that is refused at once rather than hanging.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock = asyncio.Lock()
        self._connection: AsyncConnection | None = None
        self._holder: asyncio.Task[Any] | None = None
        self._closed = False
        self._place: asyncio.Semaphore | None = None  # this request's place at the pool's gate

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """An ORM session on the request's connection (for reads that load ORM objects)."""
        async with self.connection() as connection:
            session = _session_on(connection)
            try:
                yield session
            finally:
                await session.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        """The request's connection itself, for Core statements: no ORM session to set up per use."""
        task = asyncio.current_task()
        if self._holder is not None and self._holder is task:
            raise RuntimeError("nested RequestConnection.session() / connection() in one task")
        async with self._lock:
            if self._closed:
                # A resolver still running after its request was answered (graphql-core lets the siblings of
                # a field whose error nulled the result settle in the background) must not open a connection
                # that nobody would give back.
                raise RuntimeError("the request is finished: its connection is closed")
            self._holder = task
            try:
                yield self._connection or await self._open()
            finally:
                self._holder = None

    async def driver_execute(self, sql: str, args: tuple[Any, ...]) -> tuple[Any, list[Any]] | None:
        """Run `sql` (the driver's SQL, positional `args`) on the request's connection through the driver itself,
        not through SQLAlchemy's execution path (a greenlet, an execution context, a cursor adapter and a result
        object per statement). Returns the cursor's description and rows, or None where the driver is not a
        MySQL one (the caller then runs the statement the usual way).

        The same as SQLAlchemy's path where it matters: the request connection's lock and the driver
        connection's, the engine's cursor events (statement counters, logging), and any error handed to
        SQLAlchemy's own handling (wrapped as a DBAPIError; the connection invalidated on a disconnect or a
        cancellation)."""
        if not self._db.direct:
            return None
        task = asyncio.current_task()
        if self._holder is not None and self._holder is task:
            raise RuntimeError("nested RequestConnection.session() / connection() in one task")
        async with self._lock:
            if self._closed:
                raise RuntimeError("the request is finished: its connection is closed")
            connection = self._connection or await self._open()
            description, rows, _count = await driver_run(connection, sql, args)
            return description, rows

    async def _open(self) -> AsyncConnection:
        gate = self._db.request_gate
        if gate is not None and self._place is None:
            self._place = await gate.enter()
        try:
            connection = await self._db.shelf.take()
        except BaseException:
            self._leave()
            raise
        self._connection = connection
        return connection

    def _leave(self) -> None:
        place, self._place = self._place, None
        if place is not None:
            place.release()

    async def close(self) -> None:
        """Give the connection back to the pool (at the end of the request); later reads are refused."""
        async with self._lock:
            self._closed = True
            connection, self._connection = self._connection, None
            try:
                if connection is not None:
                    await self._db.shelf.give_back(connection)
            finally:
                self._leave()

"""One connection per HTTP request for its reads (core/db.py RequestConnection)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, exc, func, select, text, update

from core.db import Database, FairGate, RequestConnection
from models.patient import Patient
from tests.conftest import GraphQLClient

LIST = "{ patients(first: 20) { edges { node { id name visits { visitDate diagnoses { icd10Code } } } } } }"


class Checkouts:
    """Connections taken: checkouts of each pool, and the requests' takes from their shelf (core/db.py Shelf:
    a request takes a connection from the shelf, which checks one out of the pool only when none waits)."""

    def __init__(self, client: GraphQLClient) -> None:
        db = client.services.db
        self.shelf = db.shelf
        self.pools = {"transactions": db.engine.sync_engine.pool, "requests": db.read_engine.sync_engine.pool}
        self.counts = dict.fromkeys(self.pools, 0)
        self.taken = 0

    def __enter__(self) -> Checkouts:
        for name, pool in self.pools.items():
            event.listen(pool, "checkout", self._hook(name))
        take = self.shelf.take

        async def counted() -> Any:
            self.taken += 1
            return await take()

        self.shelf.take = counted  # type: ignore[method-assign]
        return self

    def _hook(self, name: str) -> Any:
        def count(*_args: Any) -> None:
            self.counts[name] += 1

        self.__dict__.setdefault("hooks", []).append((self.pools[name], count))
        return count

    def __exit__(self, *_exc: Any) -> None:
        for pool, hook in self.__dict__.get("hooks", []):
            event.remove(pool, "checkout", hook)
        del self.shelf.take  # the class's own again


@contextmanager
def counted_pings(database: Database, pings: list[bool]) -> Iterator[None]:
    """Every ping of the requests' pool appended to `pings` (True: it answered; False: it failed)."""
    dialect = database.read_engine.sync_engine.dialect
    original = dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        try:
            alive = bool(original(dbapi_connection))
        except Exception:
            pings.append(False)
            raise
        pings.append(alive)
        return alive

    dialect.do_ping = counted  # type: ignore[method-assign]
    try:
        yield
    finally:
        dialect.do_ping = original  # type: ignore[method-assign]


async def test_a_read_request_takes_one_connection(client: GraphQLClient) -> None:
    token = await client.token("physician")
    with Checkouts(client) as checkouts:
        data = await client.data(LIST, token=token)
    assert data["patients"]["edges"]
    # the session check, the scope, the page, the loaders and the read events: one connection in all, the one
    # the login's request gave back (no checkout of the pool)
    assert checkouts.taken == 1 and checkouts.counts == {"transactions": 0, "requests": 0}


async def test_a_read_request_ends_no_transaction_but_a_failed_write_still_rolls_back(
    client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The request's connection is autocommit: closing it sends no ROLLBACK (one round trip saved per request).
    # The transactions' engine is untouched: a write that fails still rolls back on the server.
    db = client.services.db
    token = await client.token("physician")
    await client.data(LIST, token=token)
    async with db.read_engine.connect() as conn:
        adapter = type((await conn.get_raw_connection()).dbapi_connection)
    calls: list[str] = []
    original = adapter.rollback

    def rollback(self: Any) -> Any:
        calls.append("rollback")
        return original(self)

    monkeypatch.setattr(adapter, "rollback", rollback)
    data = await client.data(LIST, token=token)
    assert data["patients"]["edges"] and calls == []

    async with db.session() as session:
        pid = (await session.execute(select(func.min(Patient.id)))).scalar_one()
        before = (await session.execute(select(Patient.version).where(Patient.id == pid))).scalar_one()
    with pytest.raises(RuntimeError, match="boom"):
        async with db.transaction() as session:
            await session.execute(update(Patient).where(Patient.id == pid).values(version=Patient.version + 1))
            raise RuntimeError("boom")
    assert "rollback" in calls
    async with db.session() as session:
        assert (await session.execute(select(Patient.version).where(Patient.id == pid))).scalar_one() == before


async def test_a_batch_takes_one_connection_per_operation(client: GraphQLClient) -> None:
    token = await client.token("physician")
    with Checkouts(client) as checkouts:
        response = await client.http.post(
            "/graphql",
            json=[{"query": LIST}, {"query": LIST}],
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 200 and all("errors" not in item for item in response.json())
    assert checkouts.taken == 3  # the request (session check), then one per operation


async def test_writes_are_seen_by_the_reads_after_them(client: GraphQLClient, db: Database) -> None:
    """Reads are autocommit, never a snapshot taken at the start of the request."""
    token = await client.token("physician")
    data = await client.data("{ patients(first: 1) { edges { node { id name } } } }", token=token)
    node = data["patients"]["edges"][0]["node"]
    query = "query ($id: ID!) { patient(id: $id) { name version } }"
    before = (await client.data(query, {"id": node["id"]}, token=token))["patient"]
    mutation = """
      mutation ($id: ID!, $v: Int!) { updatePatient(id: $id, version: $v, input: { name: "张三丰" }) { version } }
    """
    await client.data(mutation, {"id": node["id"], "v": before["version"]}, token=token)
    after = (await client.data(query, {"id": node["id"]}, token=token))["patient"]
    assert after == {"name": "张三丰", "version": before["version"] + 1}
    async with db.session() as session:
        names = (await session.execute(select(Patient.name).where(Patient.name == "张三丰"))).scalars().all()
    assert names == ["张三丰"]


async def test_a_request_connection_sees_commits_made_after_its_first_read(client: GraphQLClient, db: Database) -> None:
    """Autocommit: a read later in the same request sees a write committed meanwhile (no snapshot held).

    It bites on MariaDB (CI's second run), where a transaction begun at the first read would hold a
    REPEATABLE READ snapshot; SQLite's driver starts no transaction for plain reads either way."""
    connection = RequestConnection(db)
    try:
        async with connection.session() as session:
            (pid, name) = (await session.execute(select(Patient.id, Patient.name).limit(1))).one()
        async with db.transaction() as writer:
            await writer.execute(update(Patient).where(Patient.id == pid).values(name="王五"))  # type: ignore[arg-type]
        async with connection.session() as session:
            seen = (await session.execute(select(Patient.name).where(Patient.id == pid))).scalar_one()
        assert name != "王五" and seen == "王五"
    finally:
        await connection.close()


async def test_a_nested_session_is_refused_not_deadlocked(db: Database) -> None:
    connection = RequestConnection(db)
    try:
        async with connection.session() as session:
            assert (await session.execute(text("SELECT 1"))).scalar_one() == 1
            with pytest.raises(RuntimeError, match="nested"):
                async with connection.session():
                    pass

        # concurrent users (DataLoaders) take turns on the one connection
        async def probe(n: int) -> int:
            async with connection.session() as session:
                return int((await session.execute(text(f"SELECT {n}"))).scalar_one())

        assert await asyncio.gather(*(probe(n) for n in range(5))) == [0, 1, 2, 3, 4]
    finally:
        await connection.close()


async def test_a_closed_request_connection_opens_no_other(db: Database) -> None:
    # graphql-core lets the siblings of a field whose error nulled the response settle in the background,
    # after the request has been answered and its connection given back: they must not take a new one.
    connection = RequestConnection(db)
    async with connection.session() as session:
        assert (await session.execute(text("SELECT 1"))).scalar_one() == 1
    await connection.close()
    checked_out = db.read_engine.pool.checkedout()  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError, match="finished"):
        async with connection.session():
            pass
    assert db.read_engine.pool.checkedout() == checked_out  # type: ignore[attr-defined]


async def test_only_an_idle_pooled_connection_is_pinged_and_a_dead_one_replaced(db: Database) -> None:
    if db.dialect != "mysql":
        pytest.skip("MariaDB only (the MariaDB run of make test): SQLite has no server to lose and no pings")
    database = Database(db.url, ping_idle_seconds=0.5)
    pings: list[bool] = []
    try:
        with counted_pings(database, pings):
            async with database.read_engine.connect() as conn:
                first = (await conn.execute(text("SELECT CONNECTION_ID()"))).scalar_one()
            async with database.read_engine.connect() as conn:  # back in the pool moments ago: no ping
                assert (await conn.execute(text("SELECT CONNECTION_ID()"))).scalar_one() == first
            assert pings == []

            # The server drops the connection while it sits idle in the pool (a timeout, a failover).
            async with database.engine.connect() as other:
                await other.execute(text(f"KILL {int(first)}"))
            await asyncio.sleep(0.6)
            async with database.read_engine.connect() as conn:  # pinged, found dead, replaced: the read succeeds
                replaced = (await conn.execute(text("SELECT CONNECTION_ID()"))).scalar_one()
            assert pings == [False] and replaced != first
    finally:
        await database.dispose()


async def test_requests_get_connections_first_come_first_served(db: Database) -> None:
    # More requests than connections: a request that arrives while others wait queues behind them, even
    # when it reaches the pool at the moment a connection comes back (the pool alone lets it take that one).
    db.request_gate = FairGate(1, timeout=5)
    order: list[str] = []
    first = RequestConnection(db)
    async with first.connection():
        pass

    async def request(name: str) -> None:
        connection = RequestConnection(db)
        try:
            async with connection.connection() as conn:
                order.append(name)
                await conn.execute(text("SELECT 1"))
        finally:
            await connection.close()

    waiting = [asyncio.create_task(request(f"waiter{i}")) for i in range(3)]
    await asyncio.sleep(0.05)  # all three queue behind the first request
    await first.close()
    # The newcomer asks in this same step, before the woken waiter has run: a gate that let it pass (as the
    # pool alone does) would serve it first.
    await request("newcomer")
    await asyncio.gather(*waiting)
    assert order == ["waiter0", "waiter1", "waiter2", "newcomer"]


async def test_a_request_waits_for_a_connection_as_long_as_the_pool_would_then_fails(db: Database) -> None:
    db.request_gate = FairGate(1, timeout=0.2)
    holder = RequestConnection(db)
    async with holder.connection():
        pass
    late = RequestConnection(db)
    with pytest.raises(exc.TimeoutError, match="no database connection free"):
        async with late.connection():
            pass
    await late.close()
    await holder.close()
    # no place was lost: the waiter that timed out and the holder both gave theirs back
    again = RequestConnection(db)
    async with again.connection() as conn:
        assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
    await again.close()


async def test_a_failed_checkout_gives_its_place_back(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    db.request_gate = FairGate(1, timeout=0.5)

    class Down:
        async def connect(self) -> Any:
            raise ConnectionRefusedError("database down")

    with monkeypatch.context() as patch:
        patch.setattr(db.shelf, "engine", Down())  # (the pool the shelf checks connections out of)
        broken = RequestConnection(db)
        with pytest.raises(ConnectionRefusedError):
            async with broken.connection():
                pass
        await broken.close()
    after = RequestConnection(db)
    async with after.connection() as conn:  # within the timeout: the place came back
        assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
    await after.close()


async def test_a_statement_run_through_the_driver_is_handled_as_sqlalchemy_would(db: Database) -> None:
    # RequestConnection.driver_execute (a reused statement's read, the read events) skips SQLAlchemy's execution
    # path on MySQL drivers: its errors must still come out as SQLAlchemy's, a lost connection must be invalidated
    # (so the pool replaces it) and reported unreachable, and the engine's cursor events must still see it.
    if db.dialect != "mysql":
        assert await RequestConnection(db).driver_execute("SELECT 1", ()) is None  # SQLite: the usual path
        return
    from core.db import unreachable

    seen: list[str] = []
    listener = lambda *args: seen.append(str(args[2]))  # noqa: E731
    event.listen(db.read_engine.sync_engine, "before_cursor_execute", listener)
    connection = RequestConnection(db)
    try:
        ran = await connection.driver_execute("SELECT %s + 1, CONNECTION_ID()", (41,))
        assert ran is not None
        description, rows = ran
        assert len(description) == 2
        assert rows[0][0] == 42
        own = int(rows[0][1])
        assert seen == ["SELECT %s + 1, CONNECTION_ID()"]
        with pytest.raises(exc.DBAPIError) as refused:
            await connection.driver_execute("SELECT no_such_column FROM patient", ())
        assert not refused.value.connection_invalidated and not unreachable(refused.value)
        ran = await connection.driver_execute("SELECT 2", ())  # still usable after a statement error
        assert ran is not None and ran[1][0][0] == 2

        # The server drops the connection (a failover): a DBAPIError, invalidated, unreachable (503)
        async with db.engine.connect() as other:
            await other.execute(text(f"KILL {own}"))
        with pytest.raises(exc.DBAPIError) as lost:
            await connection.driver_execute("SELECT 3", ())
        assert lost.value.connection_invalidated and unreachable(lost.value)
    finally:
        event.remove(db.read_engine.sync_engine, "before_cursor_execute", listener)
        await connection.close()

    # A statement cancelled mid-way (the request's deadline) leaves no half-read connection in the pool
    connection = RequestConnection(db)
    try:
        task = asyncio.ensure_future(connection.driver_execute("SELECT SLEEP(5)", ()))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        await connection.close()
    after = RequestConnection(db)
    try:
        ran = await after.driver_execute("SELECT 4", ())
        assert ran is not None and ran[1][0][0] == 4
    finally:
        await after.close()


async def _connection_id(db: Database) -> int:
    request = RequestConnection(db)
    try:
        async with request.connection() as conn:
            return int((await conn.execute(text("SELECT CONNECTION_ID()"))).scalar_one())
    finally:
        await request.close()


async def test_a_shelved_connection_is_lent_again_and_pinged_only_when_idle(db: Database) -> None:
    """The requests' connections stay checked out between requests (core/db.py Shelf): the next request gets the
    same one without a ping; one the server dropped while it sat idle is pinged, found dead and replaced."""
    if db.dialect != "mysql":
        pytest.skip("MariaDB only (the MariaDB run of make test): SQLite has no server to lose and no pings")
    database = Database(db.url, ping_idle_seconds=0.5)
    pings: list[bool] = []
    try:
        with counted_pings(database, pings):
            first = await _connection_id(database)
            assert len(database.shelf) == 1
            assert await _connection_id(database) == first and pings == []  # lent again at once, not pinged
            await asyncio.sleep(0.6)
            assert await _connection_id(database) == first and pings == [True]  # idle: pinged, alive, kept

            async with database.engine.connect() as other:  # the server drops it while it waits on the shelf
                await other.execute(text(f"KILL {first}"))
            await asyncio.sleep(0.6)
            replaced = await _connection_id(database)  # pinged, found dead, replaced: the read succeeds
            assert pings == [True, False] and replaced != first
            pool: Any = database.read_engine.sync_engine.pool
            assert pool.checkedout() == len(database.shelf) == 1  # the dead one went back to the pool, not leaked
    finally:
        await database.dispose()


async def test_a_broken_connection_is_not_shelved(db: Database) -> None:
    """A connection invalidated during a request (a disconnect, a cancelled statement) goes back to the pool, which
    replaces it; the next request gets a working one. After dispose nothing is shelved or checked out."""
    database = Database(db.url)
    try:
        request = RequestConnection(database)
        async with request.connection() as conn:
            await conn.execute(text("SELECT 1"))
            await conn.invalidate()
        await request.close()
        assert len(database.shelf) == 0
        request = RequestConnection(database)
        async with request.connection() as conn:
            assert (await conn.execute(text("SELECT 2"))).scalar_one() == 2
        await request.close()
        assert len(database.shelf) == 1
    finally:
        await database.dispose()
    assert len(database.shelf) == 0 and database.read_engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_the_shelf_keeps_as_many_connections_as_the_pool_keeps(db: Database) -> None:
    """A burst of requests opens more connections than the pool keeps; once it is over, the shelf keeps the pool's
    size and the others are closed (as the pool closes its overflow), none left open in the pool's queue."""
    database = Database(db.url, pool_size=2)
    try:
        pool: Any = database.read_engine.sync_engine.pool
        kept = pool.size()
        requests = [RequestConnection(database) for _ in range(kept + 2)]
        for request in requests:  # all at once: the pool's own and two of its overflow
            async with request.connection() as conn:
                await conn.execute(text("SELECT 1"))
        for request in requests:
            await request.close()
        assert len(database.shelf) == kept and pool.checkedout() == kept
        waiting = list(pool._pool._queue._queue)  # (the async adaptation of the pool's queue)
        assert all(record.dbapi_connection is None for record in waiting)  # the two others: closed
    finally:
        await database.dispose()


async def test_write_units_take_turns_and_leave_the_pools_overflow_to_others(db: Database) -> None:
    """Write units hold at most as many connections as the pool keeps (core/db.py `core_transaction`): one more
    waits its turn at the units' gate, not in the pool's queue, while an ORM transaction still gets a connection
    from the pool's overflow; a unit opened inside another of the same task uses the outer one's place."""
    database = Database(db.url, pool_size=2)
    try:
        places = database.transaction_gate.places
        release, all_in = asyncio.Event(), asyncio.Event()
        holding = 0

        async def unit() -> None:
            nonlocal holding
            async with database.core_transaction() as conn:
                await conn.execute(text("SELECT 1"))
                holding += 1
                if holding == places:
                    all_in.set()
                await release.wait()

        holders = [asyncio.create_task(unit()) for _ in range(places)]
        await asyncio.wait_for(all_in.wait(), 10)
        late = asyncio.create_task(unit())
        await asyncio.sleep(0.1)
        assert not late.done() and holding == places  # waiting at the gate
        async with database.transaction() as session:  # the pool's overflow is free for others
            assert (await session.execute(text("SELECT 2"))).scalar_one() == 2
        release.set()
        await asyncio.gather(*holders, late)
        assert holding == places + 1

        async with database.core_transaction(), database.core_transaction() as inner:  # nested: no second place
            assert (await inner.execute(text("SELECT 3"))).scalar_one() == 3
    finally:
        await database.dispose()

"""What a Galera cluster asks of the schema and the writes, checked on every database the suite runs on:
every table has a primary key, nothing takes GET_LOCK or LOCK TABLES (they do not act across nodes), and a write
that loses certification (reported as a deadlock, 1213) runs again whole, a bounded number of times, in one place
(resolvers/audit/unit.py retry_lost_races); an unreachable database is HTTP 503 UNAVAILABLE, never a bare 500. The
real cluster is tested in tests/cluster/ (make cluster-test)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, inspect, select
from sqlalchemy.exc import OperationalError
from sqlmodel import SQLModel

import models  # noqa: F401
from core.db import Database, lost_race
from models.audit import Event
from models.organisation import Position
from resolvers import organisation
from resolvers.audit.unit import LOST_RACE_ATTEMPTS
from tests.conftest import GraphQLClient, error_codes

ROOT = Path(__file__).resolve().parent.parent
CREATE = 'mutation { createPosition(name: "Galera pharmacist") { id name } }'
SOURCES = ("core", "models", "policies", "resolvers", "schema", "migrations", "server.py", "cli.py")
# a lock that would act on one node only (`GET_LOCK(...)`, `LOCK TABLES t WRITE`, `func.get_lock`)
NODE_LOCAL_LOCKS = re.compile(
    r"GET_LOCK\s*\(|func\.get_lock|LOCK\s+TABLES?\s+`?\w+`?\s+(AS\s+\w+\s+)?(READ|WRITE)", re.I
)


def test_every_model_table_has_a_primary_key() -> None:
    missing = [table.name for table in SQLModel.metadata.sorted_tables if not table.primary_key.columns]
    assert missing == []


async def test_every_migrated_table_has_a_primary_key(db: Database) -> None:
    """What the migrations made, Alembic's and Casbin's tables included (read from the database itself)."""

    def without_key(connection: Any) -> list[str]:
        inspector = inspect(connection)
        return [
            name
            for name in inspector.get_table_names()
            if not inspector.get_pk_constraint(name).get("constrained_columns")
        ]

    async with db.engine.connect() as connection:
        tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
        missing = await connection.run_sync(without_key)
    assert len(tables) >= len(SQLModel.metadata.tables)
    assert missing == []


def test_no_node_local_locks_in_the_code() -> None:
    found = []
    for name in SOURCES:
        path = ROOT / name
        for source in [path] if path.is_file() else sorted(path.rglob("*.py")):
            for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
                if NODE_LOCAL_LOCKS.search(line):
                    found.append(f"{source.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == []
    assert NODE_LOCAL_LOCKS.search("SELECT GET_LOCK('x', 5)") and NODE_LOCAL_LOCKS.search("LOCK TABLES event WRITE")


def _deadlock() -> OperationalError:
    """What the MariaDB driver raises when Galera certification fails (or InnoDB picks a deadlock victim)."""
    return OperationalError("COMMIT", {}, Exception(1213, "Deadlock found when trying to get lock; try restarting"))


def test_lost_race_is_told_by_the_error_code() -> None:
    assert lost_race(_deadlock())
    assert lost_race(OperationalError("UPDATE", {}, Exception(1205, "Lock wait timeout exceeded")))
    assert not lost_race(OperationalError("SELECT", {}, Exception(2013, "Lost connection")))
    assert not lost_race(ValueError("no database error"))


def _losing(times: int, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """createPosition's unit fails as a lost certification `times` times, then runs; the runs counted."""
    runs: list[int] = []
    real = organisation._name

    def name(value: str) -> str:
        runs.append(1)
        if len(runs) <= times:
            raise _deadlock()
        return real(value)

    monkeypatch.setattr(organisation, "_name", name)
    return runs


async def _stored(db: Database) -> tuple[int, list[str]]:
    async with db.session() as session:
        positions = (
            await session.execute(select(func.count()).where(Position.name == "Galera pharmacist"))  # type: ignore[arg-type]
        ).scalar_one()
        events = Event.__table__.c  # type: ignore[attr-defined]
        outcomes = (
            (
                await session.execute(
                    select(events.outcome).where(events.operation == "createPosition").order_by(events.id)
                )
            )
            .scalars()
            .all()
        )
    return int(positions), list(outcomes)


async def test_a_write_that_lost_certification_runs_again_whole(
    client: GraphQLClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = _losing(2, monkeypatch)
    data = await client.data(CREATE, as_="admin")
    assert data["createPosition"]["name"] == "Galera pharmacist"
    assert len(runs) == 3
    # stored once; each lost run is on record as a conflict, then the run that committed
    assert await _stored(db) == (1, ["conflict", "conflict", "success"])


async def test_a_write_that_keeps_losing_is_a_conflict_with_nothing_kept(
    client: GraphQLClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = _losing(100, monkeypatch)
    result = await client.run(CREATE, as_="admin")
    assert error_codes(result) == ["CONFLICT"]
    assert result["errors"][0]["extensions"]["reason"] == "LOST_RACE"
    assert len(runs) == LOST_RACE_ATTEMPTS
    assert await _stored(db) == (0, ["conflict"] * LOST_RACE_ATTEMPTS)


def _gone() -> OperationalError:
    return OperationalError("SELECT", {}, Exception(2013, "Lost connection to server during query"))


async def test_an_unreachable_database_during_a_query_is_503_unavailable(
    client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = await client.token("admin")

    async def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise _gone()

    monkeypatch.setattr(organisation, "list_positions", broken)
    response = await client.post("{ positions { id } }", token=token)
    assert response.status_code == 503 and response.headers["retry-after"] == "1", response.text
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "UNAVAILABLE" and error["extensions"]["requestId"]
    assert "Lost connection" not in response.text  # the driver's message stays in the log


async def test_an_unreachable_database_before_execution_is_503_unavailable(
    client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The token's session is read before any resolver runs: a failure there is answered with a code too."""
    from schema.engine import endpoint

    token = await client.token("admin")

    async def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise _gone()

    monkeypatch.setattr(endpoint, "principal_from_token", broken)
    response = await client.post("{ me { id } }", token=token)
    assert response.status_code == 503
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAVAILABLE"

    async def bug(*_args: Any, **_kwargs: Any) -> Any:
        raise ValueError("a bug")

    monkeypatch.setattr(endpoint, "principal_from_token", bug)
    response = await client.post("{ me { id } }", token=token)
    assert response.status_code == 500
    assert response.json()["errors"][0]["extensions"]["code"] == "INTERNAL"


class CommitCut:
    """The database connection breaks at the COMMIT of the unit that inserts a position: after the server
    committed (`kept`: the answer is what is lost, as when a Galera node dies once its write set is replicated) or
    before the COMMIT reached it (not kept). The error is the driver's own for a lost connection."""

    def __init__(self, db: Database, monkeypatch: pytest.MonkeyPatch, *, kept: bool) -> None:
        self.kept = kept
        self.cut = 0
        self.marked: set[int] = set()
        engine = db.engine.sync_engine
        dialect = engine.dialect
        real = dialect.do_commit

        def mark_insert(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if re.match(r"\s*INSERT INTO [`\"]?position[`\"]? ", statement, re.I):
                self.marked.add(id(conn.connection))  # the pooled connection do_commit is given

        def do_commit(dbapi_connection: Any) -> None:
            if id(dbapi_connection) not in self.marked:
                real(dbapi_connection)
                return
            self.marked.discard(id(dbapi_connection))
            self.cut += 1
            if self.kept:
                real(dbapi_connection)
            raise self._lost(dialect)

        event.listen(engine, "before_cursor_execute", mark_insert)
        monkeypatch.setattr(dialect, "do_commit", do_commit)
        self._undo = lambda: event.remove(engine, "before_cursor_execute", mark_insert)

    @staticmethod
    def _lost(dialect: Any) -> Exception:
        if dialect.name == "sqlite":
            return dialect.dbapi.OperationalError("connection closed")  # aiosqlite's disconnect
        return dialect.dbapi.OperationalError(2013, "Lost connection to server during query")

    def remove(self) -> None:
        self._undo()


@pytest.mark.parametrize("kept", [True, False], ids=["committed-then-cut", "cut-before-commit"])
async def test_a_connection_lost_at_commit_is_in_doubt_not_retried_and_the_client_reloads(
    client: GraphQLClient, db: Database, monkeypatch: pytest.MonkeyPatch, kept: bool
) -> None:
    """The Galera in-doubt path (resolvers/audit/unit.py write_unit): the COMMIT was sent and the connection broke,
    so nobody here knows whether it was kept. The client hears HTTP 500 UNAVAILABLE with `inDoubt` (a 503 would
    tell a balancer to resend it: deploy/balancer.py), the mutation is not run again (it might repeat a kept
    write), and what is stored is what the database did: the whole unit or nothing of it."""
    token = await client.token("admin")
    runs = _losing(0, monkeypatch)
    cut = CommitCut(client.services.db, monkeypatch, kept=kept)  # the app's own engine
    try:
        response = await client.post(CREATE, token=token)
    finally:
        cut.remove()
    assert cut.cut == 1 and len(runs) == 1  # one run, one cut commit: never run again
    assert response.status_code == 500, response.text
    body = response.json()
    assert error_codes(body) == ["UNAVAILABLE"]
    extensions = body["errors"][0]["extensions"]
    assert extensions["inDoubt"] is True and extensions["retryAfter"] == 1
    assert "may have been kept" in body["errors"][0]["message"]
    assert "Lost connection" not in response.text and "connection closed" not in response.text
    assert body["data"] is None or body["data"].get("createPosition") is None

    # Stored: the whole unit (the position and its success event) when the server committed, else nothing of it;
    # then, either way, the event of what the client was told (recorded as refusals are, outside the unit).
    assert await _stored(db) == ((1, ["success", "unavailable"]) if kept else (0, ["unavailable"]))
    reload = await client.data("{ positions { name } }", as_="admin")  # what the client is told to do first
    assert ("Galera pharmacist" in {p["name"] for p in reload["positions"]}) is kept
    again = await client.run(CREATE, as_="admin")  # the service goes on; a kept write's repeat is a conflict
    if kept:
        assert error_codes(again) == ["CONFLICT"]
    else:
        assert again["data"]["createPosition"]["name"] == "Galera pharmacist"

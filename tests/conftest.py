"""Test fixtures: a migrated database (SQLite, or MariaDB when TEST_DATABASE_URL is set), the real
ASGI app with its lifespan, and an httpx client that speaks GraphQL as each demo role."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import text
from sqlmodel import SQLModel

import models  # noqa: F401
from cli import run_migrations
from core import security
from core.db import Database
from core.settings import Settings
from policies.bootstrap import ensure_builtin
from resolvers.audit.chain import restore_append_only, suspend_append_only
from resolvers.demo.seed import seed_demo
from server import create_app

# The browser tests' Chromium and its `browser` fixture (tests/browser_support.py).
pytest_plugins = ["tests.browser_support"]

DEMO_PASSWORD = "Test-Demo#2026"
# TEST_SPEEDUPS=off: the whole suite with every switchable speed-up off must give the same answers.
SPEEDUPS_OFF: dict[str, Any] = (
    {"compiled_completion": False, "projection": False, "prefetch": False, "statement_reuse": False}
    if os.environ.get("TEST_SPEEDUPS") == "off"
    else {}
)
# Passwords are hashed at test strength. argon2's production parameters (64 MiB, 3 passes, 4 lanes; ~0.2 s of CPU a
# login here) would spend minutes of every run on the suite's logins. An argon2 hash carries its own parameters, so
# hashing, verifying and rehashing run the same code; tests/test_auth_login.py checks the production parameters.
security._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
security._DUMMY_HASH = security._hasher.hash("not-a-real-password")
# A small demo population (the full demo has 300): patients 5 and 11 are in Gastroenterology with
# physician2, 4 and 9 attended by chief, the rest by physician; patient 0 is bound to the `patient` user.
DEMO_PATIENTS = 12


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("TEST_DATABASE_URL") or f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db')}/test.db"
    run_migrations(url)
    return url


_SNAPSHOTS: dict[str, dict[str, list[dict[str, Any]]]] = {}


async def _delete_all(db: Database) -> None:
    async with db.transaction() as session:
        if db.dialect == "mysql":
            await session.execute(text("SET FOREIGN_KEY_CHECKS=0"))
        await suspend_append_only(session, reason="test reset")  # the event tables refuse DELETE otherwise
        for table in reversed(SQLModel.metadata.sorted_tables):
            await session.execute(table.delete())
        await restore_append_only(session)
        if db.dialect == "mysql":
            await session.execute(text("SET FOREIGN_KEY_CHECKS=1"))


async def reset_database(url: str) -> None:
    """Empty every table, then lay down built-in roles, the default policy and the demo data.

    The first reset builds the data through the real seeding code; later ones restore a snapshot
    of it (one multi-row insert per table), which keeps each test's set-up short on MariaDB too.
    """
    db = Database(url)
    try:
        await _delete_all(db)
        snapshot = _SNAPSHOTS.get(url)
        if snapshot is None:
            await ensure_builtin(db)
            await seed_demo(db, password=DEMO_PASSWORD, patients=DEMO_PATIENTS)
            snapshot = {}
            async with db.session() as session:
                for table in SQLModel.metadata.sorted_tables:
                    rows = (await session.execute(table.select())).mappings().all()
                    snapshot[table.name] = [dict(row) for row in rows]
            _SNAPSHOTS[url] = snapshot
            return
        async with db.transaction() as session:
            for table in SQLModel.metadata.sorted_tables:
                if snapshot[table.name]:
                    await session.execute(table.insert(), snapshot[table.name])
    finally:
        await db.dispose()


# The Redis databases the multi-instance tests use: TEST_REDIS_DB (default 15) and the one below it. Two suites
# running at once on one Redis (CI runs its SQLite and MariaDB suites side by side) each set their own.
TEST_REDIS_DB = int(os.environ.get("TEST_REDIS_DB", "15"))
TEST_REDIS_URL = f"redis://127.0.0.1:6379/{TEST_REDIS_DB}"
TEST_REDIS_URL_SPARE = f"redis://127.0.0.1:6379/{TEST_REDIS_DB - 1}"


async def flush_test_redis(url: str) -> None:
    """Empty the Redis database the multi-instance tests share (TEST_REDIS_URL): counters a test left behind (login
    attempts per address, rate-limit windows) must not count against the next test's logins."""
    from redis.asyncio import Redis

    redis = Redis.from_url(url)
    try:
        await redis.flushdb()
    finally:
        await redis.aclose()


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "demo_password": DEMO_PASSWORD,
        "redis_url": None,
        "wechat_app_id": "wx-test-app",
        "wechat_app_secret": "wx-test-secret",
        # Writes seal their audit events before they answer: tests that tamper with events stay deterministic
        # (tests/test_audit_chain.py runs the background sealer on its own).
        "audit_seal_interval_seconds": 0,
        # Each test builds an app: frozen objects would never be collected (tests/test_gctune.py tests it once).
        "gc_freeze": False,
        "gc_threshold0": 0,
        # No job fires on its own in the middle of another module's test (tests/test_operations_* switch it on).
        "scheduler_enabled": False,
        **SPEEDUPS_OFF,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


class GraphQLClient:
    """Speaks GraphQL over HTTP to the app, as a console or mini-program would."""

    def __init__(self, http: httpx.AsyncClient, app: Any) -> None:
        self.http = http
        self.app = app
        self._tokens: dict[str, str] = {}
        # Accounts holding the patient role run only the mini-program's trusted documents, however they log in
        # (policies/roles.py held_to_trusted_documents): their documents are registered first, then sent by hash.
        self._trusted_only: set[str] = set()
        self._registered: set[str] = set()
        self._trusted_tokens: set[str] = set()

    @property
    def services(self) -> Any:
        return self.app.state.services

    async def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        all_headers = dict(headers or {})
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = variables
        return await self.http.post("/graphql", json=body, headers=all_headers)

    async def run(
        self, query: str, variables: dict[str, Any] | None = None, *, as_: str | None = None, token: str | None = None
    ) -> dict[str, Any]:
        if as_ is not None:
            token = await self.token(as_)
            if as_ in self._trusted_only:
                return await self.run_trusted(query, variables, token=token)
        elif token in self._trusted_tokens:
            return await self.run_trusted(query, variables, token=token)
        response = await self.post(query, variables, token=token)
        assert response.status_code in (200, 400), response.text
        result: dict[str, Any] = response.json()
        if as_ is not None and error_codes(result) == ["PERSISTED_QUERY_REQUIRED"]:
            self._trusted_only.add(as_)  # the account became a patient (bindPatientRecord) after logging in
            return await self.run_trusted(query, variables, token=token)  # type: ignore[arg-type]
        return result

    def hold_to_trusted(self, token: str) -> None:
        """Send this token's documents as the mini-program does (an account that became a patient)."""
        self._trusted_tokens.add(token)

    async def register_trusted(self, query: str) -> str:
        """Register a document as one of the mini-program's trusted documents (as `load-documents` does); its hash."""
        from graphql import GraphQLError, parse

        from schema.engine.persisted import sha256_hex, store_documents

        digest = sha256_hex(query)
        if digest not in self._registered:
            try:
                parse(query)
            except GraphQLError:
                return digest  # a syntax error is no document: sent as it is, it is refused as any other
            await store_documents(self.services.db, "mini-program", {digest: query})
            await self.services.persisted.trusted.load()
            self._registered.add(digest)
        return digest

    async def post_trusted(self, query: str, variables: dict[str, Any] | None = None, *, token: str) -> httpx.Response:
        """As the mini-program sends a document: registered as one of its trusted documents, sent by hash."""
        digest = await self.register_trusted(query)
        body: dict[str, Any] = {"query": query, "extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest}}}
        if variables is not None:
            body["variables"] = variables
        return await self.http.post("/graphql", json=body, headers={"Authorization": f"Bearer {token}"})

    async def run_trusted(self, query: str, variables: dict[str, Any] | None = None, *, token: str) -> dict[str, Any]:
        response = await self.post_trusted(query, variables, token=token)
        assert response.status_code in (200, 400), response.text
        result: dict[str, Any] = response.json()
        return result

    async def data(
        self, query: str, variables: dict[str, Any] | None = None, *, as_: str | None = None, token: str | None = None
    ) -> dict[str, Any]:
        result = await self.run(query, variables, as_=as_, token=token)
        assert "errors" not in result, result
        data: dict[str, Any] = result["data"]
        return data

    async def login(self, username: str, password: str = DEMO_PASSWORD) -> dict[str, Any]:
        result = await self.data(LOGIN, {"u": username, "p": password})
        payload: dict[str, Any] = result["login"]
        return payload

    async def token(self, username: str) -> str:
        if username not in self._tokens:
            payload = await self.login(username)
            self._tokens[username] = payload["accessToken"]
            if "patient" in {role["key"] for role in payload["user"]["roles"]}:
                self._trusted_only.add(username)
        return self._tokens[username]

    def forget(self, username: str) -> None:
        self._tokens.pop(username, None)


LOGIN = """
mutation ($u: String!, $p: String!, $totp: String) {
  login(username: $u, password: $p, totp: $totp) {
    accessToken refreshToken expiresIn mustChangePassword
    user { id username displayName roles { key name } }
  }
}
"""


def error_codes(result: dict[str, Any]) -> list[str]:
    return [error.get("extensions", {}).get("code") for error in result.get("errors", [])]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
async def app(database_url: str, settings_overrides: dict[str, Any]) -> AsyncIterator[Any]:
    await reset_database(database_url)
    application = create_app(make_settings(database_url, **settings_overrides))
    async with application.router.lifespan_context(application) as state:
        application.state.lifespan = state  # what uvicorn would keep (tests/test_production_door.py)
        yield application


@pytest.fixture
async def client(app: Any) -> AsyncIterator[GraphQLClient]:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield GraphQLClient(http, app)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()

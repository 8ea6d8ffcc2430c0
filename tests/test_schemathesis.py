"""Property-based fuzzing of each demo role's own schema with schemathesis: whatever a role may send,
the server never fails (no 5xx, no INTERNAL error) and every answer is a well-formed GraphQL response.

Each role runs against a freshly seeded throw-away database (its own SQLite file, or its own MariaDB
database when TEST_DATABASE_URL is MySQL), so what one role's fuzzing changes cannot break the next.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
import schemathesis
from graphql.language import StringValueNode
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import response_schema_conformance
from schemathesis.python import asgi
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from cli import run_migrations
from core.errors import ErrorCode
from server import create_app
from tests.conftest import DEMO_PASSWORD, LOGIN, error_codes, make_settings, reset_database

# A file arrives only in a multipart request (tests/test_appointment_import.py); fuzzed in JSON as a string, it is
# refused as BAD_USER_INPUT.
schemathesis.graphql.scalar("Upload", st.text(max_size=20).map(lambda value: StringValueNode(value=value)))

ROLES: list[str | None] = [None, "admin", "deptadmin", "chief", "physician", "patient"]
EXAMPLES_PER_OPERATION = 3
KNOWN_CODES = {code.value for code in ErrorCode} - {ErrorCode.INTERNAL.value}
# Not fuzzed: wechatLogin asks WeChat's servers (tests/test_auth_wechat.py covers it against a fake WeChat, and
# tests/test_mini_program_local.py the demo stand-in).
EXCLUDED = ["Mutation.wechatLogin"]
# These end the fuzzer's own session: fuzzed last for each role, and only they may meet a 401 (the session
# they ended). Any other operation that ends the session fails the test: add it here.
SESSION_ENDING = ["Mutation.logout", "Mutation.deleteMyAccount"]
# These verify a password (argon2, ~0.2 s a call) whoever asks: fuzzed once, for the first role that has them.
PASSWORD_CHECKING = {"Mutation.login", "Mutation.changePassword", "Mutation.disableTotp"}


async def _mysql(server_url: str, statement: str) -> None:
    engine = create_async_engine(server_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def fuzz_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throw-away database of its own, migrated; dropped afterwards on MySQL."""
    shared = os.environ.get("TEST_DATABASE_URL", "")
    if shared.startswith("mysql"):
        url = make_url(shared)
        name = f"{url.database}_fuzz_{uuid.uuid4().hex[:8]}"
        server_url = url.set(database="").render_as_string(hide_password=False)
        asyncio.run(_mysql(server_url, f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
        try:
            database_url = url.set(database=name).render_as_string(hide_password=False)
            run_migrations(database_url)
            yield database_url
        finally:
            asyncio.run(_mysql(server_url, f"DROP DATABASE IF EXISTS `{name}`"))
    else:
        database_url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('fuzz')}/fuzz.db"
        run_migrations(database_url)
        yield database_url


def _check(case: Any, response: Any, role: str | None) -> None:
    if case.operation.label in SESSION_ENDING and response.status_code == 401:
        assert error_codes(response.json()) == ["UNAUTHENTICATED"], response.text
        return
    where = f"{role or 'anonymous'} {case.operation.label}: {case.body!r}"
    assert response.status_code < 500, f"{where} -> HTTP {response.status_code}: {response.text}"
    # A bad token is 401; the fuzzer's token must stay good throughout.
    assert response.status_code != 401, f"{where} -> the session ended: {response.text}"
    payload = response.json()
    assert isinstance(payload, dict) and ("data" in payload or "errors" in payload), where
    for error in payload.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        assert code in KNOWN_CODES, f"{where} -> {code}: {error}"
    case.validate_response(response, checks=[response_schema_conformance])


def _fuzz_role(database_url: str, role: str | None, fuzzed: set[str]) -> int:
    if role != "patient":
        return _fuzz(database_url, role, fuzzed)
    # A patient's sessions run only the mini-program's trusted documents (tests/test_auth_patient_accounts.py):
    # here the fuzzer stands in for the mini-program's build, so its documents reach the patient's resolvers.
    with mock.patch("resolvers.data.principal.held_to_trusted_documents", lambda client, roles: False):
        return _fuzz(database_url, role, fuzzed)


def _fuzz(database_url: str, role: str | None, fuzzed: set[str]) -> int:
    asyncio.run(reset_database(database_url))
    app = create_app(make_settings(database_url))
    headers: dict[str, str] = {}
    with asgi.get_client(app) as client:  # starts the app's lifespan (kept until shutdown_lifespans)
        if role is not None:
            login = client.post("/graphql", json={"query": LOGIN, "variables": {"u": role, "p": DEMO_PASSWORD}})
            headers["Authorization"] = f"Bearer {login.json()['data']['login']['accessToken']}"
    schema = schemathesis.graphql.from_asgi("/graphql", app, headers=headers).exclude(name=EXCLUDED)
    calls = 0

    def case_runner(strategy: Any) -> Any:
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            derandomize=True,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate, Phase.shrink],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def run(case: Any) -> None:
            nonlocal calls
            calls += 1
            _check(case, case.call(headers=headers), role)

        return run

    # Every operation of the role's schema gets its own few examples, so none is left out.
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in sorted(operations, key=lambda operation: operation.label in SESSION_ENDING):
        if operation.label in PASSWORD_CHECKING and operation.label in fuzzed:
            continue
        fuzzed.add(operation.label)
        case_runner(operation.as_strategy())()
    return calls


def test_no_role_can_make_the_server_fail(fuzz_database_url: str) -> None:
    fuzzed: set[str] = set()
    try:
        for role in ROLES:
            assert _fuzz_role(fuzz_database_url, role, fuzzed) >= EXAMPLES_PER_OPERATION, role
        assert PASSWORD_CHECKING <= fuzzed
    finally:
        asgi.shutdown_lifespans()


def test_each_role_is_fuzzed_against_its_own_schema(fuzz_database_url: str) -> None:
    """The operations schemathesis sees are exactly the role's schema: a physician's holds no user admin."""
    asyncio.run(reset_database(fuzz_database_url))
    app = create_app(make_settings(fuzz_database_url))
    try:
        labels: dict[str | None, set[str]] = {}
        for role in (None, "physician", "admin"):
            headers: dict[str, str] = {}
            with asgi.get_client(app) as client:
                if role is not None:
                    login = client.post("/graphql", json={"query": LOGIN, "variables": {"u": role, "p": DEMO_PASSWORD}})
                    headers["Authorization"] = f"Bearer {login.json()['data']['login']['accessToken']}"
            schema = schemathesis.graphql.from_asgi("/graphql", app, headers=headers)
            labels[role] = {result.ok().label for result in schema.get_all_operations()}
        assert labels[None] == {"Query.serverInfo", "Mutation.login", "Mutation.refreshToken", "Mutation.wechatLogin"}
        assert "Query.departments" in labels["physician"] and "Mutation.assignRoles" not in labels["physician"]
        assert {"Mutation.assignRoles", "Mutation.grantPermission", "Query.auditEvents"} <= labels["admin"]
    finally:
        asgi.shutdown_lifespans()

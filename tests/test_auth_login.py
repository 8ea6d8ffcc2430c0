"""Password login over HTTP: the payload, the login log, disabled accounts and the lockout per account and address."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from core.db import Database
from core.ids import decode_id
from core.security import verify_password
from models.auth import AuthSession, LoginLog
from models.user import User
from tests.conftest import DEMO_PASSWORD, LOGIN, GraphQLClient, error_codes
from tests.test_auth_profile import stored_user

AGENT = "pytest-console/1.0"


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    return dict(getattr(request, "param", {}))


async def attempt(
    client: GraphQLClient,
    username: str,
    password: str,
    *,
    forwarded_for: str | None = None,
    totp: str | None = None,
) -> dict[str, Any]:
    headers = {"User-Agent": AGENT}
    if forwarded_for:
        headers["X-Forwarded-For"] = forwarded_for
    response = await client.post(LOGIN, {"u": username, "p": password, "totp": totp}, headers=headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def login_log(db: Database, username: str) -> list[LoginLog]:
    async with db.session() as session:
        statement = select(LoginLog).where(LoginLog.username == username).order_by(LoginLog.id)  # type: ignore[arg-type]
        return list((await session.execute(statement)).scalars().all())


async def age_login_log(db: Database, username: str, minutes: float) -> None:
    """Pretend the logged attempts happened `minutes` earlier than they did."""
    async with db.transaction() as session:
        rows = (await session.execute(select(LoginLog).where(LoginLog.username == username))).scalars().all()
        for row in rows:
            row.created_at = row.created_at - timedelta(minutes=minutes)
            session.add(row)


# ---- success and failure ---------------------------------------------------------------------------


async def test_login_returns_tokens_and_user_with_roles(client: GraphQLClient, db: Database) -> None:
    result = await attempt(client, "physician", DEMO_PASSWORD)
    assert "errors" not in result, result
    payload = result["data"]["login"]
    assert payload["accessToken"].count(".") == 2  # a JWT
    assert len(payload["refreshToken"]) >= 40
    assert payload["expiresIn"] == 900
    assert payload["mustChangePassword"] is False
    assert payload["user"]["username"] == "physician"
    assert [role["key"] for role in payload["user"]["roles"]] == ["physician"]

    # The tokens work, and a session row now exists for this user.
    me = await client.data("{ me { username } }", token=payload["accessToken"])
    assert me["me"]["username"] == "physician"
    user_id = decode_id("User", payload["user"]["id"])
    async with db.session() as session:
        sessions = (await session.execute(select(AuthSession).where(AuthSession.user_id == user_id))).scalars().all()
    assert len(sessions) == 1
    assert sessions[0].revoked_at is None
    assert sessions[0].ip == "127.0.0.1" and sessions[0].user_agent == AGENT

    [entry] = await login_log(db, "physician")
    assert (entry.user_id, entry.success, entry.reason, entry.method) == (user_id, True, "ok", "password")
    assert entry.ip == "127.0.0.1" and entry.user_agent == AGENT


async def test_username_is_case_and_space_insensitive(client: GraphQLClient) -> None:
    result = await attempt(client, "  PhysicIAN ", DEMO_PASSWORD)
    assert "errors" not in result, result
    assert result["data"]["login"]["user"]["username"] == "physician"


async def test_wrong_password_and_unknown_user_look_the_same(client: GraphQLClient, db: Database) -> None:
    wrong = await attempt(client, "physician", "Not-the-password#1")
    unknown = await attempt(client, "nobody-here", DEMO_PASSWORD)
    for result in (wrong, unknown):
        assert error_codes(result) == ["UNAUTHENTICATED"]
        assert result["data"] is None
    assert wrong["errors"][0]["message"] == unknown["errors"][0]["message"]
    assert wrong["errors"][0]["extensions"] == unknown["errors"][0]["extensions"]

    [bad_password] = await login_log(db, "physician")
    assert bad_password.success is False and bad_password.reason == "bad_credentials"
    assert bad_password.user_id is not None
    assert bad_password.ip == "127.0.0.1" and bad_password.user_agent == AGENT
    [no_user] = await login_log(db, "nobody-here")
    assert no_user.success is False and no_user.reason == "bad_credentials" and no_user.user_id is None
    async with db.session() as session:
        assert (await session.execute(select(AuthSession))).first() is None  # no session opened


async def test_disabled_account_is_refused(client: GraphQLClient, db: Database) -> None:
    before = await client.login("physician")
    user_id = before["user"]["id"]
    disabled = await client.data(
        "mutation ($id: ID!) { disableUser(id: $id) { status } }", {"id": user_id}, as_="admin"
    )
    assert disabled["disableUser"]["status"] == "DISABLED"

    result = await attempt(client, "physician", DEMO_PASSWORD)
    assert error_codes(result) == ["UNAUTHENTICATED"]
    assert (await login_log(db, "physician"))[-1].reason == "disabled"
    # The session opened before the account was disabled ends at once.
    response = await client.post("{ me { id } }", token=before["accessToken"])
    assert response.status_code == 401

    await client.data("mutation ($id: ID!) { enableUser(id: $id) { status } }", {"id": user_id}, as_="admin")
    assert "errors" not in await attempt(client, "physician", DEMO_PASSWORD)


# ---- lockout -----------------------------------------------------------------------------------------


async def fail_times(client: GraphQLClient, username: str, times: int, **kwargs: Any) -> None:
    for _ in range(times):
        result = await attempt(client, username, "Wrong-password#9", **kwargs)
        assert error_codes(result) == ["UNAUTHENTICATED"], result


async def test_five_failures_lock_the_account_for_that_address(client: GraphQLClient, db: Database) -> None:
    await fail_times(client, "chief", 4)
    # Four failures: the right password still works (and a success clears the count).
    assert "errors" not in await attempt(client, "chief", DEMO_PASSWORD)
    await fail_times(client, "chief", 5)

    locked = await attempt(client, "chief", DEMO_PASSWORD)
    assert error_codes(locked) == ["RATE_LIMITED"]
    retry_after = locked["errors"][0]["extensions"]["retryAfter"]
    assert 590 <= retry_after <= 601
    assert "accessToken" not in str(locked.get("data"))

    entries = await login_log(db, "chief")
    assert [e.reason for e in entries] == ["bad_credentials"] * 4 + ["ok"] + ["bad_credentials"] * 5 + ["locked"]
    assert entries[-1].success is False and entries[-1].ip == "127.0.0.1"

    # Another account from the same address is not locked.
    assert "errors" not in await attempt(client, "physician", DEMO_PASSWORD)


async def test_lock_lifts_by_itself(client: GraphQLClient, db: Database) -> None:
    await fail_times(client, "chief", 5)
    assert error_codes(await attempt(client, "chief", DEMO_PASSWORD)) == ["RATE_LIMITED"]
    await age_login_log(db, "chief", 9)
    still = await attempt(client, "chief", DEMO_PASSWORD)
    assert error_codes(still) == ["RATE_LIMITED"]
    assert 0 < still["errors"][0]["extensions"]["retryAfter"] <= 61
    await age_login_log(db, "chief", 1.1)
    result = await attempt(client, "chief", DEMO_PASSWORD)
    assert "errors" not in result, result


async def test_failures_spread_over_more_than_the_window_do_not_lock(client: GraphQLClient, db: Database) -> None:
    await fail_times(client, "chief", 4)
    await age_login_log(db, "chief", 11)
    await fail_times(client, "chief", 1)
    assert "errors" not in await attempt(client, "chief", DEMO_PASSWORD)


async def test_unknown_usernames_lock_too(client: GraphQLClient) -> None:
    await fail_times(client, "ghost", 5)
    assert error_codes(await attempt(client, "ghost", "whatever")) == ["RATE_LIMITED"]


@pytest.mark.parametrize("settings_overrides", [{"trusted_proxies": ["127.0.0.1/32"]}], indirect=True)
async def test_lockout_is_per_client_address_behind_a_trusted_proxy(client: GraphQLClient, db: Database) -> None:
    await fail_times(client, "chief", 5, forwarded_for="203.0.113.7")
    locked = await attempt(client, "chief", DEMO_PASSWORD, forwarded_for="203.0.113.7")
    assert error_codes(locked) == ["RATE_LIMITED"]
    # The proxy adds its own hop for a client that sent a forged header: the real client is the last untrusted hop.
    spoofed = await attempt(client, "chief", DEMO_PASSWORD, forwarded_for="198.51.100.1, 203.0.113.7")
    assert error_codes(spoofed) == ["RATE_LIMITED"]
    other = await attempt(client, "chief", DEMO_PASSWORD, forwarded_for="198.51.100.23")
    assert "errors" not in other, other
    entries = await login_log(db, "chief")
    assert {e.ip for e in entries} == {"203.0.113.7", "198.51.100.23"}
    assert entries[-1].ip == "198.51.100.23" and entries[-1].success is True


@pytest.mark.parametrize("settings_overrides", [{}, {"trusted_proxies": ["10.0.0.0/8"]}], indirect=True)
async def test_forwarded_for_is_ignored_from_an_untrusted_peer(client: GraphQLClient, db: Database) -> None:
    await fail_times(client, "chief", 5, forwarded_for="203.0.113.7")
    # A client cannot escape the lock by claiming another address.
    locked = await attempt(client, "chief", DEMO_PASSWORD, forwarded_for="198.51.100.23")
    assert error_codes(locked) == ["RATE_LIMITED"]
    assert {e.ip for e in await login_log(db, "chief")} == {"127.0.0.1"}


async def test_parallel_wrong_passwords_are_counted_before_any_is_checked(
    client: GraphQLClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """15 wrong passwords at once against a limit of 5: at most 5 reach the password check."""
    import importlib

    login_module = importlib.import_module("resolvers.auth.login")  # the package exports a function `login`

    checked: list[str] = []
    verify = login_module.verify_password_off_loop

    async def counted(stored: str | None, password: str) -> bool:
        checked.append(password)
        await asyncio.sleep(0.05)  # a slow hash: every request is in flight before the first one is answered
        return await verify(stored, password)

    monkeypatch.setattr(login_module, "verify_password_off_loop", counted)
    results = await asyncio.gather(*(attempt(client, "chief", f"Wrong-password#{i:02d}") for i in range(15)))
    codes = sorted(code for result in results for code in error_codes(result))
    assert len(checked) <= 5, f"{len(checked)} passwords checked"
    assert codes == ["RATE_LIMITED"] * 10 + ["UNAUTHENTICATED"] * 5
    reasons = sorted(entry.reason for entry in await login_log(db, "chief"))
    assert reasons == ["bad_credentials"] * 5 + ["locked"] * 10  # none left pending
    # and the right password is refused now too, without being checked
    assert error_codes(await attempt(client, "chief", DEMO_PASSWORD)) == ["RATE_LIMITED"]
    assert len(checked) == 5


def test_the_server_hashes_passwords_with_argon2id_at_production_strength() -> None:
    """The suite hashes at test strength (tests/conftest.py); the server, in a process of its own, never does."""
    code = "from core.security import hash_password, verify_password as v; h = hash_password('Pw#2026-x'); "
    code += "print(h if v(h, 'Pw#2026-x') and not v(h, 'other') else 'unverified')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out.startswith("$argon2id$v=19$m=65536,t=3,p=4$"), out  # RFC 9106's second recommended option


async def test_a_hash_with_other_parameters_is_rehashed_at_login(client: GraphQLClient, db: Database) -> None:
    older = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1).hash(DEMO_PASSWORD)
    async with db.transaction() as session:
        user = (await session.execute(select(User).where(User.username == "physician"))).scalar_one()
        user.password_hash = older
        session.add(user)
    assert (await client.login("physician"))["accessToken"]
    stored = await stored_user(db, "physician")
    assert stored.password_hash != older and "$m=2048," not in stored.password_hash
    assert verify_password(stored.password_hash, DEMO_PASSWORD)

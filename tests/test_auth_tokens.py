"""Access tokens, refresh-token rotation with replay detection, logout and idle sessions, over HTTP."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from sqlalchemy import select

from core.db import Database
from core.ids import decode_id
from core.security import token_digest
from core.settings import DEMO_JWT_SECRET
from models.audit import Event
from models.auth import AuthSession, RefreshToken
from tests.conftest import DEMO_PASSWORD, GraphQLClient, error_codes

ME = "{ me { username } }"
REFRESH = """
mutation ($t: String!) { refreshToken(token: $t) { accessToken refreshToken expiresIn user { username } } }
"""
LOGOUT = "mutation { logout }"


async def refresh(client: GraphQLClient, token: str) -> dict[str, Any]:
    return await client.run(REFRESH, {"t": token})


async def session_of(db: Database, access_token: str) -> AuthSession:
    sid = jwt.decode(access_token, options={"verify_signature": False})["sid"]
    async with db.session() as session:
        row = await session.get(AuthSession, sid)
    assert row is not None
    return row


async def assert_401(client: GraphQLClient, token: str | None = None, headers: dict[str, str] | None = None) -> None:
    response = await client.post(ME, token=token, headers=headers)
    assert response.status_code == 401, response.text
    body = response.json()
    assert error_codes(body) == ["UNAUTHENTICATED"]
    assert "data" not in body
    assert response.headers["www-authenticate"].startswith("Bearer")


def forge(claims: dict[str, Any], secret: str = DEMO_JWT_SECRET) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


# ---- access tokens -------------------------------------------------------------------------------


async def test_without_a_token_a_private_field_fails_validation(client: GraphQLClient) -> None:
    # By design: no token is the anonymous schema, where `me` does not exist.
    result = await client.run(ME)
    assert error_codes(result) == ["GRAPHQL_VALIDATION_FAILED"]
    response = await client.http.post(
        "/graphql", json={"query": ME}, headers={"Accept": "application/graphql-response+json"}
    )
    assert response.status_code == 400
    # With a token the same query works.
    assert (await client.data(ME, as_="physician"))["me"]["username"] == "physician"


async def test_bad_tokens_are_401_never_anonymous(client: GraphQLClient) -> None:
    good = await client.login("physician")
    claims = jwt.decode(good["accessToken"], options={"verify_signature": False})
    now = int(datetime.now(UTC).timestamp())

    await assert_401(client, "not-a-jwt")
    await assert_401(client, good["accessToken"][:-3] + "AAA")  # signature broken
    await assert_401(client, forge(claims, secret="x" * 40))  # signed with another key
    await assert_401(client, forge({**claims, "iat": now - 3600, "exp": now - 60}))  # expired
    await assert_401(client, forge({**claims, "typ": "refresh"}))  # not an access token
    await assert_401(client, forge({**claims, "sid": "0" * 32}))  # no such session
    admin_id = decode_id("User", (await client.login("admin"))["user"]["id"])
    await assert_401(client, forge({**claims, "sub": str(admin_id)}))  # another user's id on this session
    # Even a query the anonymous schema could answer is refused with a bad token.
    response = await client.post("{ serverInfo { name } }", token="not-a-jwt")
    assert response.status_code == 401
    # The untouched token still works.
    assert (await client.data(ME, token=good["accessToken"]))["me"]["username"] == "physician"


@pytest.mark.parametrize("header", ["Basic cGh5c2ljaWFuOng=", "Token abc", "Bearer", "Bearer   "])
async def test_non_bearer_authorization_is_401(client: GraphQLClient, header: str) -> None:
    await assert_401(client, headers={"Authorization": header})


async def test_access_token_lifetime_follows_the_setting(client: GraphQLClient) -> None:
    payload = await client.login("physician")
    claims = jwt.decode(payload["accessToken"], DEMO_JWT_SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 900 == payload["expiresIn"]


# ---- refresh tokens ------------------------------------------------------------------------------


async def test_refresh_rotates_and_the_old_token_then_fails(client: GraphQLClient, db: Database) -> None:
    first = await client.login("physician")
    second = (await client.data(REFRESH, {"t": first["refreshToken"]}))["refreshToken"]
    assert second["refreshToken"] != first["refreshToken"]
    assert second["accessToken"] != first["accessToken"]
    assert second["expiresIn"] == 900 and second["user"]["username"] == "physician"
    assert (await client.data(ME, token=second["accessToken"]))["me"]["username"] == "physician"
    # Both belong to one session; only digests are stored.
    assert (await session_of(db, first["accessToken"])).id == (await session_of(db, second["accessToken"])).id
    async with db.session() as session:
        tokens = (await session.execute(select(RefreshToken))).scalars().all()
    by_hash = {row.token_hash: row for row in tokens}
    assert first["refreshToken"] not in by_hash and second["refreshToken"] not in by_hash
    assert by_hash[token_digest(first["refreshToken"])].used_at is not None
    assert by_hash[token_digest(second["refreshToken"])].used_at is None

    third = (await client.data(REFRESH, {"t": second["refreshToken"]}))["refreshToken"]
    assert (await client.data(ME, token=third["accessToken"]))["me"]["username"] == "physician"


async def test_replayed_refresh_token_ends_the_whole_session(client: GraphQLClient, db: Database) -> None:
    first = await client.login("physician")
    other = await client.login("physician")  # another session of the same user
    second = (await client.data(REFRESH, {"t": first["refreshToken"]}))["refreshToken"]

    replay = await refresh(client, first["refreshToken"])
    assert error_codes(replay) == ["UNAUTHENTICATED"]
    assert replay["data"] is None
    auth_session = await session_of(db, second["accessToken"])
    assert auth_session.revoked_at is not None and auth_session.revoke_reason == "refresh_token_replayed"
    await assert_401(client, second["accessToken"])
    await assert_401(client, first["accessToken"])
    assert error_codes(await refresh(client, second["refreshToken"])) == ["UNAUTHENTICATED"]
    # The user's other session is untouched.
    assert (await client.data(ME, token=other["accessToken"]))["me"]["username"] == "physician"
    assert "errors" not in await refresh(client, other["refreshToken"])
    # Each refresh is a write with its event; the replay's is the session it ended. The refusals are recorded.
    async with db.session() as session:
        rows = (
            await session.execute(select(Event).where(Event.operation == "refreshToken").order_by(Event.id))
        ).scalars()  # type: ignore[arg-type]
        summary = [(e.action, e.outcome, e.entity_id, e.detail) for e in rows]
    ended = auth_session.id
    assert summary == [
        ("login", "success", ended, None),
        ("logout", "success", ended, {"reason": "refresh_token_replayed", "ended": True}),
        ("mutation", "unauthenticated", "", None),
        ("mutation", "unauthenticated", "", None),
        ("login", "success", (await session_of(db, other["accessToken"])).id, None),
    ]


async def test_unknown_refresh_token_is_refused(client: GraphQLClient) -> None:
    assert error_codes(await refresh(client, "made-up-token")) == ["UNAUTHENTICATED"]
    # An access token is not a refresh token.
    payload = await client.login("physician")
    assert error_codes(await refresh(client, payload["accessToken"])) == ["UNAUTHENTICATED"]


async def test_refresh_of_an_expired_session_fails(client: GraphQLClient, db: Database) -> None:
    payload = await client.login("physician")
    auth_session = await session_of(db, payload["accessToken"])
    async with db.transaction() as session:
        auth_session.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        session.add(auth_session)
    assert error_codes(await refresh(client, payload["refreshToken"])) == ["UNAUTHENTICATED"]
    await assert_401(client, payload["accessToken"])


# ---- logout and idle sessions --------------------------------------------------------------------


async def test_logout_ends_the_session_at_once(client: GraphQLClient, db: Database) -> None:
    payload = await client.login("physician")
    other = await client.login("physician")
    assert (await client.data(LOGOUT, token=payload["accessToken"]))["logout"] is True
    auth_session = await session_of(db, payload["accessToken"])
    assert auth_session.revoked_at is not None and auth_session.revoke_reason == "logout"
    await assert_401(client, payload["accessToken"])
    assert error_codes(await refresh(client, payload["refreshToken"])) == ["UNAUTHENTICATED"]
    # Only that session: the other one goes on.
    assert (await client.data(ME, token=other["accessToken"]))["me"]["username"] == "physician"
    # Anonymous callers have no logout at all.
    assert error_codes(await client.run(LOGOUT)) == ["GRAPHQL_VALIDATION_FAILED"]


async def set_last_seen(db: Database, access_token: str, minutes_ago: float) -> None:
    auth_session = await session_of(db, access_token)
    async with db.transaction() as session:
        auth_session.last_seen_at = datetime.now(UTC) - timedelta(minutes=minutes_ago)
        session.add(auth_session)


async def test_idle_session_ends(client: GraphQLClient, db: Database) -> None:
    payload = await client.login("physician")
    await set_last_seen(db, payload["accessToken"], 31)
    await assert_401(client, payload["accessToken"])
    assert error_codes(await refresh(client, payload["refreshToken"])) == ["UNAUTHENTICATED"]


async def test_use_keeps_a_session_alive(client: GraphQLClient, db: Database) -> None:
    payload = await client.login("physician")
    await set_last_seen(db, payload["accessToken"], 29)
    assert (await client.data(ME, token=payload["accessToken"]))["me"]["username"] == "physician"
    touched = await session_of(db, payload["accessToken"])
    assert datetime.now(UTC) - touched.last_seen_at < timedelta(minutes=1)
    await set_last_seen(db, payload["accessToken"], 29)
    assert "errors" not in await refresh(client, payload["refreshToken"])


# ---- logs ----------------------------------------------------------------------------------------


async def test_no_password_or_token_in_the_logs(client: GraphQLClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "Wrong-Secret#4711"
    await client.run(
        "mutation ($u: String!, $p: String!) { login(username: $u, password: $p) { accessToken } }",
        {"u": "physician", "p": wrong},
    )
    payload = await client.login("physician")
    rotated = (await client.data(REFRESH, {"t": payload["refreshToken"]}))["refreshToken"]
    await refresh(client, payload["refreshToken"])  # a replay
    await client.post(ME, token="garbage-token-value")
    secrets = [
        DEMO_PASSWORD,
        wrong,
        payload["accessToken"],
        payload["refreshToken"],
        rotated["accessToken"],
        rotated["refreshToken"],
        "garbage-token-value",
    ]
    text = "\n".join(record.getMessage() + " " + str(record.args) + str(record.exc_text) for record in caplog.records)
    text += caplog.text
    for secret in secrets:
        assert secret not in text


async def test_a_verified_token_is_not_honoured_past_its_expiry(
    client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A token is verified once and then recognised (core/security.py): its expiry still holds on every use.
    import core.security as security

    login_token = (await client.login("physician"))["accessToken"]
    claims = jwt.decode(login_token, DEMO_JWT_SECRET, algorithms=["HS256"])
    expires = int(datetime.now(UTC).timestamp()) + 600
    short = jwt.encode({**claims, "exp": expires}, DEMO_JWT_SECRET, algorithm="HS256")
    me = "{ me { username } }"
    assert (await client.data(me, token=short))["me"]["username"] == "physician"
    assert (short, DEMO_JWT_SECRET) in security._VERIFIED  # recognised from now on
    assert (await client.data(me, token=short))["me"]["username"] == "physician"
    # the clock of the token check moves past its expiry (a sleep would make the test depend on the machine's load)
    monkeypatch.setattr(security, "utcnow", lambda: datetime.fromtimestamp(expires + 1, UTC))
    refused = await client.post(me, token=short)
    assert refused.status_code == 401 and refused.json()["errors"][0]["extensions"]["reason"] == "TOKEN_EXPIRED"
    assert (short, DEMO_JWT_SECRET) not in security._VERIFIED
    monkeypatch.undo()

    # The same with a clock moved past the expiry of a recognised token, and another secret is another key.
    assert security.decode_access_token(login_token, secret=DEMO_JWT_SECRET) is not None
    assert security.decode_access_token(login_token, secret="another-secret-of-enough-length-0123456789") is None
    known = security._VERIFIED.get((login_token, DEMO_JWT_SECRET))
    assert known is not None
    expiry = known.expires_at
    monkeypatch.setattr(security, "utcnow", lambda: expiry + timedelta(seconds=1))
    assert security.decode_access_token(login_token, secret=DEMO_JWT_SECRET) is None

"""Changing and resetting passwords: the policy, other sessions ending, and the must-change restriction."""

from __future__ import annotations

from typing import Any

import jwt
import pytest
from sqlalchemy import select

from core.db import Database
from core.ids import decode_id
from core.security import verify_password
from models.audit import Event
from models.auth import AuthSession
from models.user import User
from tests.conftest import DEMO_PASSWORD, LOGIN, GraphQLClient, error_codes

CHANGE = """
mutation ($old: String!, $new: String!) {
  changePassword(oldPassword: $old, newPassword: $new) { username mustChangePassword }
}
"""
RESET = """
mutation ($id: ID!, $pw: String) { resetPassword(userId: $id, newPassword: $pw) { temporaryPassword user { mustChangePassword } } }
"""
SCHEMA = "{ __schema { queryType { fields { name } } mutationType { fields { name } } } }"
NEW_PASSWORD = "Brand-New#Pass42"


async def stored_user(db: Database, username: str) -> User:
    async with db.session() as session:
        user = (await session.execute(select(User).where(User.username == username))).scalar_one()
    return user


def sid(payload: dict[str, Any]) -> str:
    session_id: str = jwt.decode(payload["accessToken"], options={"verify_signature": False})["sid"]
    return session_id


async def schema_fields(client: GraphQLClient, token: str) -> tuple[set[str], set[str]]:
    schema = (await client.data(SCHEMA, token=token))["__schema"]
    mutations = schema["mutationType"]["fields"] if schema["mutationType"] else []
    return {f["name"] for f in schema["queryType"]["fields"]}, {f["name"] for f in mutations}


async def change(client: GraphQLClient, token: str, old: str, new: str) -> dict[str, Any]:
    return await client.run(CHANGE, {"old": old, "new": new}, token=token)


@pytest.mark.parametrize(
    ("new_password", "why"),
    [
        ("Sh0rt#pw", "at least 10"),
        ("alllowercaseletters", "three of"),
        ("lowercase12345", "three of"),
        ("My-physician#2026", "username"),
        ("My-PHYSICIAN#2026", "username"),
    ],
)
async def test_password_policy_refuses_and_stores_nothing(
    client: GraphQLClient, db: Database, new_password: str, why: str
) -> None:
    before = await stored_user(db, "physician")
    token = (await client.login("physician"))["accessToken"]
    result = await change(client, token, DEMO_PASSWORD, new_password)
    assert error_codes(result) == ["BAD_USER_INPUT"]
    assert why in result["errors"][0]["message"]
    after = await stored_user(db, "physician")
    assert after.password_hash == before.password_hash
    assert verify_password(after.password_hash, DEMO_PASSWORD)
    async with db.session() as session:
        refused = (await session.execute(select(Event).where(Event.operation == "changePassword"))).scalars().all()
    assert [event.outcome for event in refused] == ["bad_user_input"]


async def test_wrong_old_password_is_refused(client: GraphQLClient, db: Database) -> None:
    before = await stored_user(db, "physician")
    token = (await client.login("physician"))["accessToken"]
    result = await change(client, token, "Not-my-password#1", NEW_PASSWORD)
    assert error_codes(result) == ["BAD_USER_INPUT"]
    assert (await stored_user(db, "physician")).password_hash == before.password_hash
    # Nor may the new password be the old one.
    same = await change(client, token, DEMO_PASSWORD, DEMO_PASSWORD)
    assert error_codes(same) == ["BAD_USER_INPUT"]


async def test_change_password_ends_the_other_sessions(client: GraphQLClient, db: Database) -> None:
    mine = await client.login("physician")
    other = await client.login("physician")
    colleague = await client.login("chief")
    result = await change(client, mine["accessToken"], DEMO_PASSWORD, NEW_PASSWORD)
    assert result["data"]["changePassword"] == {"username": "physician", "mustChangePassword": False}

    stored = await stored_user(db, "physician")
    assert verify_password(stored.password_hash, NEW_PASSWORD)
    assert not verify_password(stored.password_hash, DEMO_PASSWORD)
    async with db.session() as session:
        sessions = (await session.execute(select(AuthSession).where(AuthSession.user_id == stored.id))).scalars().all()
    reasons = {s.id: s.revoke_reason for s in sessions}
    assert reasons == {sid(mine): None, sid(other): "password_changed"}

    # This session goes on; the other one ends, with its refresh token; another user is untouched.
    assert (await client.data("{ me { username } }", token=mine["accessToken"]))["me"]["username"] == "physician"
    assert (await client.post("{ me { username } }", token=other["accessToken"])).status_code == 401
    refreshed = await client.run(
        "mutation ($t: String!) { refreshToken(token: $t) { accessToken } }", {"t": other["refreshToken"]}
    )
    assert error_codes(refreshed) == ["UNAUTHENTICATED"]
    assert "errors" not in await client.run("{ me { username } }", token=colleague["accessToken"])

    # The old password no longer logs in; the new one does.
    old = await client.run(
        "mutation ($u: String!, $p: String!) { login(username: $u, password: $p) { accessToken } }",
        {"u": "physician", "p": DEMO_PASSWORD},
    )
    assert error_codes(old) == ["UNAUTHENTICATED"]
    assert (await client.login("physician", NEW_PASSWORD))["mustChangePassword"] is False


async def test_reset_password_forces_a_change_before_anything_else(client: GraphQLClient, db: Database) -> None:
    before = await client.login("physician")
    user_id = before["user"]["id"]
    temporary = "Temp-Reset#2026"
    reset = await client.data(RESET, {"id": user_id, "pw": temporary}, as_="admin")
    assert reset["resetPassword"]["user"]["mustChangePassword"] is True
    stored = await stored_user(db, "physician")
    assert stored.must_change_password is True and verify_password(stored.password_hash, temporary)
    # Every session of the user ended.
    assert (await client.post("{ me { id } }", token=before["accessToken"])).status_code == 401

    payload = await client.login("physician", temporary)
    assert payload["mustChangePassword"] is True
    token = payload["accessToken"]
    queries, mutations = await schema_fields(client, token)
    assert "me" in queries and "departments" not in queries
    assert {"changePassword", "logout"} <= mutations
    refused = await client.run("{ departments { id } }", token=token)
    assert error_codes(refused) == ["GRAPHQL_VALIDATION_FAILED"]

    changed = await change(client, token, temporary, NEW_PASSWORD)
    assert changed["data"]["changePassword"]["mustChangePassword"] is False
    assert (await stored_user(db, "physician")).must_change_password is False
    queries, _ = await schema_fields(client, token)
    assert "departments" in queries
    assert "errors" not in await client.run("{ departments { id } }", token=token)


async def test_reset_password_is_for_admins_only(client: GraphQLClient, db: Database) -> None:
    chief_id = (await client.login("chief"))["user"]["id"]
    before = await stored_user(db, "chief")
    refused = await client.run(RESET, {"id": chief_id, "pw": "Temp-Reset#2026"}, as_="physician")
    assert error_codes(refused) == ["GRAPHQL_VALIDATION_FAILED"]
    assert (await stored_user(db, "chief")).password_hash == before.password_hash
    # A generated temporary password when none is given.
    generated = await client.data(RESET, {"id": chief_id, "pw": None}, as_="admin")
    temporary = generated["resetPassword"]["temporaryPassword"]
    assert verify_password((await stored_user(db, "chief")).password_hash, temporary)
    assert (await client.login("chief", temporary))["mustChangePassword"] is True
    assert decode_id("User", chief_id) == before.id


async def test_guessing_the_current_password_meets_the_login_lockout(client: GraphQLClient, db: Database) -> None:
    token = await client.token("physician")
    change = "mutation ($o: String!, $n: String!) { changePassword(oldPassword: $o, newPassword: $n) { id } }"
    for attempt in range(5):
        result = await client.run(change, {"o": f"Wrong-guess#{attempt}", "n": "Brand-New#Pass1"}, token=token)
        assert error_codes(result) == ["BAD_USER_INPUT"]
    locked = await client.run(change, {"o": DEMO_PASSWORD, "n": "Brand-New#Pass1"}, token=token)
    assert error_codes(locked) == ["RATE_LIMITED"]
    assert locked["errors"][0]["extensions"]["retryAfter"] > 0
    # Login of that account from this address is locked too, and the password did not change.
    assert error_codes(await client.run(LOGIN, {"u": "physician", "p": DEMO_PASSWORD})) == ["RATE_LIMITED"]

"""Two-factor login (TOTP): enrol, confirm, log in with and without a code, turn it off; admins who must enrol."""

from __future__ import annotations

import time
from typing import Any

import pyotp
import pytest
from sqlalchemy import select

from core.db import Database
from models.auth import LoginLog
from models.user import User
from tests.conftest import DEMO_PASSWORD, LOGIN, GraphQLClient, error_codes

ENROLL = "mutation { enrollTotp { secret otpauthUri } }"
CONFIRM = "mutation ($c: String!) { confirmTotp(code: $c) { totpEnabled } }"
DISABLE = "mutation ($p: String!) { disableTotp(password: $p) { totpEnabled } }"
SCHEMA = "{ __schema { queryType { fields { name } } mutationType { fields { name } } } }"


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    return dict(getattr(request, "param", {}))


def code_at(secret: str, step: int) -> str:
    totp = pyotp.TOTP(secret)
    return totp.at(step * totp.interval)


async def last_step(db: Database, username: str) -> int:
    async with db.session() as session:
        step = (await session.execute(select(User.totp_last_step).where(User.username == username))).scalar_one()
    assert step is not None
    return int(step)


async def next_code(db: Database, secret: str, username: str) -> str:
    """The code of the step after the last one used: accepted (within the one-step window) exactly once."""
    return code_at(secret, await last_step(db, username) + 1)


def wrong_code(secret: str) -> str:
    totp = pyotp.TOTP(secret)
    now = time.time()
    valid = {totp.at(now + offset) for offset in (-60, -30, 0, 30, 60)}
    candidate = 123456
    while f"{candidate:06d}" in valid:
        candidate += 1
    return f"{candidate:06d}"


async def stored(db: Database, username: str) -> User:
    async with db.session() as session:
        return (await session.execute(select(User).where(User.username == username))).scalar_one()


async def login(client: GraphQLClient, username: str, totp: str | None = None) -> dict[str, Any]:
    return await client.run(LOGIN, {"u": username, "p": DEMO_PASSWORD, "totp": totp})


async def enrol(client: GraphQLClient, token: str) -> str:
    enrolment = (await client.data(ENROLL, token=token))["enrollTotp"]
    secret: str = enrolment["secret"]
    assert enrolment["otpauthUri"].startswith("otpauth://totp/")
    assert "issuer=FollowUp" in enrolment["otpauthUri"]
    confirmed = await client.data(CONFIRM, {"c": pyotp.TOTP(secret).now()}, token=token)
    assert confirmed["confirmTotp"]["totpEnabled"] is True
    return secret


async def mutations_of(client: GraphQLClient, token: str) -> set[str]:
    schema = (await client.data(SCHEMA, token=token))["__schema"]
    return {f["name"] for f in schema["mutationType"]["fields"]}


async def test_enrol_confirm_login_and_disable(client: GraphQLClient, db: Database) -> None:
    token = (await client.login("physician"))["accessToken"]
    enrolment = (await client.data(ENROLL, token=token))["enrollTotp"]
    secret = enrolment["secret"]
    user = await stored(db, "physician")
    assert user.totp_secret == secret and user.totp_enabled is False
    # Until confirmed, login needs no code.
    assert "errors" not in await login(client, "physician")

    bad = await client.run(CONFIRM, {"c": wrong_code(secret)}, token=token)
    assert error_codes(bad) == ["BAD_USER_INPUT"]
    assert (await stored(db, "physician")).totp_enabled is False
    ok = await client.data(CONFIRM, {"c": pyotp.TOTP(secret).now()}, token=token)
    assert ok["confirmTotp"]["totpEnabled"] is True
    assert (await stored(db, "physician")).totp_enabled is True
    again = await client.run(ENROLL, token=token)
    assert error_codes(again) == ["CONFLICT"]
    assert (await stored(db, "physician")).totp_secret == secret

    missing = await login(client, "physician")
    assert error_codes(missing) == ["UNAUTHENTICATED"]
    assert missing["errors"][0]["extensions"]["totpRequired"] is True
    assert missing["data"] is None
    wrong = await login(client, "physician", wrong_code(secret))
    assert error_codes(wrong) == ["UNAUTHENTICATED"]
    assert wrong["errors"][0]["extensions"]["totpRequired"] is True
    # The code used to confirm enrolment cannot log in again: each code works once.
    reused = await login(client, "physician", code_at(secret, await last_step(db, "physician")))
    assert error_codes(reused) == ["UNAUTHENTICATED"]
    code = await next_code(db, secret, "physician")
    right = await login(client, "physician", code)
    assert "errors" not in right, right
    assert right["data"]["login"]["user"]["username"] == "physician"
    assert error_codes(await login(client, "physician", code)) == ["UNAUTHENTICATED"]

    async with db.session() as session:
        reasons = (
            await session.execute(
                select(LoginLog.reason).where(LoginLog.username == "physician").order_by(LoginLog.id)  # type: ignore[arg-type]
            )
        ).scalars()
        assert list(reasons) == ["ok", "ok", "totp_missing", "totp_invalid", "totp_invalid", "ok", "totp_invalid"]

    # Turning it off needs the password.
    refused = await client.run(DISABLE, {"p": "Not-my-password#1"}, token=token)
    assert error_codes(refused) == ["BAD_USER_INPUT"]
    assert (await stored(db, "physician")).totp_enabled is True
    off = await client.data(DISABLE, {"p": DEMO_PASSWORD}, token=token)
    assert off["disableTotp"]["totpEnabled"] is False
    user = await stored(db, "physician")
    assert user.totp_enabled is False and user.totp_secret is None
    assert "errors" not in await login(client, "physician")


async def test_confirm_without_enrolment_is_refused(client: GraphQLClient, db: Database) -> None:
    token = (await client.login("physician"))["accessToken"]
    result = await client.run(CONFIRM, {"c": "123456"}, token=token)
    assert error_codes(result) == ["BAD_USER_INPUT"]
    assert (await stored(db, "physician")).totp_enabled is False


async def test_wrong_codes_count_towards_the_lockout(client: GraphQLClient) -> None:
    token = (await client.login("physician"))["accessToken"]
    secret = await enrol(client, token)
    for _ in range(5):
        assert error_codes(await login(client, "physician", wrong_code(secret))) == ["UNAUTHENTICATED"]
    locked = await login(client, "physician", pyotp.TOTP(secret).now())
    assert error_codes(locked) == ["RATE_LIMITED"]


async def test_admin_role_is_not_withheld_by_default(client: GraphQLClient) -> None:
    token = (await client.login("admin"))["accessToken"]
    assert "assignRoles" in await mutations_of(client, token)


@pytest.mark.parametrize("settings_overrides", [{"totp_required_for_admin": True}], indirect=True)
async def test_admin_without_totp_is_restricted_until_enrolled(client: GraphQLClient, db: Database) -> None:
    payload = await client.login("admin")
    token = payload["accessToken"]
    mutations = await mutations_of(client, token)
    assert "assignRoles" not in mutations and "grantPermission" not in mutations
    assert {"enrollTotp", "confirmTotp", "changePassword", "logout"} <= mutations
    refused = await client.run("{ users { totalCount } }", token=token)
    assert error_codes(refused) == ["GRAPHQL_VALIDATION_FAILED"]
    # Other roles are not affected by the admin rule.
    physician = (await client.login("physician"))["accessToken"]
    assert "errors" not in await client.run("{ departments { id } }", token=physician)

    secret = await enrol(client, token)
    assert "assignRoles" in await mutations_of(client, token)
    assert "errors" not in await client.run("{ users { totalCount } }", token=token)
    # From now on the admin logs in with a code.
    assert error_codes(await login(client, "admin")) == ["UNAUTHENTICATED"]
    fresh = await login(client, "admin", await next_code(db, secret, "admin"))
    assert "assignRoles" in await mutations_of(client, fresh["data"]["login"]["accessToken"])

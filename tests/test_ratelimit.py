"""Rate limits: per address, per user, stricter on the login operations; in process or through Redis."""

from __future__ import annotations

import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from schema.engine import ratelimit
from server import create_app
from tests.conftest import DEMO_PASSWORD, LOGIN, GraphQLClient, error_codes, make_settings
from tests.test_persisted_queries import redis_url  # noqa: F401  (module fixture: a private redis-server)

LOGIN_VARS = {"u": "physician", "p": DEMO_PASSWORD}


@pytest.fixture(autouse=True)
def mid_window(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The limiter counts in fixed clock windows: a test's few requests (slow logins on a loaded machine) that
    straddled a window's end would start counting again. Its clock stands still here, at a minute's start."""
    now = float(int(time.time()) // 3600 * 3600)
    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(time=lambda: now))
    yield


def _assert_limited(response: httpx.Response, window: int = 60) -> int:
    assert response.status_code == 429, response.text
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    retry = error["extensions"]["retryAfter"]
    assert isinstance(retry, int) and 1 <= retry <= window
    assert response.headers["retry-after"] == str(retry)
    assert response.headers["cache-control"] == "no-store"
    return retry


@pytest.mark.parametrize("settings_overrides", [{"rate_limit_login_per_ip": 3}])
async def test_login_is_limited_per_address(client: GraphQLClient, settings_overrides: dict[str, Any]) -> None:
    for _ in range(3):
        assert (await client.data(LOGIN, LOGIN_VARS))["login"]["accessToken"]
    response = await client.post(LOGIN, LOGIN_VARS)
    _assert_limited(response)
    assert response.json().get("data") is None
    # an alias and a comment do not hide a login; refreshToken and wechatLogin count the same
    hidden = 'mutation { x: login # comment\n (username: "physician", password: "x") { accessToken } }'
    _assert_limited(await client.post(hidden))
    _assert_limited(await client.post('mutation { refreshToken(token: "x") { accessToken } }'))
    # other operations from the same address still run
    assert (await client.data("{ serverInfo { name } }"))["serverInfo"]["name"]
    # another address is not affected
    other = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=client.app, client=("10.1.2.3", 5000)), base_url="http://testserver"
    )
    async with other:
        response = await other.post("/graphql", json={"query": LOGIN, "variables": LOGIN_VARS})
        assert response.json()["data"]["login"]["accessToken"]


@pytest.mark.parametrize("settings_overrides", [{"rate_limit_per_ip": 5}])
async def test_requests_are_limited_per_address(client: GraphQLClient, settings_overrides: dict[str, Any]) -> None:
    for _ in range(5):
        assert (await client.data("{ __typename }"))["__typename"] == "Query"
    _assert_limited(await client.post("{ __typename }"))
    # a batch counts each operation
    other = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=client.app, client=("10.1.2.4", 5000)), base_url="http://testserver"
    )
    async with other:
        response = await other.post("/graphql", json=[{"query": "{ __typename }"}] * 5)
        assert response.status_code == 200
        _assert_limited(await other.post("/graphql", json={"query": "{ __typename }"}))


@pytest.mark.parametrize("settings_overrides", [{"rate_limit_per_user": 3}])
async def test_requests_are_limited_per_user(client: GraphQLClient, settings_overrides: dict[str, Any]) -> None:
    token = await client.token("physician")
    for _ in range(3):
        assert (await client.data("{ me { username } }", token=token))["me"]["username"] == "physician"
    _assert_limited(await client.post("{ me { username } }", token=token))
    # the anonymous schema and other users are unaffected
    assert (await client.data("{ serverInfo { name } }"))["serverInfo"]["name"]
    assert (await client.data("{ me { username } }", as_="chief"))["me"]["username"] == "chief"


@pytest.mark.parametrize("settings_overrides", [{"rate_limit_enabled": False, "rate_limit_per_ip": 1}])
async def test_limits_can_be_switched_off(client: GraphQLClient, settings_overrides: dict[str, Any]) -> None:
    for _ in range(3):
        assert (await client.data("{ __typename }"))["__typename"] == "Query"


async def test_limits_are_shared_through_redis(database_url: str, redis_url: str, app: Any) -> None:  # noqa: F811
    settings = make_settings(
        database_url, redis_url=redis_url, rate_limit_login_per_ip=2, rate_limit_window_seconds=3600
    )
    first, second = create_app(settings), create_app(settings)
    body = {"query": 'mutation { login(username: "nobody-redis", password: "x") { accessToken } }'}
    async with first.router.lifespan_context(first), second.router.lifespan_context(second):
        address = ("10.9.8.7", 5000)
        async with (
            httpx.AsyncClient(transport=httpx.ASGITransport(app=first, client=address), base_url="http://a") as a,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=second, client=address), base_url="http://b") as b,
        ):
            assert error_codes((await a.post("/graphql", json=body)).json()) == ["UNAUTHENTICATED"]
            assert error_codes((await b.post("/graphql", json=body)).json()) == ["UNAUTHENTICATED"]
            _assert_limited(await a.post("/graphql", json=body), window=3600)
            _assert_limited(await b.post("/graphql", json=body), window=3600)

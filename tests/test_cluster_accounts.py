"""Two instances on one database and one Redis, the rest of issue 19's proofs (tests/test_cluster.py has the grant
reaching the other instance and a disabled account; tests/test_operations_sessions.py forced logout across
instances; tests/test_operations_scheduler.py a firing due on two instances running once): a grant reaches the other
instance within a second, a logout on A ends the token on B, failed logins spread over A and B lock the account."""

from __future__ import annotations

import pytest

from tests.conftest import DEMO_PASSWORD, LOGIN, GraphQLClient, error_codes
from tests.test_cluster import GRANT, instances, query_fields, wait_for

__all__ = ["instances"]  # the two-instance fixture, shared with tests/test_cluster.py

ME = "{ me { username } }"
Pair = tuple[GraphQLClient, GraphQLClient]


async def test_a_grant_through_a_reshapes_the_schema_on_b_within_a_second(instances: Pair) -> None:
    a, b = instances
    physician_on_b = await b.token("physician")
    assert "users" not in await query_fields(b, physician_on_b)
    await a.data(GRANT, as_="admin")
    assert await wait_for(b, physician_on_b, present=True, within=1.0) < 1.0


async def test_logout_on_a_ends_the_token_on_b(instances: Pair) -> None:
    a, b = instances
    token = (await a.login("physician"))["accessToken"]
    assert (await b.data(ME, token=token))["me"]["username"] == "physician"
    await a.data("mutation { logout }", token=token)
    response = await b.post(ME, token=token)
    assert response.status_code == 401 and error_codes(response.json()) == ["UNAUTHENTICATED"]
    assert response.json()["errors"][0]["extensions"]["reason"] == "SESSION_ENDED"


async def wrong(client: GraphQLClient, username: str) -> list[str]:
    return error_codes(await client.run(LOGIN, {"u": username, "p": "not-the-password"}))


@pytest.mark.parametrize("first", ["a", "b"])
async def test_failed_logins_spread_over_a_and_b_lock_the_account(instances: Pair, first: str) -> None:
    a, b = instances if first == "a" else instances[::-1]
    limit = a.services.settings.login_max_failures
    for number in range(limit):  # A, B, A, B, A: neither instance alone saw the limit
        assert await wrong(a if number % 2 == 0 else b, "chief") != ["RATE_LIMITED"]
    for client in (a, b):  # the right password, on either instance: locked
        locked = await client.run(LOGIN, {"u": "chief", "p": DEMO_PASSWORD})
        assert error_codes(locked) == ["RATE_LIMITED"], locked
        assert "accessToken" not in str(locked.get("data"))

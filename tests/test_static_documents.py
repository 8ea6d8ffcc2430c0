"""`{ __typename }` and its like (schema/engine/static.py): once run for a role schema, later requests get the kept
answer without running the document again, and everything around execution still holds: the token, the session,
the rate limits, the request figures, and the refusals of documents that are not such a query."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from schema.engine import static
from schema.engine.persisted import STATS
from tests.conftest import GraphQLClient, error_codes
from tests.test_operations_monitoring import stats

PING = "{ __typename }"


async def test_a_ping_answers_the_query_type_and_is_served_from_the_kept_answer(client: GraphQLClient) -> None:
    token = await client.token("physician")
    first = await client.post(PING, token=token)
    assert first.status_code == 200 and first.json() == {"data": {"__typename": "Query"}}
    hits = STATS.hits + STATS.misses  # strawberry's parse step counts every run
    for _ in range(3):
        again = await client.post(PING, token=token)
        assert again.status_code == 200 and again.json() == {"data": {"__typename": "Query"}}
        assert again.headers["x-request-id"] and again.headers["cache-control"] == "no-store"
    assert STATS.hits + STATS.misses == hits  # not run again
    aliased = "{ a: __typename b: __typename }"
    for _ in range(2):
        assert (await client.post(aliased, token=token)).json() == {"data": {"a": "Query", "b": "Query"}}
    anonymous = await client.post(PING)
    assert anonymous.json() == {"data": {"__typename": "Query"}}


async def test_only_a_plain_query_of_typename_is_static() -> None:
    assert static.static_data("query Ping { __typename }", "Ping", "Query") == {"__typename": "Query"}
    assert not static._candidate("{ me { __typename id } }")  # Apollo's __typename everywhere: never parsed here
    for text, name in (
        ("mutation { __typename }", None),
        ("subscription { __typename }", None),
        ("{ __typename me { id } }", None),
        ("query ($a: Int) { __typename }", None),
        ("{ __typename @include(if: false) }", None),
        ("{ ... on Query { __typename } }", None),
        ("{ ...F } fragment F on Query { __typename }", None),
        ("query A { __typename } query B { __typename }", "A"),
        ("query Ping { __typename }", "Other"),
        ("{ __typename }", "Ping"),
        ("{ __typename", None),
    ):
        assert static.static_data(text, name, "Query") is None, text


async def test_the_token_and_the_session_are_still_checked(client: GraphQLClient) -> None:
    token = await client.token("physician")
    for _ in range(2):
        assert (await client.post(PING, token=token)).status_code == 200
    bad = await client.post(PING, token=token[:-2] + ("AA" if not token.endswith("AA") else "BB"))
    assert bad.status_code == 401 and error_codes(bad.json()) == ["UNAUTHENTICATED"]
    assert (await client.data("mutation { logout }", token=token))["logout"] is True
    ended = await client.post(PING, token=token)
    assert ended.status_code == 401 and error_codes(ended.json()) == ["UNAUTHENTICATED"]


async def test_documents_that_are_not_a_ping_are_refused_as_before(client: GraphQLClient) -> None:
    token = await client.token("physician")
    for _ in range(2):
        assert (await client.post(PING, token=token)).status_code == 200
    wrong_name = await client.http.post(
        "/graphql", json={"query": PING, "operationName": "Ping"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert wrong_name.status_code == 200 and "errors" in wrong_name.json()
    by_get = await client.http.get(
        "/graphql", params={"query": "mutation { __typename }"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert by_get.status_code == 405
    too_many = "{ " + " ".join(f"a{i}: __typename" for i in range(31)) + " }"  # MAX_ALIASES is 30
    for _ in range(2):
        refused = await client.post(too_many, token=token)
        assert "errors" in refused.json() and "data" not in refused.json()


async def test_pings_are_counted_in_the_request_figures(client: GraphQLClient) -> None:
    since = datetime.now(UTC) - timedelta(minutes=5)
    token = await client.token("physician")
    for _ in range(4):
        assert (await client.post("query Ping { __typename }", token=token)).status_code == 200
    roles: dict[str, Any] = await stats(client, "ROLE", since)
    assert roles["physician"]["requests"] >= 4


async def test_the_rate_limit_still_applies(client: GraphQLClient, monkeypatch: Any) -> None:
    limiter = client.services.ratelimiter
    token = await client.token("physician")
    assert (await client.post(PING, token=token)).status_code == 200

    async def refuse(*_args: Any, **_kwargs: Any) -> int:
        return 7

    monkeypatch.setattr(limiter, "hit", refuse)
    limited = await client.post(PING, token=token)
    assert limited.status_code == 429 and limited.headers["retry-after"] == "7"

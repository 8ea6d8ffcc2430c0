"""Depth, aliases, tokens and cost: QUERY_TOO_COMPLEX before any resolver runs; introspection switch."""

from __future__ import annotations

from typing import Any

import pytest

import schema.auth
from tests.conftest import GraphQLClient, error_codes

GQL_RESPONSE = "application/graphql-response+json"

LIMITS = {"max_query_depth": 4, "max_aliases": 3, "max_tokens": 60, "max_query_cost": 100}

USERS = "users{n} {{ edges {{ node {{ id username displayName phone }} }} }}"


@pytest.fixture
def resolver_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = schema.auth._me

    async def counting(info: Any) -> Any:
        calls.append("me")
        return await real(info)

    monkeypatch.setattr(schema.auth, "_me", counting)
    return calls


async def _refused(
    client: GraphQLClient, query: str, token: str, variables: dict[str, Any] | None = None, *, why: str = "cost"
) -> dict[str, Any]:
    body: dict[str, Any] = {"query": query}
    if variables is not None:
        body["variables"] = variables
    response = await client.http.post(
        "/graphql", json=body, headers={"Authorization": f"Bearer {token}", "Accept": GQL_RESPONSE}
    )
    assert response.status_code == 400, response.text
    result: dict[str, Any] = response.json()
    assert "data" not in result
    assert set(error_codes(result)) == {"QUERY_TOO_COMPLEX"}, result
    assert any(why in error["message"] for error in result["errors"]), result
    return result


@pytest.mark.parametrize("settings_overrides", [LIMITS])
async def test_each_limit_refuses_before_any_resolver_runs(
    client: GraphQLClient, resolver_calls: list[str], settings_overrides: dict[str, Any]
) -> None:
    token = await client.token("admin")
    # within every limit: runs
    ok = "{ me { id } " + USERS.format(n="(first: 10)") + " }"
    response = await client.post(ok, token=token)
    assert response.json()["data"]["users"]["edges"], response.text
    assert resolver_calls == ["me"]
    resolver_calls.clear()

    # depth: me { department { ... } } nests past 4
    await _refused(
        client, "{ me { id } users { edges { node { roles { permissions { object } } } } } }", token, why="depth"
    )
    # aliases
    await _refused(
        client,
        "{ me { id } a: serverInfo { name } b: serverInfo { name } c: serverInfo { name } d: me { id } }",
        token,
        why="aliases",
    )
    # tokens
    await _refused(
        client, "{ me { id } " + " ".join(f"f{i}: __typename" for i in range(30)) + " }", token, why="tokens"
    )
    # cost: 20 users (the default page) x 6 > 100
    result = await _refused(client, "{ me { id } " + USERS.format(n="") + " }", token)
    assert result["errors"][0]["extensions"]["cost"] > 100
    assert result["errors"][0]["extensions"]["maxCost"] == 100
    await _refused(client, "{ me { id } " + USERS.format(n="(first: 20)") + " }", token)
    # a variable page size counts as given
    await _refused(client, "query ($n: Int) { me { id } " + USERS.format(n="(first: $n)") + " }", token, {"n": 20})
    # fragments are followed
    await _refused(
        client,
        "query { me { id } ...U } fragment U on Query { users(first: 20) { edges { node { ...N } } } }"
        " fragment N on User { id username displayName phone }",
        token,
    )
    assert resolver_calls == [], "a resolver ran for a refused query"


@pytest.mark.parametrize("settings_overrides", [LIMITS])
async def test_a_documents_cost_follows_its_variables_request_after_request(
    client: GraphQLClient, settings_overrides: dict[str, Any]
) -> None:
    # The cost is kept per document and page-size variables: the same text must still be refused with a
    # large page after passing with a small one, and pass again after that, as each request's own cost.
    token = await client.token("admin")
    query = "query ($n: Int) { me { id } " + USERS.format(n="(first: $n)") + " }"
    for n, allowed in [(2, True), (20, False), (2, True), (None, False), (3, True), (20, False)]:
        body = {"query": query, "variables": {"n": n}}
        response = await client.http.post("/graphql", json=body, headers={"Authorization": f"Bearer {token}"})
        result = response.json()
        if allowed:
            assert "errors" not in result and result["data"]["me"]["id"], result
        else:
            assert error_codes(result) == ["QUERY_TOO_COMPLEX"], (n, result)
            cost = result["errors"][0]["extensions"]["cost"]
            assert cost == 2 + 1 + 20 * (1 + 1 + 4), (n, cost)  # me, users, 20 edges x node x 4 fields


async def test_cost_counts_nested_lists(client: GraphQLClient) -> None:
    from graphql import parse

    from schema.engine.limits import QueryCost

    registry = client.services.registry
    admin = registry.for_roles(frozenset({"authenticated", "admin"}))
    gql = admin._schema
    document = parse(
        "{ users(first: 10) { totalCount edges { cursor node { id roles { key } } } } departments { id } }"
    )
    [operation] = document.definitions
    cost = QueryCost(gql, {}, 20).of(operation.selection_set, gql.query_type)  # type: ignore[attr-defined]
    # users: 1 + totalCount 1 + edges 10 x (1 + cursor 1 + node (1 + id 1 + roles 20 x (1 + key 1)))
    users = 1 + 1 + 10 * (1 + 1 + (1 + 1 + 20 * 2))
    departments = 20 * (1 + 1)
    assert cost == users + departments


async def test_default_limits_let_ordinary_queries_through(client: GraphQLClient) -> None:
    data = await client.data(
        "{ me { id username roles { key name } } users(first: 50) { totalCount edges { node { id username roles { key } } } } }",
        as_="admin",
    )
    assert data["me"]["username"] == "admin"


INTROSPECTION = "{ __schema { queryType { name } } }"


@pytest.mark.parametrize("settings_overrides", [{"disable_introspection_for_non_admin": True}])
async def test_introspection_can_be_switched_off_for_non_admins(
    client: GraphQLClient, settings_overrides: dict[str, Any]
) -> None:
    for who in ("physician", "deptadmin", None):
        token = await client.token(who) if who else None
        result = await client.run(INTROSPECTION, token=token)
        assert set(error_codes(result)) == {"GRAPHQL_VALIDATION_FAILED"}, (who, result)
        result = await client.run('{ __type(name: "Query") { name } }', token=token)
        assert set(error_codes(result)) == {"GRAPHQL_VALIDATION_FAILED"}
        assert (await client.data("{ __typename }", token=token))["__typename"] == "Query"
    data = await client.data(INTROSPECTION, as_="admin")
    assert data["__schema"]["queryType"]["name"] == "Query"


async def test_introspection_is_on_by_default(client: GraphQLClient) -> None:
    data = await client.data(INTROSPECTION, as_="physician")
    assert data["__schema"]["queryType"]["name"] == "Query"

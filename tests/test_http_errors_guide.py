"""Errors that say what to do: a field outside the caller's role, a staff field asked for before login, an
expired token told apart from an invalid one, a subscription sent over HTTP."""

from __future__ import annotations

import jwt

from core.security import issue_access_token
from tests.conftest import GraphQLClient, error_codes


async def test_a_field_outside_the_role_says_so_without_naming_who_has_it(client: GraphQLClient) -> None:
    result = await client.run("{ patients(first: 1) { edges { node { idNumber } } } }", as_="physician")
    assert error_codes(result) == ["GRAPHQL_VALIDATION_FAILED"]
    error = result["errors"][0]
    assert error["extensions"]["reason"] == "NOT_AVAILABLE_TO_ROLE"
    assert "not available to your role" in error["message"] and "chief" not in error["message"].lower()
    typo = await client.run("{ patients(first: 1) { edges { node { nmae } } } }", as_="physician")
    assert "reason" not in typo["errors"][0]["extensions"]  # a real typo stays a typo


async def test_an_anonymous_request_for_a_staff_field_is_told_to_log_in(client: GraphQLClient) -> None:
    result = await client.run("{ me { id } }")
    assert error_codes(result) == ["GRAPHQL_VALIDATION_FAILED"]
    assert result["errors"][0]["extensions"]["reason"] == "LOGIN_REQUIRED"
    assert "log in" in result["errors"][0]["message"]


async def test_expired_and_invalid_tokens_are_told_apart(client: GraphQLClient) -> None:
    settings = client.services.settings
    secret = settings.jwt_secret.get_secret_value()
    login = await client.login("physician")
    claims = jwt.decode(login["accessToken"], secret, algorithms=["HS256"])
    expired, _ = issue_access_token(
        secret=secret, user_id=int(claims["sub"]), session_id=claims["sid"], client="console", minutes=-1
    )
    answers = {}
    for name, token in (("expired", expired), ("garbage", "not.a.token"), ("forged", expired[:-4] + "AAAA")):
        response = await client.post("{ me { id } }", token=token)
        assert response.status_code == 401
        answers[name] = response.json()["errors"][0]["extensions"]
    assert answers["expired"] == {"code": "UNAUTHENTICATED", "reason": "TOKEN_EXPIRED"}
    assert answers["garbage"]["reason"] == answers["forged"]["reason"] == "TOKEN_INVALID"
    await client.data("mutation { logout }", token=login["accessToken"])
    ended = await client.post("{ me { id } }", token=login["accessToken"])
    assert ended.json()["errors"][0]["extensions"]["reason"] == "SESSION_ENDED"


async def test_the_subscription_is_in_the_schema_and_over_http_points_to_the_websocket(client: GraphQLClient) -> None:
    names = "{ __schema { subscriptionType { fields { name } } } }"
    physician = (await client.data(names, as_="physician"))["__schema"]["subscriptionType"]
    assert [field["name"] for field in physician["fields"]] == ["messageAdded"]
    assert (await client.data(names))["__schema"]["subscriptionType"] is None  # none before login
    result = await client.run('subscription { messageAdded(conversationId: "x") { id } }', as_="physician")
    assert error_codes(result) == ["BAD_USER_INPUT"]
    assert "graphql-transport-ws" in result["errors"][0]["message"]


async def test_a_browser_asking_for_html_alone_gets_graphiql(client: GraphQLClient) -> None:
    response = await client.http.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")

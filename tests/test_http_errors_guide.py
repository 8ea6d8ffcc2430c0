"""Errors that say what to do: a field outside the caller's role, a staff field asked for before login, an
expired token told apart from an invalid one, a subscription sent over HTTP."""

from __future__ import annotations

import logging
from typing import Any

import jwt
import pytest

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


async def test_a_client_that_goes_away_mid_body_is_not_an_internal_error(
    app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that closes its connection while sending its body (a browser tab closed, a mini-program killed):
    nothing runs, the log gets one INFO line, no ERROR with a traceback (the server did nothing wrong)."""
    sent: list[dict[str, Any]] = []
    messages = iter(
        [{"type": "http.request", "body": b'{"query": "{ __ty', "more_body": True}, {"type": "http.disconnect"}]
    )

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"200"), (b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    with caplog.at_level(logging.INFO):
        await app(scope, receive, send)
    start = next(message for message in sent if message["type"] == "http.response.start")
    assert start["status"] == 400
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert any("went away" in record.getMessage() for record in caplog.records)

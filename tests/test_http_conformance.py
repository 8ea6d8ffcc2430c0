"""GraphQL over HTTP: status codes, content negotiation, request shapes, error masking."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.conftest import GraphQLClient, error_codes

GQL_RESPONSE = "application/graphql-response+json"


def _codes(response: Any) -> list[str]:
    return error_codes(response.json())


async def test_malformed_json_is_400_with_code(client: GraphQLClient) -> None:
    response = await client.http.post(
        "/graphql", content=b'{"query": "{ serverInfo { name } }"', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/json")
    assert _codes(response) == ["BAD_USER_INPUT"]
    assert response.headers["cache-control"] == "no-store"


async def test_wrong_content_type_is_415(client: GraphQLClient) -> None:
    response = await client.http.post(
        "/graphql", content=b"query=%7B__typename%7D", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 415
    assert _codes(response) == ["BAD_USER_INPUT"]
    response = await client.http.post("/graphql", content=b"{ __typename }", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"query": None},
        {"query": ""},
        {"variables": {}},
    ],
)
async def test_missing_query_is_400(client: GraphQLClient, body: dict[str, Any]) -> None:
    response = await client.http.post("/graphql", json=body)
    assert response.status_code == 400
    assert _codes(response) == ["BAD_USER_INPUT"]


@pytest.mark.parametrize("body", [b'"{ __typename }"', b"42", b"null", b"true", b"[1, 2]", b"[]"])
async def test_non_object_body_is_400(client: GraphQLClient, body: bytes) -> None:
    response = await client.http.post("/graphql", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert _codes(response) == ["BAD_USER_INPUT"]


@pytest.mark.parametrize("variables", [[1], "x", 3])
async def test_variables_must_be_an_object(client: GraphQLClient, variables: Any) -> None:
    response = await client.http.post("/graphql", json={"query": "{ __typename }", "variables": variables})
    assert response.status_code == 400
    assert _codes(response) == ["BAD_USER_INPUT"]


async def test_query_must_be_a_string_and_operation_name_too(client: GraphQLClient) -> None:
    response = await client.http.post("/graphql", json={"query": ["{ __typename }"]})
    assert response.status_code == 400
    response = await client.http.post("/graphql", json={"query": "{ __typename }", "operationName": 1})
    assert response.status_code == 400


async def test_get_runs_queries(client: GraphQLClient) -> None:
    response = await client.http.get("/graphql", params={"query": "{ serverInfo { name version } }"})
    assert response.status_code == 200
    assert response.json()["data"]["serverInfo"]["version"]
    assert response.headers["cache-control"] == "no-store"
    response = await client.http.get(
        "/graphql",
        params={"query": "query Q($x: Boolean!) { serverInfo @include(if: $x) { name } }", "variables": '{"x": true}'},
    )
    assert response.json()["data"]["serverInfo"]["name"]


async def test_get_refuses_mutations_with_405(client: GraphQLClient) -> None:
    response = await client.http.get(
        "/graphql", params={"query": 'mutation { login(username: "admin", password: "x") { accessToken } }'}
    )
    assert response.status_code == 405
    assert "POST" in response.headers.get("allow", "")
    assert _codes(response) == ["BAD_USER_INPUT"]


async def test_get_with_bad_variables_json_is_400(client: GraphQLClient) -> None:
    response = await client.http.get("/graphql", params={"query": "{ __typename }", "variables": "{nope"})
    assert response.status_code == 400
    assert _codes(response) == ["BAD_USER_INPUT"]


async def test_other_methods_are_405(client: GraphQLClient) -> None:
    response = await client.http.put("/graphql", json={"query": "{ __typename }"})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"


async def test_graphql_response_json_parse_error_is_400(client: GraphQLClient) -> None:
    response = await client.http.post("/graphql", json={"query": "{ serverInfo { "}, headers={"Accept": GQL_RESPONSE})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith(GQL_RESPONSE)
    body = response.json()
    assert "data" not in body
    assert _codes(response) == ["GRAPHQL_PARSE_FAILED"]


async def test_graphql_response_json_validation_error_is_400(client: GraphQLClient) -> None:
    response = await client.http.post("/graphql", json={"query": "{ nope }"}, headers={"Accept": GQL_RESPONSE})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith(GQL_RESPONSE)
    assert "data" not in response.json()
    assert _codes(response) == ["GRAPHQL_VALIDATION_FAILED"]


async def test_graphql_response_json_success_is_200(client: GraphQLClient) -> None:
    response = await client.http.post(
        "/graphql",
        json={"query": "{ serverInfo { name } }"},
        headers={"Accept": f"{GQL_RESPONSE}, application/json;q=0.9"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(GQL_RESPONSE)


async def test_application_json_errors_are_200(client: GraphQLClient) -> None:
    for query, code in (("{ serverInfo { ", "GRAPHQL_PARSE_FAILED"), ("{ nope }", "GRAPHQL_VALIDATION_FAILED")):
        response = await client.http.post("/graphql", json={"query": query}, headers={"Accept": "application/json"})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/json")
        assert _codes(response) == [code]


async def test_no_accept_header_means_json(client: GraphQLClient) -> None:
    response = await client.http.post(
        "/graphql", content=orjson.dumps({"query": "{ __typename }"}), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize("accept", ["application/json", GQL_RESPONSE])
async def test_variables_of_the_wrong_type_are_bad_user_input(client: GraphQLClient, accept: str) -> None:
    query = "mutation ($u: String!, $p: String!) { login(username: $u, password: $p) { accessToken } }"
    response = await client.http.post(
        "/graphql", json={"query": query, "variables": {"u": 12, "p": None}}, headers={"Accept": accept}
    )
    assert set(_codes(response)) == {"BAD_USER_INPUT"}
    assert "data" not in response.json()
    assert response.status_code == (400 if accept == GQL_RESPONSE else 200)


async def test_unsupported_accept_is_406(client: GraphQLClient) -> None:
    response = await client.http.post("/graphql", json={"query": "{ __typename }"}, headers={"Accept": "text/xml"})
    assert response.status_code == 406
    assert _codes(response) == ["BAD_USER_INPUT"]
    # q=0 means "not acceptable"
    response = await client.http.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Accept": "application/json;q=0, text/xml"}
    )
    assert response.status_code == 406


async def test_oversized_body_is_413(client: GraphQLClient) -> None:
    limit = client.services.settings.max_request_bytes
    big = "{ __typename " + " " * limit + "}"
    response = await client.http.post("/graphql", json={"query": big})
    assert response.status_code == 413
    assert _codes(response) == ["QUERY_TOO_COMPLEX"]

    async def chunks() -> Any:  # no Content-Length: the stream itself is cut off
        yield b'{"query": "{ __typename '
        for _ in range(limit // 65536 + 2):
            yield b" " * 65536
        yield b'}"}'

    response = await client.http.post("/graphql", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413


async def test_batches_run_and_are_limited(client: GraphQLClient) -> None:
    batch = [{"query": "{ serverInfo { name } }"}, {"query": "{ nope }"}]
    response = await client.http.post("/graphql", json=batch)
    assert response.status_code == 200
    results = response.json()
    assert results[0]["data"]["serverInfo"]["name"]
    assert error_codes(results[1]) == ["GRAPHQL_VALIDATION_FAILED"]
    limit = client.services.settings.max_batch
    response = await client.http.post("/graphql", json=[{"query": "{ __typename }"}] * (limit + 1))
    assert response.status_code == 400
    assert _codes(response) == ["QUERY_TOO_COMPLEX"]


async def test_every_response_is_no_store(client: GraphQLClient) -> None:
    responses = [
        await client.http.post("/graphql", json={"query": "{ __typename }"}),
        await client.http.post("/graphql", json={"query": "{ x"}),
        await client.http.post("/graphql", content=b"nope", headers={"Content-Type": "application/json"}),
        await client.http.post("/graphql", content=b"nope", headers={"Content-Type": "text/plain"}),
        await client.http.post("/graphql", json={"query": "{ __typename }"}, headers={"Accept": "text/xml"}),
        await client.http.post("/graphql", json={"query": "{ __typename }"}, headers={"Authorization": "Bearer x"}),
        await client.http.get("/graphql", headers={"Accept": "text/html"}),
        await client.http.delete("/graphql"),
    ]
    for response in responses:
        assert response.headers.get("cache-control") == "no-store", (response.status_code, response.text[:200])


async def test_bad_token_is_401(client: GraphQLClient) -> None:
    response = await client.http.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Authorization": "Bearer not-a-token"}
    )
    assert response.status_code == 401
    assert _codes(response) == ["UNAUTHENTICATED"]
    assert "Bearer" in response.headers["www-authenticate"]
    response = await client.http.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Authorization": "Basic x"}
    )
    assert response.status_code == 401


async def test_unexpected_exceptions_are_masked(client: GraphQLClient, monkeypatch: pytest.MonkeyPatch) -> None:
    import schema.auth

    async def boom(_info: Any) -> Any:
        raise RuntimeError("secret detail from /srv/app/db.py: SELECT * FROM patient")

    monkeypatch.setattr(schema.auth, "_me", boom)
    token = await client.token("physician")
    response = await client.post("{ me { username } }", token=token)
    assert response.status_code == 200
    text = response.text
    body = response.json()
    [error] = body["errors"]
    assert error["message"] == "Internal server error"
    assert error["extensions"]["code"] == "INTERNAL"
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]
    assert error["path"] == ["me"]
    assert "secret" not in text and "Traceback" not in text and "RuntimeError" not in text
    assert "stacktrace" not in text.lower()
    assert body["data"] is None


async def test_request_id_is_echoed_when_sane(client: GraphQLClient) -> None:
    response = await client.http.post("/graphql", json={"query": "{ __typename }"}, headers={"X-Request-Id": "abc-1"})
    assert response.headers["x-request-id"] == "abc-1"
    response = await client.http.post("/graphql", json={"query": "{ __typename }"}, headers={"X-Request-Id": "x" * 200})
    assert response.headers["x-request-id"] != "x" * 200

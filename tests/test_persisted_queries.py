"""Automatic persisted queries (Apollo's protocol), shared through Redis, parsed and validated once."""

from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

import schema.engine.persisted
from server import create_app
from tests.conftest import GraphQLClient, error_codes, make_settings

GQL_RESPONSE = "application/graphql-response+json"


def sha(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


def pq(digest: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


def unique_query() -> str:
    # a fresh document each time, so nothing from another test is cached
    return f"query Apq_{uuid.uuid4().hex} {{ serverInfo {{ name }} }}"


async def test_hash_only_unknown_is_persisted_query_not_found(client: GraphQLClient) -> None:
    digest = sha(unique_query())
    response = await client.http.post("/graphql", json={"extensions": pq(digest)})
    assert response.status_code == 200
    [error] = response.json()["errors"]
    assert error["message"] == "PersistedQueryNotFound"
    assert error["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    response = await client.http.post("/graphql", json={"extensions": pq(digest)}, headers={"Accept": GQL_RESPONSE})
    assert response.status_code == 400
    assert error_codes(response.json()) == ["PERSISTED_QUERY_NOT_FOUND"]


async def test_register_then_run_by_hash(client: GraphQLClient) -> None:
    query = unique_query()
    digest = sha(query)
    response = await client.http.post("/graphql", json={"query": query, "extensions": pq(digest)})
    assert response.json()["data"]["serverInfo"]["name"]
    response = await client.http.post("/graphql", json={"extensions": pq(digest)})
    assert response.status_code == 200
    assert response.json()["data"]["serverInfo"]["name"]
    assert response.headers["cache-control"] == "no-store"
    # upper-case hex is the same hash
    response = await client.http.post("/graphql", json={"extensions": pq(digest.upper())})
    assert response.json()["data"]["serverInfo"]["name"]


async def test_hash_mismatch_is_bad_user_input(client: GraphQLClient) -> None:
    query = unique_query()
    response = await client.http.post("/graphql", json={"query": query, "extensions": pq(sha(query + " "))})
    assert response.status_code == 400
    assert error_codes(response.json()) == ["BAD_USER_INPUT"]
    # and nothing was stored under either hash
    for digest in (sha(query), sha(query + " ")):
        response = await client.http.post("/graphql", json={"extensions": pq(digest)})
        assert error_codes(response.json()) == ["PERSISTED_QUERY_NOT_FOUND"]


@pytest.mark.parametrize(
    "extension",
    [
        {"persistedQuery": {"version": 2, "sha256Hash": "0" * 64}},
        {"persistedQuery": {"version": 1, "sha256Hash": "xyz"}},
        {"persistedQuery": {"version": 1}},
        {"persistedQuery": "abc"},
    ],
)
async def test_malformed_persisted_query_is_bad_user_input(client: GraphQLClient, extension: dict[str, Any]) -> None:
    response = await client.http.post("/graphql", json={"extensions": extension})
    assert response.status_code == 400
    assert error_codes(response.json()) == ["BAD_USER_INPUT"]


async def test_invalid_documents_are_not_stored(client: GraphQLClient) -> None:
    query = f"query Bad_{uuid.uuid4().hex} {{ noSuchField }}"
    response = await client.http.post("/graphql", json={"query": query, "extensions": pq(sha(query))})
    assert error_codes(response.json()) == ["GRAPHQL_VALIDATION_FAILED"]
    response = await client.http.post("/graphql", json={"extensions": pq(sha(query))})
    assert error_codes(response.json()) == ["PERSISTED_QUERY_NOT_FOUND"]


async def test_get_runs_persisted_queries_but_never_mutations(client: GraphQLClient) -> None:
    query = unique_query()
    digest = sha(query)
    extensions = orjson.dumps(pq(digest)).decode()
    response = await client.http.get("/graphql", params={"extensions": extensions})
    assert error_codes(response.json()) == ["PERSISTED_QUERY_NOT_FOUND"]
    response = await client.http.get("/graphql", params={"query": query, "extensions": extensions})
    assert response.json()["data"]["serverInfo"]["name"]
    response = await client.http.get("/graphql", params={"extensions": extensions})
    assert response.status_code == 200
    assert response.json()["data"]["serverInfo"]["name"]
    assert response.headers["cache-control"] == "no-store"

    mutation = f'mutation M_{uuid.uuid4().hex} {{ login(username: "nobody", password: "x") {{ accessToken }} }}'
    post = await client.http.post("/graphql", json={"query": mutation, "extensions": pq(sha(mutation))})
    assert error_codes(post.json()) == ["UNAUTHENTICATED"]  # registered (it validated), login refused
    response = await client.http.get("/graphql", params={"extensions": orjson.dumps(pq(sha(mutation))).decode()})
    assert response.status_code == 405


async def test_a_persisted_document_is_parsed_and_validated_once_per_schema(
    client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = await client.token("physician")
    admin = {"Authorization": f"Bearer {await client.token('admin')}"}
    calls = {"parse": 0, "validate": 0}
    real_parse, real_validate = schema.engine.persisted.parse, schema.engine.persisted.validate_document

    def counting_parse(*args: Any, **kwargs: Any) -> Any:
        calls["parse"] += 1
        return real_parse(*args, **kwargs)

    def counting_validate(*args: Any, **kwargs: Any) -> Any:
        calls["validate"] += 1
        return real_validate(*args, **kwargs)

    monkeypatch.setattr(schema.engine.persisted, "parse", counting_parse)
    monkeypatch.setattr(schema.engine.persisted, "validate_document", counting_validate)

    query = f"query Once_{uuid.uuid4().hex} {{ me {{ username }} }}"
    digest = sha(query)
    headers = {"Authorization": f"Bearer {token}"}
    response = await client.http.post("/graphql", json={"query": query, "extensions": pq(digest)}, headers=headers)
    assert response.json()["data"]["me"]["username"] == "physician"
    assert calls == {"parse": 1, "validate": 1}

    hits = schema.engine.persisted.STATS.hits
    for _ in range(3):
        response = await client.http.post("/graphql", json={"extensions": pq(digest)}, headers=headers)
        assert response.json()["data"]["me"]["username"] == "physician"
    assert calls == {"parse": 1, "validate": 1}, "a hit must neither parse nor validate"
    assert schema.engine.persisted.STATS.hits == hits + 3

    # another role's schema validates it once for itself (the parse is shared)
    for _ in range(2):
        response = await client.http.post("/graphql", json={"extensions": pq(digest)}, headers=admin)
        assert response.json()["data"]["me"]["username"] == "admin"
    assert calls == {"parse": 1, "validate": 2}

    # a document valid for one role and not another: the other role still gets a validation error
    anonymous = await client.http.post("/graphql", json={"extensions": pq(digest)})
    assert error_codes(anonymous.json()) == ["GRAPHQL_VALIDATION_FAILED"]


# ---- Redis: registrations shared between instances -----------------------------------------------


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    binary = shutil.which("redis-server")
    assert binary, "redis-server is missing (apt-get install redis-server)"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_registrations_are_shared_through_redis(database_url: str, redis_url: str, app: Any) -> None:
    settings = make_settings(database_url, redis_url=redis_url)
    first, second = create_app(settings), create_app(settings)
    query = unique_query()
    digest = sha(query)
    async with first.router.lifespan_context(first), second.router.lifespan_context(second):
        async with (
            httpx.AsyncClient(transport=httpx.ASGITransport(app=first), base_url="http://a") as a,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=second), base_url="http://b") as b,
        ):
            response = await b.post("/graphql", json={"extensions": pq(digest)})
            assert error_codes(response.json()) == ["PERSISTED_QUERY_NOT_FOUND"]
            response = await a.post("/graphql", json={"query": query, "extensions": pq(digest)})
            assert response.json()["data"]["serverInfo"]["name"]
            response = await b.post("/graphql", json={"extensions": pq(digest)})
            assert response.json()["data"]["serverInfo"]["name"]
            from redis.asyncio import Redis

            redis = Redis.from_url(redis_url)
            try:
                ttl = await redis.ttl(schema.engine.persisted.REDIS_PREFIX + digest)
            finally:
                await redis.aclose()
            assert 0 < ttl <= settings.apq_ttl_seconds

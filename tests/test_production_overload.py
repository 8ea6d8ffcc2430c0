"""Overload and deadlines (schema/engine/admission.py): beyond MAX_REQUESTS_IN_FLIGHT a request is answered at once
with 503 OVERLOADED and Retry-After, /readyz says `saturated`; a request past REQUEST_TIMEOUT_SECONDS is stopped
with 504 TIMEOUT and nothing of it is kept, unless its write had begun to commit (then it answers normally)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.conftest import GraphQLClient, error_codes

POSITIONS = "{ positions { name } }"
CREATE = "mutation ($n: String!) { createPosition(name: $n) { id name } }"


class Gate:
    """Holds every GraphQL request at its first step (resolving the document) until opened."""

    def __init__(self, client: GraphQLClient, monkeypatch: pytest.MonkeyPatch) -> None:
        self.open = asyncio.Event()
        self.waiting = 0
        persisted = client.services.persisted
        resolve = persisted.resolve

        async def held(*args: Any, **kwargs: Any) -> Any:
            self.waiting += 1
            await self.open.wait()
            return await resolve(*args, **kwargs)

        monkeypatch.setattr(persisted, "resolve", held)

    async def until_waiting(self, count: int) -> None:
        for _ in range(200):
            if self.waiting >= count:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"{self.waiting} requests waiting, not {count}")


async def position_names(client: GraphQLClient) -> set[str]:
    return {row["name"] for row in (await client.data(POSITIONS, as_="admin"))["positions"]}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"max_requests_in_flight": 2}


def short_deadline(client: GraphQLClient, seconds: float) -> None:
    """REQUEST_TIMEOUT_SECONDS, shortened once the test has logged in (a login hashes a password: slow on a busy
    machine)."""
    client.services.admission.timeout = seconds


async def test_beyond_the_limit_a_request_is_shed_at_once_and_readiness_says_so(
    client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = await client.token("admin")
    assert (await client.http.get("/readyz")).json()["requests"] == "ok"
    gate = Gate(client, monkeypatch)
    held = [asyncio.create_task(client.post(POSITIONS, token=token)) for _ in range(2)]
    await gate.until_waiting(2)

    started = time.monotonic()
    shed = await client.post(POSITIONS, token=token, headers={"Accept": "application/graphql-response+json"})
    assert time.monotonic() - started < 0.2  # at once, not queued
    assert shed.status_code == 503 and shed.headers["retry-after"] == "1"
    assert shed.headers["content-type"] == "application/graphql-response+json"
    assert error_codes(shed.json()) == ["OVERLOADED"] and shed.json()["errors"][0]["extensions"]["retryAfter"] == 1
    assert "data" not in shed.json()
    ready = await client.http.get("/readyz")  # the probes are never shed
    assert ready.status_code == 503 and ready.json()["status"] == "unavailable"
    assert ready.json()["requests"] == "saturated" and ready.json()["database"] == "ok"
    assert gate.waiting == 2  # the shed request never reached the endpoint

    gate.open.set()
    for response in await asyncio.gather(*held):
        assert response.status_code == 200 and "errors" not in response.json()
    admission = client.services.admission
    assert admission.in_flight == 0 and admission.shed == 1
    await asyncio.sleep(1.05)  # a second after the last shed request
    assert (await client.http.get("/readyz")).json() == {
        "status": "ready",
        "database": "ok",
        "migrations": "ok",
        "requests": "ok",
    }


async def test_a_request_past_its_deadline_is_stopped_and_nothing_of_it_is_kept(
    client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = await client.token("admin")
    await position_names(client)
    short_deadline(client, 0.5)
    gate = Gate(client, monkeypatch)
    started = time.monotonic()
    response = await client.post(CREATE, {"n": "Night porter"}, token=token)
    assert 0.5 <= time.monotonic() - started < 2
    assert response.status_code == 504
    assert (
        error_codes(response.json()) == ["TIMEOUT"]
        and "nothing of it was kept" in response.json()["errors"][0]["message"]
    )
    assert client.services.admission.timed_out == 1 and client.services.admission.in_flight == 0
    gate.open.set()
    short_deadline(client, 30)
    assert "Night porter" not in await position_names(client)
    data = await client.data(CREATE, {"n": "Day porter"}, as_="admin")  # the instance serves on
    assert data["createPosition"]["name"] == "Day porter"


async def test_a_write_that_began_to_commit_runs_to_its_answer(
    client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the deadline after its COMMIT was sent, the request is not cut off: the client hears the truth."""
    sealer = client.services.sealer
    after_write = sealer.after_write
    deadline = 3.0  # the write commits well within it, even on a busy machine
    started = 0.0

    async def slow_after_commit() -> None:
        assert time.monotonic() - started < deadline, "the write did not commit within the deadline: no test"
        await asyncio.sleep(started + 1.5 * deadline - time.monotonic())  # past the deadline, after the commit
        await after_write()

    token = await client.token("admin")
    short_deadline(client, deadline)
    monkeypatch.setattr(sealer, "after_write", slow_after_commit)
    started = time.monotonic()
    response = await client.post(CREATE, {"n": "Archivist"}, token=token)
    assert time.monotonic() - started > deadline
    assert response.status_code == 200 and "errors" not in response.json(), response.text
    assert response.json()["data"]["createPosition"]["name"] == "Archivist"
    assert client.services.admission.timed_out == 0
    assert "Archivist" in await position_names(client)

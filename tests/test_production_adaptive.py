"""Adaptive concurrency (schema/engine/admission.py, limiter.py), through the API: beyond the limit learnt from
latency a request waits for a slot, newest first; one given none in time is answered 503 OVERLOADED with
Retry-After (nothing of it ran) and /readyz says `saturated`. The limit is set here as if learnt: how it is learnt
is tested on made-up times in test_production_limiter.py."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from schema.engine.admission import Admission
from tests.conftest import GraphQLClient, error_codes

NAMES, IDS, BOTH = "{ positions { name } }", "{ positions { id } }", "{ positions { id name } }"


class Gate:
    """Holds every GraphQL request at its first step (resolving the document) until opened; notes the order."""

    def __init__(self, client: GraphQLClient, monkeypatch: pytest.MonkeyPatch) -> None:
        self.open = asyncio.Event()
        self.reached: list[str] = []
        persisted = client.services.persisted
        resolve = persisted.resolve

        async def held(data: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            self.reached.append(data.get("query") or "")
            await self.open.wait()
            return await resolve(data, *args, **kwargs)

        monkeypatch.setattr(persisted, "resolve", held)

    async def until(self, condition: Any) -> None:
        for _ in range(500):
            if condition():
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the requests did not get there")


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"max_requests_in_flight": 8, "admission_queue_seconds": 30.0, "admission_queue_target_seconds": 0.0}


def learnt(admission: Admission, allowed: int) -> None:
    """The limiter's state after requests ran slow (see test_production_limiter.py)."""
    assert admission.limiter is not None and admission.allowed == 8  # the ceiling, before anything is learnt
    admission.limiter.limit = float(allowed)
    admission.limiter.allowed = allowed


def ok(response: Any) -> bool:
    return response.status_code == 200 and "errors" not in response.json()


async def test_beyond_the_learnt_limit_requests_wait_and_are_served_newest_first(
    client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = await client.token("admin")
    admission = client.services.admission
    learnt(admission, 1)
    gate = Gate(client, monkeypatch)
    running = asyncio.create_task(client.post(NAMES, token=token))
    await gate.until(lambda: gate.reached == [NAMES])
    older = asyncio.create_task(client.post(IDS, token=token))
    await gate.until(lambda: admission.in_flight == 2)
    newer = asyncio.create_task(client.post(BOTH, token=token))
    await gate.until(lambda: admission.in_flight == 3)
    assert admission.running == 1 and gate.reached == [NAMES]  # the two wait for the slot, not at the gate

    gate.open.set()
    responses = await asyncio.gather(running, older, newer)
    assert all(ok(response) for response in responses)  # a burst is served, not shed
    assert responses[1].json()["data"]["positions"][0].keys() == {"id"}
    assert gate.reached == [NAMES, BOTH, IDS]  # the newest waiting request had the slot first
    assert admission.in_flight == 0 and admission.shed == 0
    assert (await client.http.get("/readyz")).json()["requests"] == "ok"


async def test_a_request_given_no_slot_in_time_is_shed_with_503_and_readiness_says_saturated(
    client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = await client.token("admin")
    admission = client.services.admission
    learnt(admission, 1)
    gate = Gate(client, monkeypatch)
    running = asyncio.create_task(client.post(NAMES, token=token))
    await gate.until(lambda: gate.reached == [NAMES])
    waiting = asyncio.create_task(client.post(IDS, token=token))
    await gate.until(lambda: admission.in_flight == 2)
    assert (await client.http.get("/readyz")).json()["requests"] == "ok"  # a queue may be a burst draining

    # Requests have now waited, without a break, longer than ADMISSION_QUEUE_SECONDS (as if 30 s had passed): a
    # standing queue, overload. A new request waits ADMISSION_QUEUE_TARGET_SECONDS (0 here) at most.
    admission.queue_seconds = 0.0
    ready = await client.http.get("/readyz")
    assert ready.status_code == 503 and ready.json()["requests"] == "saturated"
    shed = await client.post(BOTH, token=token, headers={"Accept": "application/graphql-response+json"})
    assert shed.status_code == 503 and shed.headers["retry-after"] == "1"
    assert shed.headers["content-type"] == "application/graphql-response+json"
    body = shed.json()
    assert error_codes(body) == ["OVERLOADED"] and body["errors"][0]["extensions"]["retryAfter"] == 1
    assert "data" not in body
    assert admission.shed == 1 and gate.reached == [NAMES]  # the shed request never reached the endpoint

    gate.open.set()
    assert ok(await running)
    dropped = await waiting  # in a standing queue, one that waited past the target is shed when its turn comes
    assert dropped.status_code == 503 and error_codes(dropped.json()) == ["OVERLOADED"]
    assert admission.in_flight == 0 and admission.shed == 2
    assert gate.reached == [NAMES]
    ready = await client.http.get("/readyz")  # shed within the last second: still saturated
    assert ready.status_code == 503 and ready.json()["requests"] == "saturated"


async def test_the_ceiling_still_sheds_at_once_and_adaptive_off_runs_up_to_it(
    client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = await client.token("admin")
    admission = client.services.admission
    learnt(admission, 1)
    gate = Gate(client, monkeypatch)
    held = [asyncio.create_task(client.post(NAMES, token=token)) for _ in range(8)]
    await gate.until(lambda: admission.in_flight == 8)
    assert admission.running == 1
    shed = await client.post(NAMES, token=token)  # 1 running + 7 waiting: MAX_REQUESTS_IN_FLIGHT
    assert shed.status_code == 503 and error_codes(shed.json()) == ["OVERLOADED"]
    gate.open.set()
    responses = await asyncio.gather(*held)
    # Shedding means overload: the waiting requests, which waited longer than the target (0 here), are shed when
    # their turn comes instead of running late.
    assert sum(1 for response in responses if ok(response)) == 1
    assert [error_codes(response.json()) for response in responses if not ok(response)] == [["OVERLOADED"]] * 7
    assert admission.shed == 8 and admission.in_flight == 0

    admission.limiter = None  # CONCURRENCY_ADAPTIVE=false: every request up to the ceiling runs at once
    gate.open.clear()
    held = [asyncio.create_task(client.post(NAMES, token=token)) for _ in range(8)]
    await gate.until(lambda: admission.running == 8)
    gate.open.set()
    assert all(ok(response) for response in await asyncio.gather(*held))
    assert admission.in_flight == 0 and admission.shed == 8

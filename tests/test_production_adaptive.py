"""Adaptive concurrency (schema/engine/admission.py, limiter.py), through the API: beyond the limit learnt from
latency a request waits for a slot, in order of arrival, or newest first once the requests in flight grow tick after tick
(overload); one given none in time is answered 503 OVERLOADED with Retry-After (nothing of it ran) and /readyz says
`saturated`. A queue that drains (a burst, a closed loop) is not shed. The limit is set here as if learnt: how it is learnt
is tested on made-up times in test_production_limiter.py."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from schema.engine import admission as admission_module
from schema.engine.admission import DEMAND_WINDOW_SECONDS, Admission
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


async def held(
    client: GraphQLClient, monkeypatch: pytest.MonkeyPatch, *waiting: str
) -> tuple[str, Admission, Gate, list[asyncio.Task[Any]]]:
    """The set-up of most tests here: the limit learnt as 1, every request held at the gate, an admin's NAMES there
    in the one slot, then each of `waiting` in turn waiting for it. The admin's token, and the requests' tasks, the
    running one first."""
    token = await client.token("admin")
    admission = client.services.admission
    learnt(admission, 1)
    gate = Gate(client, monkeypatch)
    tasks = [asyncio.create_task(client.post(NAMES, token=token))]
    await gate.until(lambda: gate.reached == [NAMES])
    for query in waiting:
        tasks.append(asyncio.create_task(client.post(query, token=token)))
        await gate.until(lambda: admission.in_flight == len(tasks))
    return token, admission, gate, tasks


async def test_beyond_the_learnt_limit_requests_wait_and_are_served_in_order(
    client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, admission, gate, (running, older, newer) = await held(client, monkeypatch, IDS, BOTH)
    assert admission.running == 1 and gate.reached == [NAMES]  # the two wait for the slot, not at the gate

    gate.open.set()
    responses = await asyncio.gather(running, older, newer)
    assert all(ok(response) for response in responses)  # a burst is served, not shed
    assert responses[1].json()["data"]["positions"][0].keys() == {"id"}
    assert gate.reached == [NAMES, IDS, BOTH]  # no overload: the one that waited longest had the slot first
    assert admission.in_flight == 0 and admission.shed == 0
    assert (await client.http.get("/readyz")).json()["requests"] == "ok"


async def test_a_growing_queue_is_overload_shed_with_503_and_readiness_says_saturated(
    client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The queue's length is sampled on every arrival (a tick of 0 s); grown by 1 three samples in a row: overload.
    monkeypatch.setattr(admission_module, "OVERLOAD_TICK_SECONDS", 0.0)
    monkeypatch.setattr(admission_module, "OVERLOAD_GAP_SECONDS", 60.0)  # a slow machine: the samples still count
    monkeypatch.setattr(admission_module, "OVERLOAD_GROWTH", 1)
    # three waiting, each arrival a sample (0, 1, 2): not yet three steps of growth
    token, admission, gate, (running, *waiting) = await held(client, monkeypatch, IDS, IDS, IDS)
    assert (await client.http.get("/readyz")).json()["requests"] == "ok"  # a queue may be a burst draining

    # The next arrival samples a queue grown three times in a row: overload. It waits ADMISSION_QUEUE_TARGET_SECONDS
    # (0 here) at most: shed.
    shed = await client.post(BOTH, token=token, headers={"Accept": "application/graphql-response+json"})
    assert shed.status_code == 503 and shed.headers["retry-after"] == "1"
    assert shed.headers["content-type"] == "application/graphql-response+json"
    body = shed.json()
    assert error_codes(body) == ["OVERLOADED"] and body["errors"][0]["extensions"]["retryAfter"] == 1
    assert "data" not in body
    assert admission.shed == 1 and gate.reached == [NAMES]  # the shed request never reached the endpoint
    ready = await client.http.get("/readyz")
    assert ready.status_code == 503 and ready.json()["requests"] == "saturated"

    gate.open.set()
    assert ok(await running)
    # Each waiting one waited past the target: shed when its turn comes, none runs late.
    for dropped in await asyncio.gather(*waiting):
        assert dropped.status_code == 503 and error_codes(dropped.json()) == ["OVERLOADED"]
    assert admission.in_flight == 0 and admission.shed == 4
    assert gate.reached == [NAMES]
    ready = await client.http.get("/readyz")  # overloaded within the last ADMISSION_QUEUE_SECONDS: still saturated
    assert ready.status_code == 503 and ready.json()["requests"] == "saturated"


async def test_under_overload_the_newest_waiting_request_runs_first(
    client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, admission, gate, (running, older, newer) = await held(client, monkeypatch, IDS, BOTH)
    admission.queue_target = 30.0  # waiting within the target: served, newest first
    admission.overload(time.perf_counter())  # as the growing queue above, or a shed at the ceiling, marks it
    gate.open.set()
    assert all(ok(response) for response in await asyncio.gather(running, older, newer))
    assert gate.reached == [NAMES, BOTH, IDS]  # adaptive LIFO: the fresh request first
    assert admission.shed == 0


async def test_a_closed_loop_filling_up_again_is_not_growth(client: GraphQLClient) -> None:
    """The requests in flight sampled once a tick (made-up times): a closed loop of 8 dips (answers on their way
    back) and fills up to 8 again, never above: not overload, however the dips fall. An open loop goes on to a new
    high: overload."""
    admission = client.services.admission
    base = time.perf_counter()
    tick = 0

    def sample(*counts: int) -> None:
        nonlocal tick
        for count in counts:
            admission.running = count  # in flight: running + waiting (none waits here)
            tick += 1
            admission._sample(base + 0.011 * tick)

    sample(*[8] * 30)
    sample(2, 4, 6, 8)  # three ticks of growth by 2, back to the level held
    sample(*[4] * 10, *[6] * 10, 8)  # two spans of growth by 2 (the mild rule), back to it
    assert not admission.overloaded(base + 0.011 * tick)
    sample(*[8] * 5, 4, 6, 8, 10)  # beyond it, three ticks in a row: overload
    assert admission.overloaded(base + 0.011 * tick)
    admission.running = 0


async def test_an_overload_that_goes_on_is_renewed_by_its_sheds(
    client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Overload lasts ADMISSION_QUEUE_SECONDS from when it was last seen. A request shed for its wait sees it again:
    while requests keep being shed the process stays overloaded, so no arrival in the middle of it finds the queue
    back in order of arrival (before, every ADMISSION_QUEUE_SECONDS the requests arriving until growth was seen again
    waited in order, up to tens of milliseconds: the accepted requests' p99 at 4x on MariaDB, bench/overload.py)."""
    token, admission, gate, (running, waiting) = await held(client, monkeypatch, IDS)
    admission.queue_seconds = 1.0
    admission.overload(time.perf_counter())  # seen (a growing queue, a shed at the ceiling)
    limiter = admission.limiter
    assert limiter is not None and limiter._overloaded  # the limiter's window is judged as overloaded
    seen = time.perf_counter()
    for _ in range(6):  # 1.5 s: past ADMISSION_QUEUE_SECONDS after it was first seen
        await asyncio.sleep(0.25)
        assert admission.overloaded(time.perf_counter())
        shed = await client.post(BOTH, token=token)  # waits the target (0 here): shed, and the overload renewed
        assert shed.status_code == 503 and error_codes(shed.json()) == ["OVERLOADED"]
    assert time.perf_counter() - seen > admission.queue_seconds and admission.overloaded(time.perf_counter())
    assert gate.reached == [NAMES] and admission.shed == 6
    gate.open.set()
    assert ok(await running)
    dropped = await waiting  # it waited past the target by then: shed when its turn came
    assert dropped.status_code == 503 and admission.shed == 7 and admission.in_flight == 0


async def test_a_renewed_overload_lapses_once_after_the_retest_time(client: GraphQLClient) -> None:
    """Renewed by its sheds for OVERLOAD_RETEST_SECONDS from when it began, then it lapses once: clients that send
    again at once on each 503 (a closed loop) renew it with their own retries, not with new demand. Growth seen again
    (an open loop's) begins a new one. On the admission's own clock, made-up times."""
    admission = client.services.admission
    admission.queue_seconds = 1.0
    base = time.perf_counter()
    admission.overload(base)
    for at in (0.5, 1.2, 2.0, 2.9, 3.8, 4.7, 5.6, 6.5, 7.4, 8.3, 9.2, 9.9):  # within 10 s of its beginning: renewed
        admission.renew(base + at)
        assert admission.overloaded(base + at + 0.99)
    admission.renew(base + 10.2)  # not renewed: it ends 1 s after the last renewal
    assert admission.overloaded(base + 10.5) and not admission.overloaded(base + 10.95)
    admission.renew(base + 11.5)  # lapsed: a shed cannot renew what has ended
    assert not admission.overloaded(base + 11.5)
    admission.overload(base + 12.0)  # seen again (the requests in flight grew): a new overload, renewed anew
    admission.renew(base + 12.5)
    assert admission.overloaded(base + 13.4)


async def test_sheds_renew_an_overload_only_while_demand_is_beyond_the_slots(client: GraphQLClient) -> None:
    """A shed renews the overload only while the arrivals of the last 0.1 s need more slots than are allowed, at
    their unloaded time. Under a limit of one, a few clients' requests that meet in the slot are shed for their wait
    once a burst has ended; their sheds renewed the overload until its 10 s re-test (make cluster-test: 5.8 s of 503s
    to a steady load of 4 clients after a pool exhaustion ended). On the admission's own clock, made-up times."""
    admission = client.services.admission
    limiter = admission.limiter
    assert limiter is not None
    limiter.baseline, limiter.limit, limiter.allowed = 0.005, 1.0, 1  # one at a time, 5 ms each when alone
    admission.queue_seconds = 1.0
    base = time.perf_counter()
    admission.overload(base)
    admission.renew(base + 0.05)  # nothing measured yet in this overload: renewed
    assert admission.overloaded(base + 1.04)
    for step in range(1, 6):  # an open loop at 1,000/s: 100 a window x 5 ms = 5 slots' worth, beyond 1
        admission.arrivals += 100
        admission.renew(base + 0.05 + 0.1 * step)
        assert admission.overloaded(base + 0.05 + 0.1 * step + 0.99)
    ended = base + 0.55  # the burst ends; 4 clients go on, 60 a second: 6 a window x 5 ms, 0.03 of a slot
    for step in range(1, 15):
        admission.arrivals += 6
        admission.renew(ended + 0.1 * step)  # their sheds do not renew it, once a window has measured them
    # the window that closes at the burst's end still counts it: the overload ends within a window of a second after
    assert admission.overloaded(ended + 0.99) and not admission.overloaded(ended + 1.0 + 2 * DEMAND_WINDOW_SECONDS)
    admission.overload(ended + 2.0)  # growth seen again: a new overload, measured anew
    admission.renew(ended + 2.05)
    assert admission.overloaded(ended + 3.04)
    limiter.baseline = float("inf")  # nothing learnt (or adaptive concurrency off): every shed renews, as before
    admission.renew(ended + 2.5)
    assert admission.overloaded(ended + 3.49)


async def test_a_closed_loop_keeps_a_queue_that_drains_and_nothing_is_shed(
    client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Clients that each send again on their answer keep a queue standing, served as fast as the process serves: not
    overload, nothing shed (under wrk's closed loop of 50 the old rule, `waiting without a break for
    ADMISSION_QUEUE_SECONDS`, shed them, and their retries cost what the 503s saved: bench/adaptive.py)."""
    token = await client.token("admin")
    admission = client.services.admission
    learnt(admission, 1)
    assert admission.limiter is not None
    admission.limiter.ceiling = 1  # and kept there: one runs at a time, the others wait throughout
    assert ok(await client.post(NAMES, token=token))  # warm: the first request of a process is the slowest
    admission.queue_seconds = 0.5
    waited: list[int] = []  # the requests in flight each waiting request found
    slot = admission.slot

    async def counted(now: float) -> bool:
        waited.append(admission.in_flight)
        return await slot(now)

    monkeypatch.setattr(admission, "slot", counted)
    answers: list[Any] = []
    started = time.perf_counter()

    async def loop() -> None:  # 1.5 s, 40 requests at most (RATE_LIMIT_PER_USER: 600 a minute)
        for _ in range(40):
            if time.perf_counter() - started > 1.5:
                break
            answers.append(await client.post(NAMES, token=token))

    await asyncio.gather(*(loop() for _ in range(4)))
    assert len(waited) >= 8 and max(waited) >= 2  # requests waited for the one slot
    assert [response.text for response in answers if not ok(response)] == []
    assert admission.shed == 0 and not admission.overloaded(time.perf_counter())
    assert (await client.http.get("/readyz")).json()["requests"] == "ok"


async def test_the_ceiling_still_sheds_at_once_and_adaptive_off_runs_up_to_it(
    client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(admission_module, "OVERLOAD_TICK_SECONDS", 60.0)  # 7 arrivals on a slow machine: no growth
    token, admission, gate, requests = await held(client, monkeypatch, *[NAMES] * 7)
    assert admission.running == 1 and admission.in_flight == 8
    shed = await client.post(NAMES, token=token)  # 1 running + 7 waiting: MAX_REQUESTS_IN_FLIGHT
    assert shed.status_code == 503 and error_codes(shed.json()) == ["OVERLOADED"]
    gate.open.set()
    responses = await asyncio.gather(*requests)
    # Shedding means overload: the waiting requests, which waited longer than the target (0 here), are shed when
    # their turn comes instead of running late.
    assert sum(1 for response in responses if ok(response)) == 1
    assert [error_codes(response.json()) for response in responses if not ok(response)] == [["OVERLOADED"]] * 7
    assert admission.shed == 8 and admission.in_flight == 0

    admission.limiter = None  # CONCURRENCY_ADAPTIVE=false: every request up to the ceiling runs at once
    gate.open.clear()
    requests = [asyncio.create_task(client.post(NAMES, token=token)) for _ in range(8)]
    await gate.until(lambda: admission.running == 8)
    gate.open.set()
    assert all(ok(response) for response in await asyncio.gather(*requests))
    assert admission.in_flight == 0 and admission.shed == 8

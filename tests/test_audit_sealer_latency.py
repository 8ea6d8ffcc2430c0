"""The background sealer never holds the server's event loop (issue 23).

A fast read loop (as the chief, patients lists: one read event per patient) runs against the app with its
lifespan (the background sealer on, as in production) for a few seconds, with a burst of 3,000 events inserted
at once on top, so that the sealer's passes cover hundreds to thousands of events whatever the machine's load. Every callback the event loop runs is timed in CPU time of the loop's thread
(`time.thread_time`), not wall-clock, so another process taking the machine's cores (a shared 2-core machine)
does not count against it. The longest single step of the sealer's task must stay under SEALER_STEP_BOUND: with
sealing on the loop (before issue 23), one 1,000-event step took 10-40 ms of the loop's CPU here. The lateness of a 1 ms ticker (the
lag every request felt, sealing or not) is reported beside it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from core.db import Database
from resolvers.audit.chain import CONTENT_FIELDS, unsealed_count, verify_chain
from resolvers.audit.seal import MAX_STEP_EVENTS, STEP_EVENTS
from resolvers.audit.sealer import next_step
from tests.conftest import GraphQLClient
from tests.test_audit_chain import add_events

PATIENTS = "{ patients(first: 20) { edges { node { id name gender } } } }"
SEALER_STEP_BOUND = 0.005  # seconds of the loop's CPU for one step of the sealer's task
READ_SECONDS = 4.0
CLIENTS = 3
BURST = 3000  # events inserted at once while the reads go on: sealing them on the loop took 10-40 ms per step


@dataclass
class LoopHolds:
    """CPU time the loop's thread spent in each callback, by who ran it (the sealer's task or anything else)."""

    sealer: list[float] = field(default_factory=list)
    longest_other: float = 0.0

    def record(self, handle: asyncio.Handle, spent: float) -> None:
        owner = getattr(getattr(handle, "_callback", None), "__self__", None)
        if isinstance(owner, asyncio.Task) and owner.get_name().startswith("audit-seal"):
            self.sealer.append(spent)
        else:
            self.longest_other = max(self.longest_other, spent)


def time_loop_callbacks(monkeypatch: pytest.MonkeyPatch) -> LoopHolds:
    """From now on (until the test ends), every callback an asyncio loop runs is timed into the result."""
    holds = LoopHolds()
    run = asyncio.Handle._run

    def timed(handle: asyncio.Handle) -> None:
        started = time.thread_time()
        try:
            run(handle)
        finally:
            holds.record(handle, time.thread_time() - started)

    monkeypatch.setattr(asyncio.Handle, "_run", timed)
    return holds


@pytest.fixture
def loop_holds(monkeypatch: pytest.MonkeyPatch) -> LoopHolds:
    return time_loop_callbacks(monkeypatch)


async def ticker(lateness: list[float], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        due = loop.time() + 0.001
        await asyncio.sleep(0.001)
        lateness.append(loop.time() - due)


@pytest.mark.parametrize("settings_overrides", [{"audit_seal_interval_seconds": 1.0, "rate_limit_enabled": False}])
async def test_sealing_never_holds_the_event_loop(client: GraphQLClient, db: Database, loop_holds: LoopHolds) -> None:
    token = await client.token("chief")
    sealer = client.services.sealer
    assert sealer is not None and not sealer.inline  # the production path: background passes
    stop = asyncio.Event()
    lateness: list[float] = []
    requests = 0

    async def reader() -> None:
        nonlocal requests
        while not stop.is_set():
            data = await client.data(PATIENTS, token=token)
            assert data["patients"]["edges"]
            requests += 1

    tick = asyncio.create_task(ticker(lateness, stop))
    readers = [asyncio.create_task(reader()) for _ in range(CLIENTS)]
    loop = asyncio.get_running_loop()
    started = loop.time()
    figures = sealer.figures
    # at least READ_SECONDS, and until sealing has run on real backlogs (a loaded machine serves fewer reads)
    await asyncio.sleep(1.0)
    # a burst on top of the reads (another instance's traffic, a backlog after a pause): a pass of thousands
    await add_events(db, BURST)
    await sealer.after_write()  # as a write would: wake the background pass
    await asyncio.sleep(READ_SECONDS - 1.0)
    for _ in range(300):  # a loaded machine seals slower: wait (reading) until the burst is sealed
        if figures.sealed >= BURST or loop.time() - started > 60:
            break
        await asyncio.sleep(0.2)
    seconds = loop.time() - started
    stop.set()
    await asyncio.gather(*readers, tick)

    await sealer.seal()  # what the last reads left
    lateness.sort()
    worst_step = max(loop_holds.sealer, default=0.0)
    print(
        f"\n{requests} requests in {seconds:.1f} s; sealer: {figures.passes} passes, {figures.sealed} events "
        f"(last passes {figures.recent}), longest pass {1000 * figures.longest_pass_seconds:.1f} ms wall; "
        f"longest step of the sealer on the loop {1000 * worst_step:.3f} ms CPU over {len(loop_holds.sealer)} steps; "
        f"longest other callback {1000 * loop_holds.longest_other:.1f} ms CPU; ticker lateness "
        f"p50 {1000 * lateness[len(lateness) // 2]:.2f} ms, p99 {1000 * lateness[int(len(lateness) * 0.99)]:.2f} ms, "
        f"max {1000 * lateness[-1]:.2f} ms"
    )
    # sealing really ran during the loop, on real backlogs: otherwise the bound would prove nothing
    assert figures.passes >= 2 and figures.sealed >= BURST, figures
    assert loop_holds.sealer, "the sealer's task never ran"
    assert worst_step < SEALER_STEP_BOUND, f"a sealing step held the event loop {1000 * worst_step:.1f} ms"
    # and the chain is whole: everything read was sealed, in order
    assert await unsealed_count(db) == 0
    result = await verify_chain(db)
    assert result.ok, result.report()


def test_the_bound_catches_sealing_on_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """The measurement itself: a sealer step that hashes on the loop (as before issue 23) is caught."""
    holds = time_loop_callbacks(monkeypatch)

    async def hashing_on_the_loop() -> None:
        from resolvers.audit.records import canonical_json, content_hash, event_record

        await asyncio.sleep(0)
        at = datetime(2026, 1, 1, tzinfo=UTC)
        for n in range(2000):  # what a step of sealing on the loop did: a batch of records hashed in one go
            row = dict.fromkeys(CONTENT_FIELDS, "x") | {"id": n, "occurred_at": at, "detail": {"n": n, "f": 0.5}}
            content_hash(event_record(row))
            canonical_json(event_record(row))  # (with json's own writer, as before orjson)

    async def main() -> None:
        await asyncio.create_task(hashing_on_the_loop(), name="audit-sealer")

    asyncio.run(main())
    assert max(holds.sealer) >= SEALER_STEP_BOUND


def test_a_sealer_falling_behind_takes_longer_steps_and_comes_back_to_short_ones() -> None:
    """Short steps keep SQLite's write lock held briefly, but each step costs milliseconds whatever it seals: a pass
    longer than the interval doubles the steps (up to MAX_STEP_EVENTS), one under half of it halves them back."""
    interval, base = 2.0, 100
    step = base
    for expected in (200, 400, MAX_STEP_EVENTS, MAX_STEP_EVENTS):  # behind, pass after pass
        step = next_step(step, base, 2.5, interval)
        assert step == expected
    assert next_step(step, base, 1.5, interval) == step  # keeping up, not idle: as it is
    for expected in (250, 125, base, base):  # caught up
        step = next_step(step, base, 0.3, interval)
        assert step == expected
    assert next_step(STEP_EVENTS, STEP_EVENTS, 9.0, interval) == STEP_EVENTS  # MariaDB's steps start at the most

"""A steady mix of reads and writes for the fault tests: every answer noted with its time, and every write made
with a unique marker (a position's name) so the database can be asked afterwards whether it was kept."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

READ = "{ positions { id name } }"
WRITE = "mutation ($n: String!) { createPosition(name: $n) { id name } }"
REQUEST_TIMEOUT = 20.0  # an answer later than this is a hang


@dataclass
class Outcome:
    kind: str  # read | write
    target: str  # which database the write went to (galera | single)
    marker: str
    started: float
    ended: float
    result: str  # ok, an extensions.code, HTTP <status> (no code: must not happen), TIMEOUT, NO_ANSWER
    status: int = 0
    in_doubt: bool = False  # the outcome of a write is unknown to the client (inDoubt, or the balancer lost it)

    @property
    def ok(self) -> bool:
        return self.result == "ok"


def classify(response: httpx.Response) -> tuple[str, bool]:
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        return f"HTTP {response.status_code}", False
    errors = body.get("errors") or []
    if not errors:
        return ("ok", False) if response.status_code == 200 else (f"HTTP {response.status_code}", False)
    extensions = errors[0].get("extensions") or {}
    code = extensions.get("code")
    if not code:
        return f"HTTP {response.status_code}", False
    # the balancer's own 502 UNAVAILABLE: the instance died with the request in hand; its write may have committed
    return str(code), bool(extensions.get("inDoubt")) or response.status_code == 502


@dataclass
class Load:
    url: str
    token: str
    target: str = "galera"
    workers: int = 4
    pause: float = 0.05
    outcomes: list[Outcome] = field(default_factory=list)
    _serial: itertools.count[int] = field(default_factory=itertools.count)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def _one(self, http: httpx.AsyncClient, kind: str) -> None:
        marker = f"fault-{self.target}-{next(self._serial)}-{time.monotonic_ns() % 10**9}"
        body = {"query": READ} if kind == "read" else {"query": WRITE, "variables": {"n": marker}}
        target, started = self.target, time.monotonic()
        status, in_doubt = 0, False
        try:
            response = await http.post(
                f"{self.url}/graphql", json=body, headers={"Authorization": f"Bearer {self.token}"}
            )
            result, in_doubt = classify(response)
            status = response.status_code
        except httpx.TimeoutException:
            result, in_doubt = "TIMEOUT", True
        except httpx.TransportError:
            result, in_doubt = "NO_ANSWER", True
        self.outcomes.append(Outcome(kind, target, marker, started, time.monotonic(), result, status, in_doubt))

    async def _worker(self, number: int) -> None:
        async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT) as http:
            for turn in itertools.count(number):
                if self._stop.is_set():
                    return
                await self._one(http, "write" if turn % 3 == 0 else "read")
                await asyncio.sleep(self.pause)

    async def run(self) -> None:
        await asyncio.gather(*(self._worker(number) for number in range(self.workers)))

    def stop(self) -> None:
        self._stop.set()

    def counts(self) -> Counter[str]:
        return Counter(outcome.result for outcome in self.outcomes)


def recovery(outcomes: list[Outcome], fault_ended: float, window_end: float) -> float:
    """Seconds after the fault ended until requests stopped failing (0 when none failed after it)."""
    failed = [o.ended for o in outcomes if fault_ended <= o.started < window_end and not o.ok]
    return max(failed, default=fault_ended) - fault_ended


def errors_stretch(outcomes: list[Outcome]) -> float:
    """Seconds from the first request answered with an error to the end of the last one (0 when none failed)."""
    failed = [o for o in outcomes if not o.ok]
    if not failed:
        return 0.0
    return max(o.ended for o in failed) - min(o.started for o in failed)

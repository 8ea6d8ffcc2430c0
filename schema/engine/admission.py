"""Admission of requests: shed load beyond a bound instead of queueing, stop what runs too long, stop cleanly.

- **Overload**: at most MAX_REQUESTS_IN_FLIGHT GraphQL and FHIR requests are in this process at once (running or
  waiting for a slot). One more is answered at once, HTTP 503 with `Retry-After` and `extensions.code` OVERLOADED:
  nothing of it ran, so a client or the balancer may send it again (to another instance). Queueing instead (in the
  pool's gate, in the kernel's backlog) makes every request slower until clients time out, and then the work done
  for them is lost too.
- **Adaptive concurrency** (CONCURRENCY_ADAPTIVE): of those, only as many *run* at once as the latency of the last
  requests says the process can overlap (schema/engine/limiter.py: the limit falls when requests take more than
  CONCURRENCY_LATENCY_TOLERANCE times their unloaded time). The others wait for a slot, in order of arrival, at
  most ADMISSION_QUEUE_SECONDS: a burst drains, and so does the queue of a closed loop (50 clients that each send
  again on their answer keep about 50 waiting, served as fast as the process can: shedding them would only cost
  the CPU of their 503s and of their retries).
- **Overload** is demand beyond what the process serves, which a queue that drains is not: the requests in flight
  grew tick after tick (an open loop sending faster than requests leave), a request waited ADMISSION_QUEUE_SECONDS
  for its slot, or one was shed at the ceiling. For ADMISSION_QUEUE_SECONDS after that (renewed each time a
  request is shed for its wait while the arrivals still need more slots than are allowed: an overload that goes on
  does not lapse, one whose demand has passed does),
  waiting requests are served newest first and a request waits at most ADMISSION_QUEUE_TARGET_SECONDS: one that
  waited longer is shed when its turn comes (CoDel's idea), so accepted requests do not carry a long wait (adaptive
  LIFO: the ones shed are those that waited longest). One not given a slot is answered 503 OVERLOADED, nothing of it
  run. Meanwhile the limit serves the accepted requests' latency rather than the throughput:
  CONCURRENCY_OVERLOAD_TOLERANCE, down to one request at a time (limiter.py).
- **The door** (schema/engine/door.py): under overload, requests go in at the pace of a token bucket,
  ADMISSION_DOOR_PACE times the rate requests are answered; the others, and those beyond MAX_REQUESTS_IN_FLIGHT, are
  answered 503 OVERLOADED by uvicorn's protocol as soon as their head is read (`door`), before a request's task and
  scope are set up: about half the CPU of a refusal in the middleware, on the core the accepted requests need. The
  newest of those let in runs when a slot frees; the others are shed after their wait, as before.
- While the process is full, is overloaded or has shed in the last second, /readyz answers 503
  `saturated`, so a balancer that checks it steers new work elsewhere.
- **Deadline**: a GraphQL request still running after REQUEST_TIMEOUT_SECONDS is cancelled and answered 504 with
  TIMEOUT, unless one of its writes has begun to commit (core/deadline.py): that request runs on (for as long again
  at most) to its answer, so a client never hears an error for a write that was kept.
- **Shutdown** (schema/engine/shutdown.py drives it on SIGTERM): `drain()` makes /readyz fail; `refuse()` answers
  new requests 503 SHUTTING_DOWN (`Connection: close`); `close_sockets()` closes every subscription socket with 1001
  (going away), so clients reconnect, through the balancer, to another instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import time
from collections import deque
from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from core.deadline import CommitWatch, watching
from core.errors import ErrorCode
from core.settings import Settings
from schema.engine.errors import request_error
from schema.engine.limiter import GradientLimit

# The adaptive limit's start, before anything is known: a burst of this many runs at once (the fixed limit's old
# default); the limit grows towards MAX_REQUESTS_IN_FLIGHT only while latency allows, so an overload that begins from
# quiet does not run the whole ceiling at once.
INITIAL_CONCURRENCY = 64
# The requests in flight (running + waiting: arrived and not answered) are counted at most once a tick, on arrivals
# that wait. Overload is growth that goes on: by at least OVERLOAD_GROWTH in each of OVERLOAD_TICKS ticks in a row
# (at 4x what the process serves, 500/s, 15 a tick: seen in 30 ms), or by at least OVERLOAD_GROWTH in each of the
# last two spans of OVERLOAD_SPAN ticks (a milder overload, 1.2x: 10 a span, seen in 0.2 s). A burst (30 bookings
# at once) or a closed loop starting grows in one step, then drains or stays: a closed loop's requests in flight
# cannot outnumber its clients, however the limit moves them between running and waiting.
OVERLOAD_TICK_SECONDS = 0.01
OVERLOAD_GAP_SECONDS = 0.05  # no request waited this long: the samples before do not count
OVERLOAD_TICKS = 3
OVERLOAD_SPAN = 10
OVERLOAD_GROWTH = 2
# Growth counts only up to a new high: the last sample above every one of the second before the growth looked at. A
# closed loop's requests in flight dip (answers on their way back) and rise again to its number of clients, never
# above: without this, 4 -> 6 -> 8 among 8 clients looked like a mild overload, and clients that send again at once
# on their 503 then kept it going (bench/overload.py's closed loop, shed 35,000 times in 10 s).
OVERLOAD_HISTORY = 100
# An overload renewed by its own sheds lapses this long after it began, once, and is seen again by growth: each lapse
# gives the requests served in the ~30 ms until then a wait in order of arrival (0.3 % of them at 4x: beyond the p99).
OVERLOAD_RETEST_SECONDS = 10.0
# A shed renews the overload only while demand is beyond what the process serves: the requests that arrived over the
# last DEMAND_WINDOW_SECONDS (at least) need more slots than are allowed, at their unloaded time (the limit's
# baseline). Under a limit of one, a few clients' requests that meet in the slot are shed for their 2 ms wait; their
# sheds renewed the overload, once the burst that began it had ended, until OVERLOAD_RETEST_SECONDS (make
# cluster-test: 5.8 s of 503s to a steady load of 4 clients after a pool exhaustion ended).
DEMAND_WINDOW_SECONDS = 0.1
# Under overload requests go in at the pace of a token bucket (ADMISSION_DOOR_PACE times the rate answered over the
# last DEMAND_WINDOW_SECONDS) holding this many at most: the newest of those that went in runs when a slot frees, and
# the others are answered at the door (schema/engine/door.py) instead of after their wait.
DOOR_BURST = 2.0

log = logging.getLogger("followup.admission")

GUARDED = ("/graphql", "/fhir/")  # the paths whose requests are counted, shed and (GraphQL) timed
SATURATED_AFTER_SHED_SECONDS = 1.0  # /readyz says `saturated` this long after the last request shed
GRAPHQL_RESPONSE = "application/graphql-response+json"
CANCEL_WAIT_SECONDS = 5.0  # a cancelled request's clean-up (its rollback) is awaited this long, then left


def guarded(path: str) -> bool:
    """A GraphQL or FHIR request: counted, shed (by the middleware or at the door) and, GraphQL, timed."""
    return path == GUARDED[0] or path.startswith(GUARDED[1])


class Admission:
    """This process's requests in flight, what it shed and timed out, and whether it is stopping."""

    def __init__(self, settings: Settings) -> None:
        self.limit = settings.max_requests_in_flight  # the ceiling: running + waiting
        self.timeout = settings.request_timeout_seconds
        self.door_pace = settings.admission_door_pace
        self.queue_seconds = settings.admission_queue_seconds
        self.queue_target = settings.admission_queue_target_seconds
        self.limiter: GradientLimit | None = (
            GradientLimit(
                ceiling=self.limit,
                floor=settings.concurrency_min,
                tolerance=settings.concurrency_latency_tolerance,
                overload_tolerance=settings.concurrency_overload_tolerance,
                now=time.perf_counter(),
                initial=INITIAL_CONCURRENCY,
            )
            if settings.concurrency_adaptive
            else None
        )
        self.running = 0
        self.shed = 0
        self.timed_out = 0
        self.draining = False  # /readyz fails (SIGTERM)
        self.refusing = False  # new requests are answered SHUTTING_DOWN
        self._last_shed = float("-inf")
        self._overloaded_until = float("-inf")  # perf_counter: overload seen, served newest first until then
        self._overload_began = float("-inf")  # when the current (or last) overload began
        self._waiting: deque[tuple[float, asyncio.Future[bool]]] = deque()  # (since, waiter)
        self._tick = float("-inf")  # when the requests in flight were last counted
        self._lengths: deque[int] = deque(maxlen=OVERLOAD_HISTORY + 2 * OVERLOAD_SPAN + 1)  # in flight, oldest first
        self.arrivals = 0  # guarded requests that came in (counted by the middleware, or by the door that refused them)
        self.answered = 0  # requests that ran and answered
        self.refused_at_door = 0  # of those shed, the ones the door answered (schema/engine/door.py)
        self._demand = float("inf")  # arrivals a second over the last window (inf: not measured in this overload)
        self._pace = 0.0  # requests let in a second under overload (0: not measured yet in this overload)
        self._demand_at = float("-inf")  # perf_counter of the last window's end
        self._demand_count = 0  # `arrivals` then
        self._answered_count = 0  # `answered` then
        self._tokens = DOOR_BURST  # the door's token bucket, under overload
        self._tokens_at = float("-inf")
        self._sockets: set[WebSocket] = set()
        self._emptied: asyncio.Event | None = None

    @property
    def in_flight(self) -> int:
        """Requests running or waiting for a slot."""
        return self.running + len(self._waiting)

    @property
    def allowed(self) -> int:
        """How many may run at once now."""
        return self.limit if self.limiter is None else self.limiter.allowed

    @property
    def slot_free(self) -> bool:
        """A request arriving now may run at once: fewer run than are allowed, and none waits before it."""
        return self.running < self.allowed and not self._waiting

    def overloaded(self, now: float) -> bool:
        """Overload (the requests in flight grew tick after tick, a request waited ADMISSION_QUEUE_SECONDS, or one
        was shed at the ceiling) was seen less than ADMISSION_QUEUE_SECONDS ago: not a burst nor a closed loop, which
        drain."""
        return now < self._overloaded_until

    def overload(self, now: float) -> None:
        """Overload seen now: for ADMISSION_QUEUE_SECONDS waiting requests are served newest first, each waiting
        ADMISSION_QUEUE_TARGET_SECONDS at most, and the limit serves their latency (limiter.py). Seen again while it
        lasts (a request shed for its wait), it is renewed: an overload that goes on does not lapse to waiting in
        order of arrival, which gives the requests arriving then a long wait."""
        if now >= self._overloaded_until:
            self._overload_began = now
            self._demand, self._demand_at, self._demand_count = float("inf"), now, self.arrivals  # measured anew
            self._pace, self._answered_count = 0.0, self.answered
            self._tokens, self._tokens_at = DOOR_BURST, now
            if self.limiter is not None:
                self.limiter.overload_began(now)
        self._overloaded_until = now + self.queue_seconds
        self._lengths.clear()  # growth is looked for again once this overload has passed, from then on

    @property
    def saturated(self) -> bool:
        now = time.monotonic()
        return (
            self.in_flight >= self.limit
            or now - self._last_shed < SATURATED_AFTER_SHED_SECONDS
            or self.overloaded(time.perf_counter())
        )

    def readiness(self) -> str:
        if self.draining:
            return "draining"
        return "saturated" if self.saturated else "ok"

    # ---- shutdown -------------------------------------------------------------------------------

    def drain(self) -> None:
        self.draining = True

    def refuse(self) -> None:
        self.draining = self.refusing = True

    def socket_opened(self, websocket: WebSocket) -> bool:
        """Track an open subscription socket; False once the instance is stopping (the socket is refused)."""
        if self.refusing:
            return False
        self._sockets.add(websocket)
        return True

    def socket_closed(self, websocket: WebSocket) -> None:
        self._sockets.discard(websocket)
        if not self._sockets and self._emptied is not None:
            self._emptied.set()

    @property
    def open_sockets(self) -> int:
        return len(self._sockets)

    async def close_sockets(self, *, wait: float = 2.0) -> int:
        """Close every open subscription socket with 1001 (going away); wait up to `wait` s for them to end."""
        sockets = list(self._sockets)
        self._emptied = emptied = asyncio.Event()
        for websocket in sockets:
            with contextlib.suppress(Exception):  # already closing or closed
                await websocket.close(code=1001, reason="server shutting down: reconnect")
        if self._sockets:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(emptied.wait(), timeout=wait)
        return len(sockets)

    # ---- the request path -----------------------------------------------------------------------

    def note_shed(self) -> None:
        self.shed += 1
        self._last_shed = time.monotonic()

    def _sample(self, now: float) -> None:
        """The requests in flight once a tick, outside overload: growth that goes on is overload. Not under overload:
        its sheds empty the queue, and a closed loop's clients, each sending again on its 503, fill it up again (growth
        that is not new demand)."""
        if now - self._tick < OVERLOAD_TICK_SECONDS or now < self._overloaded_until:
            return
        lengths = self._lengths
        if now - self._tick > OVERLOAD_GAP_SECONDS:
            lengths.clear()  # no request waited for a while: growth is counted over ticks that follow each other
        self._tick = now
        lengths.append(self.in_flight)
        samples = len(lengths)
        if samples > OVERLOAD_TICKS and all(
            lengths[at] - lengths[at - 1] >= OVERLOAD_GROWTH for at in range(samples - OVERLOAD_TICKS, samples)
        ):
            if _new_high(lengths, OVERLOAD_TICKS + 1):
                self.overload(now)
        elif samples > 2 * OVERLOAD_SPAN and (
            lengths[-1] - lengths[-1 - OVERLOAD_SPAN] >= OVERLOAD_GROWTH
            and lengths[-1 - OVERLOAD_SPAN] - lengths[-1 - 2 * OVERLOAD_SPAN] >= OVERLOAD_GROWTH
        ):
            if _new_high(lengths, 2 * OVERLOAD_SPAN + 1):
                self.overload(now)

    async def slot(self, now: float) -> bool:
        """Wait for a slot to run in (`running` counts this request once True); False: none came in time."""
        self._sample(now)
        overloaded = self.overloaded(now)
        budget = self.queue_target if overloaded else self.queue_seconds
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        entry = (now, waiter)
        self._waiting.append(entry)
        expiry = loop.call_later(budget, self._expire, entry)
        try:
            return await waiter
        except BaseException:  # cancelled while waiting (or just after being given its slot)
            if waiter.done() and not waiter.cancelled() and waiter.result():
                self.finished(time.perf_counter(), 0.0, sample=False)
            else:
                self._forget(entry)
            raise
        finally:
            expiry.cancel()

    def renew(self, now: float) -> None:
        """Under overload a request was shed for its wait: the overload goes on, renewed, for OVERLOAD_RETEST_SECONDS
        from when it began at most. Then it lapses once, and is seen again only if the requests in flight grow again
        (an open loop's do within 30 ms): clients that each send again at once on their 503 (a closed loop ignoring
        Retry-After) would otherwise renew it for ever, shed when their queue would have drained."""
        if self.overloaded(now) and now - self._overload_began < OVERLOAD_RETEST_SECONDS and self._beyond(now):
            self.overload(now)

    def _measure(self, now: float) -> None:
        """Under overload, once a DEMAND_WINDOW_SECONDS at least: the arrivals a second over the last window, and the
        pace the door lets requests in at (ADMISSION_DOOR_PACE x those answered a second)."""
        elapsed = now - self._demand_at
        if elapsed >= DEMAND_WINDOW_SECONDS:
            self._demand = (self.arrivals - self._demand_count) / elapsed
            self._pace = self.door_pace * (self.answered - self._answered_count) / elapsed
            self._demand_at, self._demand_count, self._answered_count = now, self.arrivals, self.answered

    def at_ceiling(self, now: float) -> bool:
        """MAX_REQUESTS_IN_FLIGHT reached: this request is shed (counted so) and overload is seen."""
        if self.in_flight < self.limit:
            return False
        self.note_shed()
        self.overload(now)
        return True

    def door(self, now: float) -> bool:
        """Whether to answer this request 503 OVERLOADED before it goes in (schema/engine/door.py writes the answer,
        the request counted here as come in and shed): at MAX_REQUESTS_IN_FLIGHT, or under overload while no slot is
        free, beyond the pace of a token bucket (ADMISSION_DOOR_PACE x the rate answered). Those let in wait for a
        slot, newest first, and the ones not given one are shed after their wait by the middleware, at about twice
        the CPU of a refusal here (uvicorn's setting up of a request and its task). A request finding a slot free
        always goes in: once a flood has passed, a pace measured over a window before its end would otherwise refuse
        a lone client that resends at once for as long as the pace takes to rise (seen: 1,770 refusals)."""
        if self.at_ceiling(now):
            refused = True
        elif self.door_pace <= 0.0 or not self.overloaded(now) or self.slot_free:
            return False
        else:
            self._measure(now)
            pace = self._pace
            if pace <= 0.0:  # nothing answered yet in this overload: all go in (the queue sheds)
                return False
            tokens = min(DOOR_BURST, self._tokens + (now - self._tokens_at) * pace)
            self._tokens_at = now
            refused = tokens < 1.0
            self._tokens = tokens if refused else tokens - 1.0
            if refused:
                self.renew(now)
                self.note_shed()
        if refused:
            self.arrivals += 1
            self.refused_at_door += 1
        return refused

    def _beyond(self, now: float) -> bool:
        """Demand is beyond what the allowed slots serve: arrivals a second (over the last DEMAND_WINDOW_SECONDS
        at least) x a request's unloaded time > the slots allowed. True while either is unknown (no window measured
        yet, adaptive concurrency off)."""
        self._measure(now)
        limiter = self.limiter
        if limiter is None or limiter.baseline == float("inf"):
            return True
        return self._demand * limiter.baseline > self.allowed

    def _expire(self, entry: tuple[float, asyncio.Future[bool]]) -> None:
        if not entry[1].done():
            self._forget(entry)
            entry[1].set_result(False)
            now = time.perf_counter()
            if self.overloaded(now):  # waited its target under overload: the overload goes on
                self.renew(now)
            else:  # ADMISSION_QUEUE_SECONDS without a slot: the queue does not drain
                self.overload(now)

    def _forget(self, entry: tuple[float, asyncio.Future[bool]]) -> None:
        with contextlib.suppress(ValueError):
            self._waiting.remove(entry)

    def finished(self, now: float, started: float, *, sample: bool = True) -> None:
        """A request that ran since `started` has answered: its slot goes to a waiting one, the oldest; under overload
        the newest, and one that has waited longer than ADMISSION_QUEUE_TARGET_SECONDS is shed instead (as CoDel
        drops what has waited too long when it leaves the queue): accepted requests do not carry a long wait."""
        running = self.running
        self.running = running - 1
        self.answered += sample
        limiter = self.limiter
        if limiter is not None and sample:
            limiter.observe(now, now - started, running, overloaded=self.overloaded(now))
        waiting = self._waiting
        if waiting:
            allowed = self.allowed
            overloaded = self.overloaded(now)
            while waiting and self.running < allowed:
                # under overload newest first: the oldest are the ones shed
                enqueued, waiter = waiting.pop() if overloaded else waiting.popleft()
                if waiter.done():
                    continue
                if overloaded and now - enqueued > self.queue_target:
                    waiter.set_result(False)  # its request is counted as shed by the middleware
                    self.renew(now)  # the overload goes on
                    continue
                self.running += 1
                waiter.set_result(True)


class AdmissionMiddleware:
    def __init__(self, app: ASGIApp, admission: Admission) -> None:
        self.app = app
        self.admission = admission

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not guarded(path):
            await self.app(scope, receive, send)
            return
        admission = self.admission
        if admission.refusing:
            message = "This server is shutting down; send the request again (another instance will answer)"
            headers = {"retry-after": "1", "connection": "close"}
            await _refuse(scope, send, 503, ErrorCode.SHUTTING_DOWN, message, headers)
            return
        now = time.perf_counter()
        admission.arrivals += 1
        if admission.at_ceiling(now):
            await _overloaded(scope, send)
            return
        if admission.slot_free:
            admission.running += 1
        elif not await admission.slot(now):
            admission.note_shed()
            await _overloaded(scope, send)
            return
        started = time.perf_counter()
        counted = True

        def release() -> None:
            nonlocal counted
            if counted:
                counted = False
                admission.finished(time.perf_counter(), started)

        async def answered(message: Any) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                release()  # answered: the client may send its next request before this task's last steps run

        try:
            if path == GUARDED[0]:
                await self._within_deadline(scope, receive, answered)
            else:  # FHIR: its downloads stream for as long as they need; its export runs as a job
                await self.app(scope, receive, answered)
        finally:
            release()

    async def _within_deadline(self, scope: Scope, receive: Receive, send: Send) -> None:
        admission = self.admission
        started = False

        async def tracked(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        watch = CommitWatch()
        with watching(watch):  # the task copies the context: its commits mark this watch
            task = asyncio.ensure_future(self.app(scope, receive, tracked))
        try:
            done, _ = await asyncio.wait({task}, timeout=admission.timeout)
            if not done and (watch.committing or started):
                done, _ = await asyncio.wait({task}, timeout=admission.timeout)  # a kept write: let it answer
        except asyncio.CancelledError:
            task.cancel()
            raise
        if done:
            task.result()  # what the app raised, raised here
            return
        task.cancel()
        await asyncio.wait({task}, timeout=CANCEL_WAIT_SECONDS)  # its rollback and connection given back
        admission.timed_out += 1
        log.warning("request stopped after %.1f s (REQUEST_TIMEOUT_SECONDS)", admission.timeout)
        if not started:
            seconds = f"{admission.timeout:g}"
            if watch.committing:  # ran twice its time after a write began to commit: that write may have been kept
                message = f"The request ran past {seconds} seconds twice and was stopped after a write of it committed"
                await _refuse(scope, send, 504, ErrorCode.TIMEOUT, message, {}, committed=True)
            else:
                message = f"The request took longer than {seconds} seconds and was stopped; nothing of it was kept"
                await _refuse(scope, send, 504, ErrorCode.TIMEOUT, message, {})


def _new_high(lengths: deque[int], window: int) -> bool:
    """The last sample is above every sample before the last `window` (the growth looked at): not a closed loop
    filling up again to the level it has held."""
    before = len(lengths) - window
    return before <= 0 or lengths[-1] > max(itertools.islice(lengths, 0, before))


OVERLOADED_MESSAGE = "The server is busy; nothing was done: try again in a second"
Headers = list[tuple[bytes, bytes]]


@functools.lru_cache(maxsize=64)  # the few Accept headers clients send: each 503 of an overload is the same bytes
def overloaded_answer(accept: bytes) -> tuple[Headers, bytes]:
    """The 503 OVERLOADED answer's headers and body, for a client that sent this Accept header (not to be changed)."""
    return answer(accept, ErrorCode.OVERLOADED, OVERLOADED_MESSAGE, {"retry-after": "1"}, retryAfter=1)


def answer(
    accept: bytes, code: ErrorCode, message: str, headers: dict[str, str], **extensions: Any
) -> tuple[Headers, bytes]:
    """An answer of our own, in GraphQL-over-HTTP form (the media type the client accepts): headers and body."""
    media = GRAPHQL_RESPONSE if GRAPHQL_RESPONSE.encode() in accept else "application/json"
    body = orjson.dumps(request_error(code, message, **extensions))
    raw = [
        (b"content-type", media.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *((key.encode(), value.encode()) for key, value in headers.items()),
    ]
    return raw, body


def accepted(headers: Any) -> bytes:
    """The request's Accept header (b"" when absent)."""
    for name, value in headers:
        if name == b"accept":
            return bytes(value)
    return b""


async def _overloaded(scope: Scope, send: Send) -> None:
    raw, body = overloaded_answer(accepted(scope.get("headers", [])))
    await send({"type": "http.response.start", "status": 503, "headers": list(raw)})  # a copy: CORS appends to it
    await send({"type": "http.response.body", "body": body})


async def _refuse(
    scope: Scope, send: Send, status: int, code: ErrorCode, message: str, headers: dict[str, str], **extensions: Any
) -> None:
    raw, body = answer(accepted(scope.get("headers", [])), code, message, headers, **extensions)
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})

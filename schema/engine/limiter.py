"""How many requests may run at once, learnt from their latency: a latency-gradient limit (after TCP Vegas and
Netflix's concurrency-limits "Gradient"), pure arithmetic on times handed in (no clock, no event loop: tested with
made-up times).

One process serves its requests on one event loop: running more of them at once than its CPU and database can
overlap only makes each one slower (they share the CPU), it does not answer more of them per second. So the limit
follows the latency of the requests that ran:

- every `window` seconds (and at least `min_samples` requests), the window's mean latency is compared with the
  **baseline**, the lowest window mean seen (what a request takes when little else runs; it may rise by `drift` a
  window, so a machine that became slower for good is learnt, slowly);
- the gradient `tolerance x baseline / mean`, kept within [0.5, 1]: below 1, requests take more than `tolerance`
  times their unloaded time with `peak` (the most that ran at once in the window) running, so the limit becomes
  `min(limit, peak) x gradient` at once (at most halved: from 64 to 2 in five windows). What ran counts, not an
  unused limit: a moderate load (8 at once under 64) that is already slow teaches the limit, so when the load then
  jumps it finds a limit near what the process can overlap, not the ceiling. A window where at most `floor` ran
  (a slow report alone) changes nothing. At 1 the limit grows by `smoothing` times its square root, only if the
  window used at least half of it (a limit nobody reaches was not shown too low);
- the limit stays within [floor, ceiling].

**Under overload** (demand beyond what the process serves, seen by admission: an open loop sending faster than
requests leave) the limit serves the latency of the requests it accepts, not the throughput: a window with a request
that ran under overload is judged with `overload_tolerance` (stricter) and the limit may fall to 1. Outside overload
(a closed loop, a burst) throughput wins: `tolerance` and `floor`. On SQLite (one process, one lock on the
interpreter) two requests at once each take about twice as long; on MariaDB part of each request waits for the
database and overlaps, yet two at once each took 1.3-1.8x their time alone (bench/overload.py's server-side
trace). The default overload tolerance, 1.0, keeps a second one only while a window is as fast as the best seen:
under overload one runs at a time, with a second one tried now and then.

Admission (schema/engine/admission.py) lets `allowed` requests run; the others wait for a slot, briefly, or are shed.
"""

from __future__ import annotations

import math


class GradientLimit:
    def __init__(
        self,
        *,
        ceiling: int,
        floor: int,
        tolerance: float,
        now: float,
        overload_tolerance: float | None = None,
        window: float = 0.1,
        min_samples: int = 10,
        smoothing: float = 0.5,
        drift: float = 0.002,
        initial: int | None = None,
    ) -> None:
        self.ceiling = ceiling
        self.floor = min(floor, ceiling)
        self.tolerance = tolerance
        self.overload_tolerance = tolerance if overload_tolerance is None else min(tolerance, overload_tolerance)
        self.window = window
        self.min_samples = min_samples
        self.smoothing = smoothing
        self.drift = drift
        # Nothing is known yet: open, so a burst runs as it did without the limit (the tests' 30 clients at once on a
        # busy machine). The price: an overload that begins now runs up to the ceiling at once, slowly, until the
        # first windows close (bench/overload.py's accepted p99 over its first 2 s). A lower start (16) had a burst
        # of 30 bookings wait past ADMISSION_QUEUE_SECONDS on the loaded test machine.
        self.allowed = ceiling if initial is None else min(ceiling, initial)  # int(limit): read on every request
        self.limit = float(self.allowed)
        self.baseline = math.inf
        self.last_mean = math.nan
        self._started = now
        self._sum = 0.0
        self._count = 0
        self._peak = 0
        self._overloaded = False  # a request of this window ran under overload

    def observe(self, now: float, latency: float, running: int, *, overloaded: bool = False) -> None:
        """A request ran `latency` seconds; `running` ran at once when it ended (itself included); `overloaded`: it
        ran under overload (the window is judged by `overload_tolerance`, with 1 as the floor)."""
        if overloaded:
            self._overloaded = True
        self._sum += latency
        self._count += 1
        if running > self._peak:
            self._peak = running
        if self._count >= self.min_samples and now - self._started >= self.window:
            self._update(now)

    def overload_began(self, now: float) -> None:
        """Overload has just been seen: the window so far is judged at once, by `overload_tolerance` (its first cut
        does not wait for the window to close: requests arriving at 4x pile up meanwhile)."""
        self._overloaded = True
        if self._count >= 3:
            self._update(now)

    def _update(self, now: float) -> None:
        mean = self._sum / self._count
        self.last_mean = mean
        self.baseline = min(self.baseline * (1.0 + self.drift), mean)
        limit = self.limit
        overloaded = self._overloaded
        tolerance, floor = (self.overload_tolerance, 1) if overloaded else (self.tolerance, self.floor)
        gradient = max(0.5, min(1.0, tolerance * self.baseline / mean)) if mean > 0 else 1.0
        peak = self._peak
        if gradient < 1.0 and peak > floor:
            # Too slow with `peak` running: no more than that may run at once, shrunk by the gradient at once (at most
            # halved). Applied to what ran, not to an unused limit: 8 clients at once under a limit of 64 that take
            # 4x their unloaded time teach a limit of 4, so a load that then jumps finds it there, not at 64.
            limit = min(limit, peak) * gradient
        elif gradient < 1.0 or peak < limit / 2:
            pass  # slow alone (a report; at most `floor` ran), or fast but the limit was not used: not shown too low
        else:
            limit += self.smoothing * math.sqrt(limit)
        self.limit = max(float(floor), min(float(self.ceiling), limit))
        self.allowed = int(self.limit)
        self._started = now
        self._sum = 0.0
        self._count = 0
        self._peak = 0
        self._overloaded = False

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
  times their unloaded time, so the limit shrinks by that factor (at most halved); at 1 the limit may grow by its
  square root, but only if the window used at least half of it (a limit nobody reaches is not evidence);
- the new limit moves `smoothing` of the way there, within [floor, ceiling].

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
        window: float = 0.1,
        min_samples: int = 10,
        smoothing: float = 0.5,
        drift: float = 0.002,
    ) -> None:
        self.ceiling = ceiling
        self.floor = min(floor, ceiling)
        self.tolerance = tolerance
        self.window = window
        self.min_samples = min_samples
        self.smoothing = smoothing
        self.drift = drift
        self.limit = float(ceiling)  # start open: nothing is known yet, and a first burst is served
        self.allowed = ceiling  # int(limit): what admission reads on every request
        self.baseline = math.inf
        self.last_mean = math.nan
        self._started = now
        self._sum = 0.0
        self._count = 0
        self._peak = 0

    def observe(self, now: float, latency: float, running: int) -> None:
        """A request ran `latency` seconds; `running` ran at once when it ended (itself included)."""
        self._sum += latency
        self._count += 1
        if running > self._peak:
            self._peak = running
        if self._count >= self.min_samples and now - self._started >= self.window:
            self._update(now)

    def _update(self, now: float) -> None:
        mean = self._sum / self._count
        self.last_mean = mean
        self.baseline = min(self.baseline * (1.0 + self.drift), mean)
        limit = self.limit
        gradient = max(0.5, min(1.0, self.tolerance * self.baseline / mean)) if mean > 0 else 1.0
        if gradient < 1.0:
            target = limit * gradient
        elif self._peak >= limit / 2:
            target = limit + math.sqrt(limit)
        else:
            target = limit
        limit += self.smoothing * (target - limit)
        self.limit = max(float(self.floor), min(float(self.ceiling), limit))
        self.allowed = int(self.limit)
        self._started = now
        self._sum = 0.0
        self._count = 0
        self._peak = 0

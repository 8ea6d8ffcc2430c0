"""The running process: start time, memory, CPU and event-loop lag, sampled in the background.

The lag sampler sleeps LAG_SAMPLE_SECONDS at a time and notes how much later than asked it woke: the time the
loop was busy with something else (a long synchronous step delays every request by as much). The last minute of
samples is kept for the lag's current value, mean and maximum, and for the CPU share over that minute.
"""

from __future__ import annotations

import asyncio
import os
import resource
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime

from core.background import stop_task
from core.timeutil import utcnow

LAG_SAMPLE_SECONDS = 0.5
_KEPT = 120  # samples: one minute


@dataclass(frozen=True)
class ProcessFigures:
    started_at: datetime
    uptime_seconds: float
    memory_bytes: int | None  # resident set now
    peak_memory_bytes: int
    cpu_seconds: float  # user + system since start
    cpu_percent: float | None  # of one core, over the last minute (None before the first samples)
    loop_lag_ms: float | None
    loop_lag_mean_ms: float | None
    loop_lag_max_ms: float | None
    pid: int


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _resident_bytes() -> int | None:
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class Monitor:
    def __init__(self) -> None:
        self.started_at = utcnow()
        self._started = time.monotonic()
        self._lags: deque[float] = deque(maxlen=_KEPT)
        self._cpu: deque[tuple[float, float]] = deque(maxlen=_KEPT)  # (monotonic, cpu seconds)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._sample(), name="loop-lag")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)

    async def _sample(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time()
            await asyncio.sleep(LAG_SAMPLE_SECONDS)
            self._lags.append(max(0.0, loop.time() - asked - LAG_SAMPLE_SECONDS))
            self._cpu.append((time.monotonic(), _cpu_seconds()))

    def figures(self) -> ProcessFigures:
        lags = list(self._lags)
        cpu_percent = None
        if len(self._cpu) >= 2:
            (first_at, first_cpu), (last_at, last_cpu) = self._cpu[0], self._cpu[-1]
            if last_at > first_at:
                cpu_percent = round(100.0 * (last_cpu - first_cpu) / (last_at - first_at), 1)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux
        return ProcessFigures(
            started_at=self.started_at,
            uptime_seconds=round(time.monotonic() - self._started, 3),
            memory_bytes=_resident_bytes(),
            peak_memory_bytes=peak,
            cpu_seconds=round(_cpu_seconds(), 3),
            cpu_percent=cpu_percent,
            loop_lag_ms=round(lags[-1] * 1000, 2) if lags else None,
            loop_lag_mean_ms=round(1000 * sum(lags) / len(lags), 2) if lags else None,
            loop_lag_max_ms=round(max(lags) * 1000, 2) if lags else None,
            pid=os.getpid(),
        )

"""SIGTERM, gracefully: steer the balancer away, finish what runs, tell websockets to go elsewhere, write what is
buffered, exit within SHUTDOWN_GRACE_SECONDS.

Installed by the served app only (`server.py serve`, in each worker), in its lifespan, over uvicorn's own handler:
1. `/readyz` answers 503 `draining` at once; requests are still served for SHUTDOWN_DRAIN_SECONDS, so a balancer
   that checks readiness stops sending before the port closes;
2. new requests are answered 503 SHUTTING_DOWN (nothing of them runs: safe to send again) and every subscription
   socket is closed with 1001, going away (clients reconnect through the balancer to another instance);
3. uvicorn's own shutdown follows (handed the signal): the port closes, idle connections close, requests in flight
   finish (for up to `uvicorn_wait` seconds), then the lifespan's end writes the buffered request figures and seals
   the audit events the last requests left;
4. a watchdog ends the process at the grace period's end if any of that hangs (exit status 1).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from types import FrameType
from typing import Any

from core.settings import Settings
from schema.engine.admission import Admission

log = logging.getLogger("followup.shutdown")

SOCKETS_SECONDS = 2.0  # how long step 2 waits for the sockets' closing handshakes
FLUSH_RESERVE_SECONDS = 5.0  # of the grace period, kept for the lifespan's end (figures, seals, pools)


def uvicorn_wait(settings: Settings) -> int:
    """What uvicorn's `timeout_graceful_shutdown` gets (whole seconds): the grace period less the drain, the sockets
    and the flush."""
    reserve = min(FLUSH_RESERVE_SECONDS, settings.shutdown_grace_seconds / 4)
    return max(1, int(settings.shutdown_grace_seconds - settings.shutdown_drain_seconds - SOCKETS_SECONDS - reserve))


class GracefulShutdown:
    def __init__(self, admission: Admission, settings: Settings) -> None:
        self.admission = admission
        self.drain_seconds = settings.shutdown_drain_seconds
        self.grace_seconds = settings.shutdown_grace_seconds
        self._previous: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._begun = False

    def install(self) -> bool:
        """Take SIGTERM over (main thread only: where uvicorn put its handler); False when it cannot."""
        if threading.current_thread() is not threading.main_thread():
            return False
        self._loop = asyncio.get_running_loop()
        self._previous = signal.signal(signal.SIGTERM, self._on_signal)
        return True

    def uninstall(self) -> None:
        if self._previous is not None and threading.current_thread() is threading.main_thread():
            if signal.getsignal(signal.SIGTERM) == self._on_signal:
                signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        if self._begun or self._loop is None:  # a second SIGTERM: uvicorn's own handling, at once
            self._hand_on(sig, frame)
            return
        self._begun = True
        watchdog = threading.Timer(self.grace_seconds, self._out_of_time)
        watchdog.daemon = True
        watchdog.start()
        self._loop.call_soon_threadsafe(self._begin)

    def _begin(self) -> None:
        self._task = asyncio.create_task(self._run(), name="graceful-shutdown")

    async def _run(self) -> None:
        started = time.monotonic()
        admission = self.admission
        admission.drain()
        log.info("SIGTERM: /readyz fails; serving %.1f s more before the port closes", self.drain_seconds)
        if self.drain_seconds:
            await asyncio.sleep(self.drain_seconds)
        admission.refuse()
        closed = await admission.close_sockets(wait=SOCKETS_SECONDS)
        log.info(
            "shutting down: %d requests in flight, %d websockets closed (1001) after %.1f s",
            admission.in_flight,
            closed,
            time.monotonic() - started,
        )
        self._hand_on(signal.SIGTERM, None)

    def _hand_on(self, sig: int, frame: FrameType | None) -> None:
        """uvicorn's handler: it closes the port, waits for the requests in flight, runs the lifespan's end."""
        previous = self._previous
        if callable(previous):
            previous(sig, frame)
        else:  # no handler of uvicorn's (not served by uvicorn): stop as the default would
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.raise_signal(signal.SIGTERM)

    def _out_of_time(self) -> None:
        log.error("shutdown took longer than SHUTDOWN_GRACE_SECONDS (%g s): exiting now", self.grace_seconds)
        logging.shutdown()
        os._exit(1)

"""Change notices between app instances: in-process alone, Redis pub/sub when REDIS_URL is set."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from core.background import stop_task

log = logging.getLogger(__name__)

Callback = Callable[[], Awaitable[None]]
_PREFIX = "followup:"


class Notifier:
    def __init__(self, redis_url: str | None = None) -> None:
        self.redis_url = redis_url
        self.instance = uuid.uuid4().hex
        self._callbacks: dict[str, list[Callback]] = {}
        self._redis: Any = None
        self._task: asyncio.Task[None] | None = None

    def subscribe(self, channel: str, callback: Callback) -> None:
        self._callbacks.setdefault(channel, []).append(callback)

    async def _deliver(self, channel: str) -> None:
        for callback in self._callbacks.get(channel, []):
            try:
                await callback()
            except Exception:
                log.exception("change notice handler failed for %s", channel)

    async def publish(self, channel: str) -> None:
        """Tell this instance now, and every other instance through Redis."""
        await self._deliver(channel)
        if self._redis is not None:
            try:
                await self._redis.publish(_PREFIX + channel, self.instance)
            except Exception:
                # The change is committed and applied here; the others catch up when their subscription
                # is re-made (they then reload everything). Failing the caller's request would not undo it.
                log.exception("could not broadcast a change notice on %s", channel)

    async def start(self) -> None:
        if not self.redis_url or self._task is not None:
            return
        from redis.asyncio import Redis

        # Named, so an operator (or a test) can find this instance's connections in CLIENT LIST.
        self._redis = Redis.from_url(self.redis_url, client_name=f"followup-{self.instance}")
        pubsub = await self._subscribe()
        self._task = asyncio.create_task(self._listen(pubsub))

    async def _subscribe(self) -> Any:
        pubsub = self._redis.pubsub()
        await pubsub.psubscribe(_PREFIX + "*")
        return pubsub

    async def _listen(self, pubsub: Any) -> None:
        """Deliver other instances' notices; a lost connection is re-made, and since notices sent meanwhile
        are lost with it, every channel is then treated as changed (the policy is reloaded)."""
        delay = 0.2
        while True:
            try:
                if pubsub is None:
                    pubsub = await self._subscribe()
                    log.warning("change-notice connection restored")
                    for channel in list(self._callbacks):
                        await self._deliver(channel)
                async for message in pubsub.listen():
                    delay = 0.2
                    await self._handle(message)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("change-notice connection lost; reconnecting in %.1f s", delay)
            if pubsub is not None:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                pubsub = None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _handle(self, message: dict[str, Any]) -> None:
        if message.get("type") != "pmessage":
            return
        sender = message["data"].decode() if isinstance(message["data"], bytes) else str(message["data"])
        if sender == self.instance:
            return
        channel = message["channel"]
        channel = channel.decode() if isinstance(channel, bytes) else str(channel)
        await self._deliver(channel.removeprefix(_PREFIX))

    async def stop(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

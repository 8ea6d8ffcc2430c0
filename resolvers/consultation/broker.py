"""The consultation fan-out: subscribers of a conversation hear that a message was added, in process or
through Redis pub/sub (REDIS_URL) across instances."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

from core.background import stop_task
from resolvers.data.context import Services

log = logging.getLogger(__name__)

_CHANNEL = "followup:consultation"


class MessageBroker:
    """Tells subscribers of a conversation that a message was added (by id; each subscriber loads it
    through its own access rules). Redis carries the notice to the other instances."""

    def __init__(self, redis_url: str | None, *, deliveries_at_once: int = 10) -> None:
        self.redis_url = redis_url
        # A message to a conversation many sockets watch wakes them all at once, and each delivery loads what it
        # delivers through the database (scope decided again, the message, a read event). Unbounded, a thousand
        # deliveries asked the pool for a thousand connections and those left waiting past the pool's timeout
        # failed their subscription. At most this many run at once (half of what the pool holds, the rest for
        # requests); the others wait their turn, however long the fan-out takes.
        self.delivering = asyncio.Semaphore(max(1, deliveries_at_once))
        self.instance = uuid.uuid4().hex
        self._queues: dict[int, set[asyncio.Queue[int]]] = defaultdict(set)
        self._redis: Any = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    def _deliver(self, conversation_id: int, message_id: int) -> None:
        for queue in list(self._queues.get(conversation_id, ())):
            queue.put_nowait(message_id)

    async def publish(self, conversation_id: int, message_id: int) -> None:
        self._deliver(conversation_id, message_id)
        if self.redis_url:
            try:
                await self._start()
                await self._redis.publish(_CHANNEL, f"{self.instance}:{conversation_id}:{message_id}")
            except Exception:
                log.exception("could not broadcast a consultation message notice")

    @contextlib.asynccontextmanager
    async def listen(self, conversation_id: int) -> AsyncIterator[asyncio.Queue[int]]:
        queue: asyncio.Queue[int] = asyncio.Queue()
        self._queues[conversation_id].add(queue)
        try:
            if self.redis_url:
                await self._start()
                await asyncio.wait_for(self._ready.wait(), timeout=5)
            yield queue
        finally:
            self._queues[conversation_id].discard(queue)
            if not self._queues[conversation_id]:
                del self._queues[conversation_id]

    async def _start(self) -> None:
        if self._task is not None:
            return
        from redis.asyncio import Redis

        self._redis = Redis.from_url(self.redis_url, client_name=f"followup-consultation-{self.instance}")
        self._task = asyncio.create_task(self._listen())

    async def _listen(self) -> None:
        delay = 0.2
        while True:
            pubsub = None
            try:
                pubsub = self._redis.pubsub()
                await pubsub.subscribe(_CHANNEL)
                self._ready.set()
                async for notice in pubsub.listen():
                    delay = 0.2
                    if notice.get("type") != "message":
                        continue
                    data = notice["data"]
                    sender, conversation_id, message_id = (
                        data.decode() if isinstance(data, bytes) else str(data)
                    ).split(":")
                    if sender != self.instance:
                        self._deliver(int(conversation_id), int(message_id))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("consultation fan-out connection lost; reconnecting in %.1f s", delay)
            finally:
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def stop(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None


def broker(services: Services) -> MessageBroker:
    found = services.message_broker
    if found is None:
        found = services.message_broker = MessageBroker(
            services.settings.redis_url, deliveries_at_once=services.settings.database_pool_size
        )
    return found  # type: ignore[no-any-return]

"""Rate limits: per client address and per user on every request, stricter per address on the login
operations (`login`, `refreshToken`, `wechatLogin`). Fixed windows, counted in process, or in Redis
(shared by every instance) when `REDIS_URL` is set. A refusal is `RATE_LIMITED` with `retryAfter`
(seconds) and HTTP 429 with `Retry-After`."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)

from core.errors import AppError, ErrorCode
from core.settings import Settings

log = logging.getLogger("followup.ratelimit")

LOGIN_OPERATIONS = frozenset({"login", "refreshToken", "wechatLogin"})
REDIS_PREFIX = "followup:rl:"


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.rate_limit_enabled
        self.window = settings.rate_limit_window_seconds
        self._counts: dict[tuple[str, str], tuple[int, int]] = {}
        self._redis: Any = None
        if settings.redis_url:
            from redis.asyncio import Redis

            self._redis = Redis.from_url(settings.redis_url)

    async def hit(self, bucket: str, key: str, limit: int, cost: int = 1) -> int:
        """Count `cost` requests; 0 when allowed, else the seconds until the window ends."""
        if not self.enabled:
            return 0
        now = time.time()
        index = int(now // self.window)
        retry_after = max(1, math.ceil((index + 1) * self.window - now))
        count = None
        if self._redis is not None:
            name = f"{REDIS_PREFIX}{bucket}:{key}:{index}"
            try:
                async with self._redis.pipeline(transaction=True) as pipe:
                    pipe.incrby(name, cost)
                    pipe.expire(name, self.window + 1)
                    count, _ = await pipe.execute()
            except Exception:  # Redis down: fall back to counting in this process
                log.warning("rate limiter: Redis unavailable, counting in process")
        if count is None:
            count = self._count_locally(bucket, key, index, cost)
        return retry_after if count > limit else 0

    def _count_locally(self, bucket: str, key: str, index: int, cost: int) -> int:
        if len(self._counts) > 50_000:
            self._counts = {k: v for k, v in self._counts.items() if v[0] == index}
        window, count = self._counts.get((bucket, key), (index, 0))
        count = count + cost if window == index else cost
        self._counts[(bucket, key)] = (index, count)
        return count

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()


def rate_limited(retry_after: int, what: str = "requests") -> AppError:
    return AppError(
        ErrorCode.RATE_LIMITED, f"Too many {what}; try again in {retry_after} seconds", retryAfter=retry_after
    )


def root_fields(document: DocumentNode, operation_name: str | None) -> set[str]:
    return set(root_selections(document, operation_name).values())


def root_selections(document: DocumentNode, operation_name: str | None) -> dict[str, str]:
    """The operation's root fields: response key (an alias, or the name) -> the field's own name."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    if operation_name:
        operations = [op for op in operations if op.name is not None and op.name.value == operation_name]
    names: dict[str, str] = {}

    def walk(selection_set: SelectionSetNode, seen: frozenset[str]) -> None:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias is not None else selection.name.value
                names[key] = selection.name.value
            elif isinstance(selection, InlineFragmentNode):
                walk(selection.selection_set, seen)
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
                fragment = fragments.get(selection.name.value)
                if fragment is not None:
                    walk(fragment.selection_set, seen | {selection.name.value})

    for operation in operations[:1]:
        walk(operation.selection_set, frozenset())
    return names


async def check_login_rate(context: Any) -> None:
    """The stricter per-address limit on the login operations, checked once the document is valid.

    `context` is strawberry's execution context."""
    request = context.context
    services = getattr(request, "services", None)
    limiter = services.ratelimiter if services is not None else None
    document = context.graphql_document
    if limiter is not None and limiter.enabled and document is not None:
        if root_fields(document, context.operation_name) & LOGIN_OPERATIONS:
            settings = services.settings
            retry = await limiter.hit("login", request.ip, settings.rate_limit_login_per_ip)
            if retry:
                request.state.rate_limited = retry
                raise rate_limited(retry, "login attempts from this address")

"""cacheStats and clearCache: the caches of this instance (and Redis's namespaces when configured) by name.

The machinery registers each cache it keeps (schema/engine/caches.py): how to count it and, for a cache that
only saves work, how to clear it. Some namespaces are not caches to be thrown away but state: revocations,
lockouts, rate limits and sessions are registered without a way to clear them, so clearCache refuses them
whoever asks. Clearing is audited, and done on every instance (a notice on `cache:<namespace>`).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.errors import AppError, ErrorCode, not_found
from resolvers.data.context import Context

if TYPE_CHECKING:
    from resolvers.data.notify import Notifier

log = logging.getLogger("followup.caches")


@dataclass(frozen=True)
class CacheFigures:
    namespace: str
    description: str
    where: str  # process (this instance) | redis (shared)
    keys: int
    bytes: int | None  # estimated; None where unknown
    hits: int | None
    misses: int | None
    clearable: bool
    kept_because: str | None  # why it cannot be cleared from here

    @property
    def hit_rate(self) -> float | None:
        if self.hits is None or self.misses is None or self.hits + self.misses == 0:
            return None
        return round(self.hits / (self.hits + self.misses), 4)


# keys, bytes, hits, misses
Counts = tuple[int, int | None, int | None, int | None]


@dataclass(frozen=True)
class Namespace:
    name: str
    description: str
    where: str
    count: Callable[[], Counts | Awaitable[Counts]]
    clear: Callable[[], Any] | None = None
    kept_because: str | None = None


class CacheCatalogue:
    def __init__(self, notifier: Notifier) -> None:
        self._notifier = notifier
        self._spaces: dict[str, Namespace] = {}

    def add(
        self,
        name: str,
        description: str,
        count: Callable[[], Counts | Awaitable[Counts]],
        *,
        clear: Callable[[], Any] | None = None,
        kept_because: str | None = None,
        where: str = "process",
    ) -> None:
        if (clear is None) == (kept_because is None):
            raise ValueError(f"cache {name}: give either how to clear it or why it is kept")
        self._spaces[name] = Namespace(name, description, where, count, clear, kept_because)
        if clear is not None:

            async def cleared() -> None:
                await _call(clear)

            self._notifier.subscribe(f"cache:{name}", cleared)

    def names(self) -> list[str]:
        return sorted(self._spaces)

    def get(self, name: str) -> Namespace:
        found = self._spaces.get(name)
        if found is None:
            raise not_found(f"Cache namespace {name[:64]}")
        return found

    async def figures(self) -> list[CacheFigures]:
        result = []
        for space in sorted(self._spaces.values(), key=lambda item: (item.where, item.name)):
            try:
                keys, size, hits, misses = await _call(space.count)
            except Exception:
                log.warning("could not count cache %s", space.name, exc_info=True)
                continue
            result.append(
                CacheFigures(
                    namespace=space.name,
                    description=space.description,
                    where=space.where,
                    keys=keys,
                    bytes=size,
                    hits=hits,
                    misses=misses,
                    clearable=space.clear is not None,
                    kept_because=space.kept_because,
                )
            )
        return result


async def _call(function: Callable[[], Any]) -> Any:
    value = function()
    return await value if inspect.isawaitable(value) else value


def catalogue_of(ctx: Context) -> CacheCatalogue:
    found = ctx.services.caches
    if found is None:
        raise AppError(ErrorCode.INTERNAL, "No cache catalogue on this instance")
    return found


async def cache_stats(ctx: Context) -> list[CacheFigures]:
    return await catalogue_of(ctx).figures()


async def clear_cache(ctx: Context, namespace: str) -> int:
    """Clear a namespace on every instance; how many keys it held here. State that is not a cache (sessions,
    revocations, lockouts, rate limits) is refused: BAD_USER_INPUT, with the reason."""
    space = catalogue_of(ctx).get(namespace)
    async with ctx.data.write(operation="clearCache", action="delete", entity_type="Cache") as unit:
        if space.clear is None:
            raise AppError(
                ErrorCode.BAD_USER_INPUT,
                f"{space.name} cannot be cleared from here: {space.kept_because}",
                field="namespace",
                reason="NOT_CLEARABLE",
            )
        keys = (await _call(space.count))[0]
        unit.entity_id = space.name
        unit.detail = {"keys": keys, "where": space.where}
    await ctx.services.notifier.publish(f"cache:{space.name}")
    return int(keys)

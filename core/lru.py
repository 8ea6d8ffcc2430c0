"""A small bounded least-recently-used map, for the process-local caches of the hot paths.

Bounded by entries and, where entries vary in size (documents a client sent), by bytes as well: `weigh` gives
an entry's estimated size, the map keeps the total under `max_bytes`, and an entry heavier than `max_item`
is not kept at all (nothing an anonymous client sends may be kept unbounded).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class LRU(Generic[K, V]):
    """At most `size` entries (and `max_bytes` by `weigh`); a hit makes its entry the most recent. `get` gives
    None for a miss, so a value that may itself be None is stored wrapped (a tuple)."""

    def __init__(
        self,
        size: int,
        *,
        max_bytes: int | None = None,
        weigh: Callable[[K, V], int] | None = None,
        max_item: int | None = None,
    ) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self.max_item = max_item if max_item is not None else (max_bytes // 8 if max_bytes else None)
        self._weigh = weigh
        self._items: OrderedDict[K, V] = OrderedDict()
        self._weights: dict[K, int] = {}
        self.bytes = 0
        self.hits = 0  # look-ups since start (cacheStats, /metrics)
        self.misses = 0

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
            self.hits += 1
        else:
            self.misses += 1
        return value

    def put(self, key: K, value: V) -> None:
        weight = self._weigh(key, value) if self._weigh is not None else 0
        if self.max_item is not None and weight > self.max_item:
            self.pop(key)  # too big to keep: never cached
            return
        self.pop(key)
        self._items[key] = value
        if self._weigh is not None:
            self._weights[key] = weight
            self.bytes += weight
        while len(self._items) > self.size or (self.max_bytes is not None and self.bytes > self.max_bytes):
            oldest, _ = self._items.popitem(last=False)
            self.bytes -= self._weights.pop(oldest, 0)

    @property
    def weighed_bytes(self) -> int | None:
        """Estimated bytes held, for a map that weighs its entries (None for one that does not)."""
        return self.bytes if self._weigh is not None else None

    def pop(self, key: K) -> None:
        if self._items.pop(key, None) is not None or key in self._weights:
            self.bytes -= self._weights.pop(key, 0)

    def clear(self) -> None:
        self._items.clear()
        self._weights.clear()
        self.bytes = 0

    def __contains__(self, key: Any) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

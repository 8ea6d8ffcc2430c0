"""Nothing an anonymous client sends is kept unbounded: documents are capped in length, long ones are never
cached, and every document cache is bounded by bytes as well as entries (schema/engine/sizes.py).

The attack found on a running server: 300 anonymous requests of `{serverInfo{name}} #<900 KB><unique suffix>`
grew it from 175 MB to over 1 GB. Stated budget: the memory a burst of unique documents leaves behind (after a
collection, measured by tracemalloc) stays under 64 MB whatever their size, and refused documents leave none.
"""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

import pytest

from schema.engine import limits, persisted, projection
from schema.engine.sizes import PARSED_BYTES, PREPARED_BYTES
from tests.conftest import GraphQLClient, error_codes

BUDGET = 64 << 20


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"rate_limit_enabled": False}  # the per-address limit would stop the burst first (also a defence)


def _retained() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


async def _burst(client: GraphQLClient, count: int, padding: int, tag: str) -> list[int]:
    statuses = []
    for i in range(count):
        response = await client.post("{ serverInfo { name } } #" + "x" * padding + f"{tag}{i}")
        statuses.append(response.status_code)
    return statuses


async def test_a_document_longer_than_the_limit_is_refused_before_parsing(client: GraphQLClient) -> None:
    response = await client.post("{ serverInfo { name } } #" + "x" * 150_000)
    assert response.status_code == 413
    assert error_codes(response.json()) == ["QUERY_TOO_COMPLEX"]
    assert "longer than" in response.json()["errors"][0]["message"]
    # Multi-byte text counts in bytes: 40,000 Chinese characters are 120,000 bytes.
    response = await client.post("{ serverInfo { name } } #" + "汉" * 40_000)
    assert response.status_code == 413
    ok = await client.post("{ serverInfo { name } } #" + "x" * 50_000)
    assert ok.status_code == 200 and ok.json()["data"]["serverInfo"]["name"]


async def test_unique_documents_leave_the_process_within_its_budget(client: GraphQLClient) -> None:
    await _burst(client, 5, 100, "warm")
    tracemalloc.start()
    try:
        before = _retained()
        # the attack as found: refused before parsing, nothing kept
        refused = await _burst(client, 100, 900_000, "a")
        assert set(refused) == {413}
        after_refused = _retained()
        assert after_refused - before < 4 << 20, after_refused - before
        # long but allowed: run, never cached
        ran = await _burst(client, 100, 90_000, "b")
        assert set(ran) == {200}
        # short and unique: cached, but only up to the caches' byte budgets
        ran = await _burst(client, 400, 15_000, "c")
        assert set(ran) == {200}
        grown = _retained() - before
    finally:
        tracemalloc.stop()
    assert grown < BUDGET, f"{grown / (1 << 20):.1f} MB retained"
    assert persisted._PARSED.bytes <= PARSED_BYTES
    for cache in persisted._prepared.values():
        assert cache.bytes <= PREPARED_BYTES
    assert limits._DEPENDS.bytes <= limits.COSTS_BYTES and projection._COLUMNS.bytes <= projection.COLUMNS_BYTES

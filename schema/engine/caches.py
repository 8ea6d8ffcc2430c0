"""The caches this instance keeps, listed for cacheStats and clearCache (resolvers/operations/caches.py).

Work-saving caches (parsed and prepared documents, costs, projections, compiled plans, statements, reach
clauses, role schemas, the department tree) may be cleared: they fill again on use. State that protects the
platform is listed but kept: the verified-token cache (sessions), rate-limit windows, and in Redis the rate
limits as well; revocations and lockouts live in the database and have no cache to clear.
"""

from __future__ import annotations

import logging
from typing import Any

from core import security
from core.lru import LRU
from resolvers.data import repository, statements
from resolvers.data.context import Services
from resolvers.operations.caches import CacheCatalogue, Counts
from schema.engine import limits, persisted, projection

log = logging.getLogger("followup.caches")

SESSIONS = "sessions are state, not a cache: end one with forceLogout"
RATE_LIMITS = "rate limits are state, not a cache: clearing them would lift every limit at once"
_REDIS_SAMPLE = 200  # keys whose memory is measured to estimate a namespace's


def _lru(cache: LRU[Any, Any]) -> Counts:
    return len(cache), cache.weighed_bytes, cache.hits, cache.misses


def _lrus(caches: list[LRU[Any, Any]]) -> Counts:
    sizes = [cache.weighed_bytes for cache in caches]
    return (
        sum(len(cache) for cache in caches),
        sum(size for size in sizes if size is not None) if caches else 0,
        sum(cache.hits for cache in caches),
        sum(cache.misses for cache in caches),
    )


def register_caches(catalogue: CacheCatalogue, services: Services) -> None:
    """Everything this instance caches, by name (called once the endpoint and the registry exist)."""
    add = catalogue.add
    add(
        "parsedDocuments",
        "GraphQL documents parsed, by text",
        lambda: _lru(persisted._PARSED),
        clear=persisted._PARSED.clear,
    )

    def prepared() -> Counts:
        caches = list(persisted._prepared.values())
        keys, size, _hits, _misses = _lrus(caches)
        return keys, size, persisted.STATS.hits, persisted.STATS.misses

    def clear_prepared() -> None:
        for cache in list(persisted._prepared.values()):
            cache.clear()

    add("preparedDocuments", "Documents parsed and validated per role schema", prepared, clear=clear_prepared)
    if services.persisted is not None:
        local = services.persisted.automatic.local
        add(
            "persistedQueries",
            "Automatic persisted queries held in this process",
            lambda: _lru(local),
            clear=local.clear,
        )

        def trusted() -> Counts:
            return len(services.persisted.trusted._documents), None, None, None

        async def reload_trusted() -> None:
            await services.persisted.trusted.load()

        add("trustedDocuments", "Trusted documents, read from the database", trusted, clear=reload_trusted)

    def costs() -> Counts:
        return _lrus([limits._COSTS, limits._DEPENDS])

    def clear_costs() -> None:
        limits._COSTS.clear()
        limits._DEPENDS.clear()

    add("queryCosts", "Query costs per document and page sizes", costs, clear=clear_costs)
    add(
        "projections",
        "Columns each selection needs",
        lambda: _lru(projection._COLUMNS),
        clear=projection._COLUMNS.clear,
    )
    add(
        "statements",
        "SQL statements built once and reused",
        lambda: _lru(statements._STATEMENTS),
        clear=statements._STATEMENTS.clear,
    )
    add(
        "reachClauses",
        "Reach conditions per table and caller's reach",
        lambda: _lru(repository._CLAUSES),
        clear=repository._CLAUSES.clear,
    )
    registry = services.registry
    if registry is not None:

        def plans() -> Counts:
            compilers = [schema.compiler for schema in list(registry._schemas.values()) if schema.compiler is not None]
            return _lrus([compiler._plans for compiler in compilers])

        def clear_plans() -> None:
            for schema in list(registry._schemas.values()):
                if schema.compiler is not None:
                    schema.compiler._plans.clear()

        add("compiledPlans", "Completion plans compiled per role schema", plans, clear=clear_plans)
        add(
            "roleSchemas",
            "Role schemas built (rebuilt on the next request)",
            lambda: (registry.built_count(), None, None, None),
            clear=registry.clear,
        )
    tree = services.department_tree
    if tree is not None:
        add(
            "departmentTree",
            "The department tree",
            lambda: (len(tree._parents or {}), None, None, None),
            clear=tree.drop,
        )
    add(
        "verifiedTokens",
        "Access tokens whose signature was checked",
        lambda: _lru(security._VERIFIED),
        kept_because=SESSIONS,
    )
    limiter = services.ratelimiter
    if limiter is not None:
        add(
            "rateLimits",
            "Rate-limit windows counted in this process",
            lambda: (len(limiter._counts), None, None, None),
            kept_because=RATE_LIMITS,
        )
    if services.settings.redis_url:
        _register_redis(catalogue, services.settings.redis_url)


def _register_redis(catalogue: CacheCatalogue, url: str) -> None:
    from redis.asyncio import Redis

    def counter(pattern: str) -> Any:
        async def count() -> Counts:
            client = Redis.from_url(url)
            try:
                keys, sampled, size = 0, 0, 0
                async for key in client.scan_iter(match=pattern, count=1000):
                    keys += 1
                    if sampled < _REDIS_SAMPLE:
                        size += int(await client.memory_usage(key) or 0)
                        sampled += 1
                info = await client.info("stats")
                estimate = int(size * keys / sampled) if sampled else 0
                return keys, estimate, int(info.get("keyspace_hits", 0)), int(info.get("keyspace_misses", 0))
            finally:
                await client.aclose()

        return count

    async def clear_apq() -> None:
        client = Redis.from_url(url)
        try:
            batch = [key async for key in client.scan_iter(match=persisted.REDIS_PREFIX + "*", count=1000)]
            for start in range(0, len(batch), 500):
                await client.unlink(*batch[start : start + 500])
        finally:
            await client.aclose()

    apq = counter(persisted.REDIS_PREFIX + "*")
    catalogue.add(
        "redis:persistedQueries",
        "Automatic persisted queries shared in Redis (hits: the whole server's)",
        apq,
        clear=clear_apq,
        where="redis",
    )
    limits_in_redis = counter("followup:rl:*")
    catalogue.add(
        "redis:rateLimits",
        "Rate-limit windows shared in Redis (hits: the whole server's)",
        limits_in_redis,
        kept_because=RATE_LIMITS,
        where="redis",
    )

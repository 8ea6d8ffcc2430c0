"""Monitoring over the API: the server's status, service use per operation / staff member / role, caches, users."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Annotated

import strawberry

from core.ids import encode_id
from core.version import VERSION
from models.operations import FigureKind
from resolvers.data.context import Info
from resolvers.data.health import database_figures, redis_round_trip
from resolvers.operations import caches, stats, users


@strawberry.type(name="DatabasePool")
class DatabasePoolType:
    name: str = strawberry.field(description="requests (each request's reads) or transactions (writes)")
    in_use: int
    size: int = strawberry.field(description="Connections it may open (pool size and overflow)")
    idle: int
    waiting: int


@strawberry.type(name="ServerStatus")
class ServerStatusType:
    version: str
    instance: str = strawberry.field(description="This app instance (each process has its own)")
    pid: int
    started_at: datetime
    uptime_seconds: float
    memory_bytes: int | None = strawberry.field(description="Resident memory now")
    peak_memory_bytes: int
    cpu_seconds: float
    cpu_percent: float | None = strawberry.field(description="Of one core, over the last minute")
    loop_lag_ms: float | None = strawberry.field(
        description="How late the event loop woke last (sampled twice a second)"
    )
    loop_lag_mean_ms: float | None
    loop_lag_max_ms: float | None = strawberry.field(description="The largest lag of the last minute")
    database_pools: list[DatabasePoolType]
    database_round_trip_ms: float
    redis_configured: bool
    redis_round_trip_ms: float | None = strawberry.field(
        description="None when Redis is not configured or not answering"
    )
    scheduler_enabled: bool
    runs_in_progress_here: int


@strawberry.enum(name="ServiceStatsGroup")
class ServiceStatsGroup(Enum):
    OPERATION = "operation"
    STAFF = "staff"
    ROLE = "role"


@strawberry.type(name="ErrorCount")
class ErrorCountType:
    code: str
    count: int


@strawberry.type(name="ServiceStat")
class ServiceStatType:
    key: str = strawberry.field(
        description="The operation's name (`other` for unknown documents), a role set, or a user"
    )
    user_id: strawberry.ID | None
    requests: int
    errors: int
    errors_by_code: list[ErrorCountType]
    mean_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: int

    @strawberry.field(description="The staff member's name (grouped by staff)")
    async def user_name(self, info: Info) -> str | None:
        if self.user_id is None:
            return None
        return await info.context.loaders.user_name_by_id.load(int(self.key))

    @classmethod
    def of(cls, figure: stats.ServiceFigure) -> ServiceStatType:
        return cls(
            key=figure.key,
            user_id=strawberry.ID(encode_id("User", figure.user_id)) if figure.user_id is not None else None,
            requests=figure.requests,
            errors=figure.error_count,
            errors_by_code=[ErrorCountType(code=code, count=n) for code, n in sorted(figure.errors.items())],
            mean_ms=round(figure.mean_ms, 1) if figure.mean_ms is not None else None,
            p50_ms=figure.percentile(0.50),
            p95_ms=figure.percentile(0.95),
            p99_ms=figure.percentile(0.99),
            max_ms=figure.max_ms,
        )


@strawberry.type(name="ServiceStats")
class ServiceStatsType:
    from_: datetime = strawberry.field(name="from")
    to: datetime
    group_by: ServiceStatsGroup
    requests: int
    errors: int
    items: list[ServiceStatType]


@strawberry.type(name="CacheNamespace")
class CacheNamespaceType:
    namespace: str
    description: str
    where: str = strawberry.field(description="process (this instance) or redis (shared)")
    keys: int
    bytes: int | None = strawberry.field(description="Estimated; none where unknown")
    hits: int | None
    misses: int | None
    hit_rate: float | None
    clearable: bool
    kept_because: str | None = strawberry.field(description="Why clearCache refuses it")

    @classmethod
    def of(cls, item: caches.CacheFigures) -> CacheNamespaceType:
        return cls(
            namespace=item.namespace,
            description=item.description,
            where=item.where,
            keys=item.keys,
            bytes=item.bytes,
            hits=item.hits,
            misses=item.misses,
            hit_rate=item.hit_rate,
            clearable=item.clearable,
            kept_because=item.kept_because,
        )


@strawberry.type(name="RoleCount")
class RoleCountType:
    role: str
    name: str
    accounts: int


@strawberry.type(name="UserDay")
class UserDayType:
    day: date
    new_staff: int
    new_patient_accounts: int = strawberry.field(description="Mini-program (WeChat) accounts")
    new_patient_records: int = strawberry.field(description="Patients registered by staff")
    active_users: int = strawberry.field(description="Accounts with a session in use that day")


@strawberry.type(name="UserStats")
class UserStatsType:
    from_: date = strawberry.field(name="from")
    to: date
    accounts: int = strawberry.field(description="Open (not disabled) accounts")
    without_role: int
    bound_patients: int = strawberry.field(description="Patient records bound to a mini-program account")
    by_role: list[RoleCountType]
    days: list[UserDayType]


@strawberry.type
class MonitoringQuery:
    @strawberry.field(description="This instance: version, uptime, memory, CPU, event-loop lag, pools, round trips.")
    async def server_status(self, info: Info) -> ServerStatusType:
        ctx = info.context
        services = ctx.services
        assert services.monitor is not None
        process = services.monitor.figures()
        pools, round_trip = await database_figures(ctx)
        try:
            redis = await redis_round_trip(ctx.settings.redis_url)
        except Exception:
            redis = None
        scheduler = services.scheduler
        return ServerStatusType(
            version=VERSION,
            instance=services.notifier.instance,
            pid=process.pid,
            started_at=process.started_at,
            uptime_seconds=process.uptime_seconds,
            memory_bytes=process.memory_bytes,
            peak_memory_bytes=process.peak_memory_bytes,
            cpu_seconds=process.cpu_seconds,
            cpu_percent=process.cpu_percent,
            loop_lag_ms=process.loop_lag_ms,
            loop_lag_mean_ms=process.loop_lag_mean_ms,
            loop_lag_max_ms=process.loop_lag_max_ms,
            database_pools=[DatabasePoolType(**vars(pool)) for pool in pools],
            database_round_trip_ms=round_trip,
            redis_configured=bool(ctx.settings.redis_url),
            redis_round_trip_ms=redis,
            scheduler_enabled=ctx.settings.scheduler_enabled,
            runs_in_progress_here=len(scheduler.running_here()) if scheduler is not None else 0,
        )

    @strawberry.field(description="Requests, errors by code and latency per operation, staff member or role.")
    async def service_stats(
        self,
        info: Info,
        group_by: ServiceStatsGroup = ServiceStatsGroup.OPERATION,
        from_: Annotated[datetime | None, strawberry.argument(name="from")] = None,
        to: datetime | None = None,
    ) -> ServiceStatsType:
        start, end = stats.check_range(from_, to)
        figures = await stats.service_stats(info.context, since=start, until=end, group_by=FigureKind(group_by.value))
        return ServiceStatsType(
            from_=start,
            to=end,
            group_by=group_by,
            requests=sum(figure.requests for figure in figures),
            errors=sum(figure.error_count for figure in figures),
            items=[ServiceStatType.of(figure) for figure in figures],
        )

    @strawberry.field(description="This instance's caches (and Redis's namespaces): keys, memory, hit rate.")
    async def cache_stats(self, info: Info) -> list[CacheNamespaceType]:
        return [CacheNamespaceType.of(item) for item in await caches.cache_stats(info.context)]

    @strawberry.field(description="Accounts by role, registrations and active users per day, bound patients.")
    async def user_stats(
        self, info: Info, from_: Annotated[date | None, strawberry.argument(name="from")] = None, to: date | None = None
    ) -> UserStatsType:
        found = await users.user_stats(info.context, since=from_, until=to)
        return UserStatsType(
            from_=found.since,
            to=found.until,
            accounts=found.accounts,
            without_role=found.without_role,
            bound_patients=found.bound_patients,
            by_role=[RoleCountType(role=key, name=name, accounts=n) for key, name, n in found.by_role],
            days=[UserDayType(**vars(day)) for day in found.days],
        )


@strawberry.type
class MonitoringMutation:
    @strawberry.mutation(description="Clear a cache namespace on every instance; the keys it held here.")
    async def clear_cache(self, info: Info, namespace: str) -> int:
        return await caches.clear_cache(info.context, namespace)

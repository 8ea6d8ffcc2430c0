"""serviceStats: requests, errors by code and latency percentiles per operation, staff member or role, over a
time range, from the per-minute figures of every instance (resolvers/data/figures.py).

Percentiles come from fixed latency buckets (5, 10, 25 ... 10,000 ms), interpolated within the bucket: exact to
the bucket's width, and they add up across minutes and instances, which exact percentiles would not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func

from core.errors import bad_input
from core.timeutil import as_utc, utcnow
from models.operations import BUCKET_COLUMNS, LATENCY_BUCKETS_MS, FigureKind, RequestMinute
from resolvers.data.context import Context

MAX_RANGE = timedelta(days=93)


@dataclass
class ServiceFigure:
    kind: str
    key: str
    user_id: int | None = None
    requests: int = 0
    duration_ms: int = 0
    max_ms: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    buckets: list[int] = field(default_factory=lambda: [0] * len(BUCKET_COLUMNS))

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def mean_ms(self) -> float | None:
        return self.duration_ms / self.requests if self.requests else None

    def percentile(self, fraction: float) -> float | None:
        return percentile(self.buckets, fraction, self.max_ms)


def percentile(buckets: list[int], fraction: float, max_ms: int) -> float | None:
    """The latency under which `fraction` of the requests fell, interpolated within its bucket (at most the
    largest latency seen)."""
    total = sum(buckets)
    if not total:
        return None
    rank = fraction * total
    seen = 0
    lower = 0.0
    for index, count in enumerate(buckets):
        upper = float(LATENCY_BUCKETS_MS[index]) if index < len(LATENCY_BUCKETS_MS) else float(max(max_ms, lower))
        if count and seen + count >= rank:
            value = lower + (upper - lower) * (rank - seen) / count
            return round(min(value, float(max_ms)) if max_ms else value, 1)
        seen += count
        lower = upper
    return float(max_ms)


def check_range(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    end = as_utc(until) if until is not None else utcnow()
    start = as_utc(since) if since is not None else end - timedelta(hours=1)
    if start >= end:
        raise bad_input("`from` must be before `to`", "from")
    if end - start > MAX_RANGE:
        raise bad_input(f"At most {MAX_RANGE.days} days at a time", "from")
    return start, end


async def service_stats(
    ctx: Context, *, since: datetime | None, until: datetime | None, group_by: FigureKind
) -> list[ServiceFigure]:
    """Figures of the minutes in [from, to), most requested first. This instance's buffer is written first, so
    its requests so far are counted."""
    figures = ctx.services.figures
    if figures is not None:
        await figures.flush()
    start, end = check_range(since, until)
    sums = [func.sum(getattr(RequestMinute, name)) for name in ("requests", "duration_ms", *BUCKET_COLUMNS)]
    statement = await ctx.data.select(
        RequestMinute,
        RequestMinute.key,
        RequestMinute.code,
        func.max(RequestMinute.user_id),
        func.max(RequestMinute.max_ms),
        *sums,
        then=lambda s: s.where(
            RequestMinute.kind == group_by.value,
            RequestMinute.minute >= start.replace(second=0, microsecond=0),
            RequestMinute.minute < end,
        ).group_by(RequestMinute.key, RequestMinute.code),
    )
    by_key: dict[str, ServiceFigure] = {}
    for row in await ctx.data.rows(statement):
        key, code, user_id, max_ms, requests, duration, *buckets = row
        figure = by_key.get(key)
        if figure is None:
            figure = by_key[key] = ServiceFigure(kind=group_by.value, key=key, user_id=user_id)
        figure.requests += int(requests or 0)
        figure.duration_ms += int(duration or 0)
        figure.max_ms = max(figure.max_ms, int(max_ms or 0))
        for index, count in enumerate(buckets):
            figure.buckets[index] += int(count or 0)
        if code:
            figure.errors[code] = figure.errors.get(code, 0) + int(requests or 0)
    return sorted(by_key.values(), key=lambda item: (-item.requests, item.key))

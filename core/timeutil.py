"""Aware UTC instants everywhere; the clinic's zone only for calendar questions."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Databases without zones hand back naive UTC; make it aware."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def clinic_today(zone: str) -> date:
    """Today's calendar date in the clinic's zone (CLINIC_TZ): what "due", "tomorrow" and "overdue" mean."""
    return datetime.now(ZoneInfo(zone)).date()

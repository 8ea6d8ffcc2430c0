"""Cron expressions of jobs: five fields (minute hour day-of-month month day-of-week), in the clinic's zone.

APScheduler's CronTrigger reads them (`from_crontab`), so what is validated here is exactly what fires. Times
handed out are aware UTC instants; "every day at 02:30" means 02:30 in CLINIC_TZ.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from core.errors import bad_input
from core.timeutil import as_utc

MAX_LENGTH = 120
# Windows looked back over for the latest firing, narrowest first (a yearly job's last firing may be a year back).
_LOOK_BACK = (timedelta(hours=1), timedelta(days=1), timedelta(days=32), timedelta(days=367), timedelta(days=4 * 366))


@lru_cache(maxsize=256)
def trigger(expression: str, zone: str) -> CronTrigger:
    return CronTrigger.from_crontab(expression, timezone=ZoneInfo(zone))


def check(expression: str, zone: str) -> str:
    """The expression, whitespace normalised, or BAD_USER_INPUT saying what is wrong."""
    normalised = " ".join((expression or "").split())
    if not normalised or len(normalised) > MAX_LENGTH or not normalised.isascii():
        raise bad_input("A cron expression: five fields, minute hour day month weekday", "cron")
    if len(normalised.split(" ")) != 5:
        raise bad_input("A cron expression has five fields: minute hour day month weekday", "cron")
    try:
        fires = trigger(normalised, zone)
    except (ValueError, KeyError, TypeError) as error:
        raise bad_input(f"Not a valid cron expression: {error}", "cron") from None
    if fires.get_next_fire_time(None, datetime.now(ZoneInfo(zone))) is None:
        raise bad_input("This cron expression never fires", "cron")
    return normalised


def next_fire(expression: str, zone: str, after: datetime) -> datetime | None:
    """The first firing strictly after `after`."""
    fires = trigger(expression, zone)
    found = fires.get_next_fire_time(None, as_utc(after) + timedelta(microseconds=1))
    return None if found is None else as_utc(found)


def latest_fire(expression: str, zone: str, now: datetime, since: datetime) -> datetime | None:
    """The latest firing in (since, now], or None."""
    fires = trigger(expression, zone)
    now, since = as_utc(now), as_utc(since)
    for window in _LOOK_BACK:
        start = max(since + timedelta(microseconds=1), now - window)
        found = fires.get_next_fire_time(None, start)
        if found is not None and as_utc(found) <= now:
            latest = as_utc(found)
            while True:
                following = fires.get_next_fire_time(latest, latest + timedelta(microseconds=1))
                if following is None or as_utc(following) > now:
                    return latest
                latest = as_utc(following)
        if start <= since + timedelta(microseconds=1):
            return None
    return None

"""userStats: registered accounts by role, new registrations and active users per day, patients bound to the
mini-program. Counted within the caller's reach (an admin: everyone), days in the clinic's zone."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import distinct, func

from core.errors import bad_input
from core.timeutil import as_utc
from models.auth import AuthSession
from models.patient import Patient
from models.role import Role, UserRole
from models.user import User, UserStatus
from policies.roles import is_staff
from resolvers.data.context import Context

MAX_DAYS = 366


@dataclass
class DayFigures:
    day: date
    new_staff: int = 0
    new_patient_accounts: int = 0  # mini-program accounts (WeChat)
    new_patient_records: int = 0  # patients registered by staff
    active_users: int = 0


@dataclass
class UserStats:
    since: date
    until: date
    by_role: list[tuple[str, str, int]] = field(default_factory=list)  # key, name, accounts
    without_role: int = 0
    accounts: int = 0
    bound_patients: int = 0
    days: list[DayFigures] = field(default_factory=list)


def _days(ctx: Context, since: date | None, until: date | None) -> tuple[date, date]:
    last = until or ctx.today()
    first = since or last - timedelta(days=29)
    if first > last:
        raise bad_input("`from` must not be after `to`", "from")
    if (last - first).days + 1 > MAX_DAYS:
        raise bad_input(f"At most {MAX_DAYS} days at a time", "from")
    return first, last


def _start_of(day: date, zone: ZoneInfo) -> datetime:
    return as_utc(datetime.combine(day, datetime.min.time(), tzinfo=zone))


async def user_stats(ctx: Context, *, since: date | None, until: date | None) -> UserStats:
    first, last = _days(ctx, since, until)
    zone = ZoneInfo(ctx.settings.clinic_tz)
    start, end = _start_of(first, zone), _start_of(last + timedelta(days=1), zone)
    data = ctx.data
    stats = UserStats(since=first, until=last)
    open_accounts = User.status != UserStatus.DISABLED.value

    by_role = await data.select(
        User,
        Role.key,
        Role.name,
        func.count(distinct(User.id)),
        then=lambda s: (
            s.join(UserRole, UserRole.user_id == User.id)
            .join(Role, Role.id == UserRole.role_id)
            .where(open_accounts)
            .group_by(Role.key, Role.name)
            .order_by(Role.key)
        ),
    )
    stats.by_role = [(key, name, int(count)) for key, name, count in await data.rows(by_role)]
    stats.accounts = int(
        await data.scalar(await data.select(User, func.count(), then=lambda s: s.where(open_accounts)))
    )
    stats.without_role = await _without_role(ctx)
    stats.bound_patients = int(
        await data.scalar(
            await data.select(
                Patient,
                func.count(),
                then=lambda s: s.where(Patient.wechat_user_id.is_not(None), Patient.voided_at.is_(None)),
            )
        )
    )

    days = {
        first + timedelta(days=offset): DayFigures(first + timedelta(days=offset))
        for offset in range((last - first).days + 1)
    }

    def day_of(instant: datetime) -> date:
        return as_utc(instant).astimezone(zone).date()

    accounts = await data.select(
        User,
        User.id,
        User.created_at,
        Role.key,
        then=lambda s: (
            s.outerjoin(UserRole, UserRole.user_id == User.id)
            .outerjoin(Role, Role.id == UserRole.role_id)
            .where(User.created_at >= start, User.created_at < end)
        ),
    )
    created: dict[int, tuple[datetime, set[str]]] = {}
    for user_id, created_at, key in await data.rows(accounts):
        keys = created.setdefault(user_id, (created_at, set()))[1]
        if key is not None:
            keys.add(key)
    for created_at, keys in created.values():
        figures = days.get(day_of(created_at))
        if figures is not None:
            if is_staff(keys):
                figures.new_staff += 1
            else:
                figures.new_patient_accounts += 1  # a mini-program account (no role until it binds a record)
    records = await data.select(
        Patient, Patient.created_at, then=lambda s: s.where(Patient.created_at >= start, Patient.created_at < end)
    )
    for (created_at,) in await data.rows(records):
        figures = days.get(day_of(created_at))
        if figures is not None:
            figures.new_patient_records += 1

    # A user is active on a day when one of their sessions was in use that day (from its login to its last use).
    sessions = await data.select(
        AuthSession,
        AuthSession.user_id,
        AuthSession.created_at,
        AuthSession.last_seen_at,
        then=lambda s: s.where(AuthSession.created_at < end, AuthSession.last_seen_at >= start),
    )
    active: dict[date, set[int]] = defaultdict(set)
    for user_id, created_at, last_seen_at in await data.rows(sessions):
        day, final = max(day_of(created_at), first), min(day_of(last_seen_at), last)
        while day <= final:
            active[day].add(user_id)
            day += timedelta(days=1)
    for day, users in active.items():
        if day in days:
            days[day].active_users = len(users)
    stats.days = [days[day] for day in sorted(days)]
    return stats


async def _without_role(ctx: Context) -> int:
    data = ctx.data
    with_role = await data.select(
        UserRole, UserRole.user_id, then=lambda s: s.where(UserRole.user_id == User.id).correlate(User)
    )
    statement = await data.select(
        User, func.count(), then=lambda s: s.where(User.status != UserStatus.DISABLED.value, ~with_role.exists())
    )
    return int(await data.scalar(statement))

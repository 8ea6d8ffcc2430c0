"""Appointments as FHIR: an Appointment and its Slot per booking, and the Schedule (the physician's session) each
Slot belongs to, where the caller's schema shows appointments (and, for the Schedule, an appointment's session).

A session is shared by the patients booked in it: a patient's bundle holds it once, and a bulk export writes it
once (its kind declares Schedule shared: resolvers/fhir/runner.py keeps the first). Every value goes through the
field decision: the Slot's busy/free says what the appointment's status says, as the caller sees it; the Schedule's
actor is the physician (named where the caller's schema shows `Schedule.physicianName`). Without a Schedule to
point at, a Slot names its session by a logical reference (`<base>/sid/schedule`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from models.appointment import Appointment, Schedule
from resolvers.appointment.common import at_clinic
from resolvers.fhir.common import Built, Shared, View, ref
from resolvers.fhir.registry import ResourceKind, register

if TYPE_CHECKING:
    from resolvers.data.context import Context

STATUS = {
    "requested": "proposed",
    "booked": "booked",
    "checked_in": "checked-in",
    "completed": "fulfilled",
    "cancelled": "cancelled",
    "missed": "noshow",
}


async def _load(ctx: Context, patient_ids: Sequence[int], shared: Shared) -> dict[int, list[Any]]:
    data = ctx.data
    statement = await data.select(
        Appointment,
        columns=True,
        then=lambda s: s.where(Appointment.patient_id.in_(list(patient_ids))).order_by(Appointment.slot_at),
    )
    rows = data.rows_as(Appointment, None, await data.rows(statement))
    schedule_ids = sorted({row.schedule_id for row in rows})
    schedules: dict[int, Any] = shared.extra.setdefault("schedules", {})
    shared.extra["clinic_tz"] = ctx.settings.clinic_tz
    if schedule_ids:
        columns = (
            "id", "physician_id", "department_id", "day", "start_time", "end_time", "slot_minutes", "status",
            "location", "created_at", "updated_at",
        )  # fmt: skip
        found = await data.select(Schedule, columns=columns, then=lambda s: s.where(Schedule.id.in_(schedule_ids)))
        for schedule in data.rows_as(Schedule, columns, await data.rows(found)):
            schedules[schedule.id] = schedule
            shared.want_staff.add(schedule.physician_id)
    grouped: dict[int, list[Any]] = defaultdict(list)
    for row in rows:
        grouped[row.patient_id].append(row)
    return grouped


def _slot_status(status: str | None) -> str:
    """A Slot's busy/free from the appointment's status as the caller sees it: a place held or used is busy, a
    cancelled one free; a status the caller is not shown says busy (as the Appointment then says booked)."""
    return "free" if status in ("cancelled", "missed") else "busy"


def _schedule(schedule: Any, view: View, zone: str) -> dict[str, Any]:
    shown = view.shown("Schedule")
    actor = view.staff(schedule.physician_id, shown=shown.visible("physicianName"))
    if actor is None or not shown.visible("physicianId"):  # who holds it is not shown: the role only
        name = actor.get("display") if actor else None
        actor = {"type": "Practitioner", **({"display": name} if name else {})}
    resource: dict[str, Any] = {
        "resourceType": "Schedule",
        "id": str(schedule.id),
        "meta": view.last_updated("Schedule", schedule, schedule.created_at, schedule.updated_at),
        "identifier": [{"system": view.systems.identifier("schedule"), "value": str(schedule.id)}],
        "actor": [actor],
    }
    status = shown("status", schedule.status)
    if status is not None:
        resource["active"] = status != "cancelled"
    day = shown("day", schedule.day)
    if day is not None and shown.visible("startTime") and shown.visible("endTime"):
        resource["planningHorizon"] = {
            "start": at_clinic(day, schedule.start_time, zone).isoformat(),
            "end": at_clinic(day, schedule.end_time, zone).isoformat(),
        }
    location = shown("location", schedule.location)
    if location:
        resource["comment"] = location
    return resource


def _appointments(rows: list[Any], view: View) -> list[Built]:
    shown = view.shown("Appointment")
    names = view.shown("Schedule").visible("physicianName")  # the API shows a physician's name on the session
    with_schedule = view.shared.visible("Appointment", "schedule")  # the session is part of what the caller sees
    schedules: dict[int, Any] = view.shared.extra.get("schedules", {})
    zone: str = view.shared.extra.get("clinic_tz", "Asia/Shanghai")
    built = []
    sessions: list[Built] = []
    for row in rows:
        schedule = schedules.get(row.schedule_id)
        start = row.slot_at
        end = start + timedelta(minutes=schedule.slot_minutes if schedule is not None else 15)
        meta = view.last_updated("Appointment", row, row.created_at, row.updated_at)
        participants: list[dict[str, Any]] = [{"actor": ref("Patient", row.patient_id), "status": "accepted"}]
        physician = view.staff(schedule.physician_id, shown=names) if schedule is not None else None
        if physician is not None:
            participants.append({"actor": physician, "status": "accepted"})
        status = shown("status", row.status)
        appointment: dict[str, Any] = {
            "resourceType": "Appointment",
            "id": str(row.id),
            "meta": meta,
            "status": STATUS.get(status or "", "booked"),
            "start": start.isoformat(),
            "end": end.isoformat(),
            "created": row.created_at.isoformat(),
            "slot": [ref("Slot", row.id)],
            "participant": participants,
        }
        kind = shown("kind", row.kind)
        if kind:
            appointment["appointmentType"] = {
                "coding": [{"system": view.systems.code("appointment-kind"), "code": kind}]
            }
        reason = shown("reason", row.reason)
        if reason:
            appointment["description"] = reason
        cancelled = shown("cancelReason", row.cancel_reason)
        if cancelled:
            appointment["cancelationReason"] = {"text": cancelled}
        if with_schedule and schedule is not None:
            if not any(item.resource["id"] == str(schedule.id) for item in sessions):
                sessions.append(Built(_schedule(schedule, view, zone), None))
            session: dict[str, Any] = ref("Schedule", schedule.id)
        else:
            session = {
                "type": "Schedule",
                "identifier": {"system": view.systems.identifier("schedule"), "value": str(row.schedule_id)},
            }
        slot: dict[str, Any] = {
            "resourceType": "Slot",
            "id": str(row.id),
            "meta": meta,
            "schedule": session,
            "status": _slot_status(status),
            "start": start.isoformat(),
            "end": end.isoformat(),
        }
        built += [Built(appointment, ("Appointment", int(row.id))), Built(slot, None)]
    return sessions + built


register(
    ResourceKind(
        "appointments",
        ("Appointment", "Slot", "Schedule"),
        _load,
        _appointments,
        gate=("Appointment", "slotAt"),
        order=70,
        shared=("Schedule",),
    )
)

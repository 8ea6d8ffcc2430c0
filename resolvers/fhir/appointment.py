"""Appointments as FHIR: an Appointment and its Slot per booking, where the caller's schema shows appointments.

A session of a physician's timetable (a Schedule) is shared by many patients: it is named by a logical reference
(`<base>/sid/schedule`) rather than exported once per patient, so an export's files hold no duplicate resources.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from models.appointment import Appointment, Schedule
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
LIVE = {"requested", "booked", "checked_in"}


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
    if schedule_ids:
        columns = ("id", "physician_id", "slot_minutes", "location")
        found = await data.select(Schedule, columns=columns, then=lambda s: s.where(Schedule.id.in_(schedule_ids)))
        for schedule in data.rows_as(Schedule, columns, await data.rows(found)):
            schedules[schedule.id] = schedule
            shared.want_staff.add(schedule.physician_id)
    grouped: dict[int, list[Any]] = defaultdict(list)
    for row in rows:
        grouped[row.patient_id].append(row)
    return grouped


def _appointments(rows: list[Any], view: View) -> list[Built]:
    shown = view.shown("Appointment")
    names = view.shown("Schedule").visible("physicianName")  # the API shows a physician's name on the session
    schedules: dict[int, Any] = view.shared.extra.get("schedules", {})
    built = []
    for row in rows:
        schedule = schedules.get(row.schedule_id)
        start = row.slot_at
        end = start + timedelta(minutes=schedule.slot_minutes if schedule is not None else 15)
        meta = view.last_updated("Appointment", row, row.created_at, row.updated_at)
        participants: list[dict[str, Any]] = [{"actor": ref("Patient", row.patient_id), "status": "accepted"}]
        physician = view.staff(schedule.physician_id, shown=names) if schedule is not None else None
        if physician is not None:
            participants.append({"actor": physician, "status": "accepted"})
        appointment: dict[str, Any] = {
            "resourceType": "Appointment",
            "id": str(row.id),
            "meta": meta,
            "status": STATUS.get(shown("status", row.status) or "", "booked"),
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
        slot: dict[str, Any] = {
            "resourceType": "Slot",
            "id": str(row.id),
            "meta": meta,
            "schedule": {
                "type": "Schedule",
                "identifier": {"system": view.systems.identifier("schedule"), "value": str(row.schedule_id)},
            },
            "status": "busy" if row.status in LIVE or row.status == "completed" else "free",
            "start": start.isoformat(),
            "end": end.isoformat(),
        }
        built += [Built(appointment, ("Appointment", int(row.id))), Built(slot, None)]
    return built


register(
    ResourceKind(
        "appointments", ("Appointment", "Slot"), _load, _appointments, gate=("Appointment", "slotAt"), order=70
    )
)

"""Appointments and doctor schedules.

common.py: a session's instants and slot times, status changes along the allowed transitions; booking.py: taking
a place (race-safe) and every status change after it; queries.py: schedules, free places and appointment lists;
sessions.py: closing, reopening and cancelling a session (its patients told through notify.py); spreadsheet.py,
transfer.py and plan.py: the schedule plan's import, export and template; jobs.py: the scheduler's targets
(missed appointments, reminders).
"""

from __future__ import annotations

import resolvers.appointment.jobs  # noqa: F401  (the module's scheduled targets register)
from resolvers.appointment.booking import BookInput, book_follow_up, cancel_mine, move, patient_book, staff_book
from resolvers.appointment.plan import PlanFile, export_schedules, template
from resolvers.appointment.queries import (
    AppointmentFilter,
    AppointmentLoaders,
    Availability,
    ScheduleFilter,
    appointment_loaders,
    availability,
    list_appointments,
    list_schedules,
    my_appointments,
    schedules_by_ids,
)
from resolvers.appointment.sessions import Cancelled, cancel_schedule, set_open
from resolvers.appointment.transfer import ImportReport, import_schedules

__all__ = [
    "AppointmentFilter",
    "AppointmentLoaders",
    "Availability",
    "BookInput",
    "Cancelled",
    "ImportReport",
    "PlanFile",
    "ScheduleFilter",
    "appointment_loaders",
    "availability",
    "book_follow_up",
    "cancel_mine",
    "cancel_schedule",
    "export_schedules",
    "import_schedules",
    "list_appointments",
    "list_schedules",
    "move",
    "my_appointments",
    "patient_book",
    "schedules_by_ids",
    "set_open",
    "staff_book",
    "template",
]

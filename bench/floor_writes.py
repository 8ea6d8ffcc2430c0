# ruff: noqa: S608  (benchmark tooling: SQL from constants)
"""The floor's writes: Q5 (`recordFollowUpOutcome`) and a staff booking (`scheduleAppointment`), in raw SQL.

Served by bench/floor.py beside Q1-Q4 (the document text picks the handler). Each does the write our API does,
the way a hand-written endpoint would, on the floor's autocommit connection:

* Q5: one transaction: the follow-up read within the caller's reach (the same SQL condition as our write
  path: policies/scope.py with voided and grant-made visits left out), CONFLICT when cancelled, a reason needed
  once an outcome is recorded, one UPDATE of the changed columns guarded by the version read (the optimistic
  claim), the amendment row (the changed fields, before and after, as JSON) and the event row (with the
  mutation's kept variables), then COMMIT.
* Booking: the patient read within reach, then one transaction: the conditional UPDATE taking a place
  (`booked < capacity`, the session not past), the places held read FOR UPDATE, the appointment, its history row
  and the event, COMMIT; on no place: ROLLBACK and the refusal's event in its own statement, CONFLICT.

Not done here and done by ours after the commit: waking the audit sealer (its own process links the events).
"""

from __future__ import annotations

import base64
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from common import Q5, encode_id  # type: ignore[import-not-found]

BOOK = (
    "mutation Book($patient: ID!, $schedule: ID!) { scheduleAppointment(input: "
    "{ patientId: $patient, scheduleId: $schedule }) { id place status } }"
)
# what Q5's document says (the floor takes the literal values of the one document it serves)
OUTCOME = {"outcome_text": "bench", "pain_score": 2, "bleeding": False, "satisfaction": 4}
OUTCOME_FIELDS = ("status", "outcome_text", "pain_score", "bleeding", "wexner_score", "recurrence", "satisfaction")
CLINIC_TZ = ZoneInfo("Asia/Shanghai")
REDACTED = "[redacted]"


class Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _decode(value: str, kind: str) -> int:
    raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    found, _, pk = raw.partition(":")
    if found != kind or not pk.isdigit():
        raise Refused("BAD_USER_INPUT", f"Not a {kind} id")
    return int(pk)


async def _reach(cur: Any, who: dict[str, Any], patient: str) -> tuple[str, list[Any]]:
    """Our write path's reach condition on a patient column (policies/scope.py, as ours sends it)."""
    if who["scope"] == "ALL":
        return "TRUE", []
    uid = who["user_id"]
    parts = [
        "p.attending_physician_id = %s",
        "p.wechat_user_id = %s",
        "(SELECT 1 FROM visit v WHERE v.patient_id = p.id AND v.physician_id = %s AND v.voided_at IS NULL "
        "AND v.under_grant_id IS NULL LIMIT 1) IS NOT NULL",
        "(SELECT 1 FROM access_grant g WHERE g.patient_id = p.id AND g.user_id = %s AND g.kind = 'emergency' "
        "AND g.expires_at > %s LIMIT 1) IS NOT NULL",
    ]
    if who["scope"] in ("DEPARTMENT", "DEPARTMENT_AND_BELOW") and who["department_id"] is not None:
        allowed = {who["department_id"]}
        if who["scope"] == "DEPARTMENT_AND_BELOW":
            await cur.execute("SELECT id, parent_id FROM department")
            children: dict[int | None, list[int]] = defaultdict(list)
            for dep, parent in await cur.fetchall():
                children[parent].append(dep)
            stack = [who["department_id"]]
            while stack:
                for child in children.get(stack.pop(), []):
                    if child not in allowed:
                        allowed.add(child)
                        stack.append(child)
        parts.insert(0, "p.department_id IN (" + ",".join(str(int(d)) for d in sorted(allowed)) + ")")  # first, as ours
    condition = f"(SELECT 1 FROM patient p WHERE p.id = {patient} AND (" + " OR ".join(parts) + ") LIMIT 1) IS NOT NULL"
    return condition, [uid, uid, uid, uid, who["now"]]


def _event(who: dict[str, Any], ip: str, operation: str, **values: Any) -> tuple[str, list[Any]]:
    row = {
        "occurred_at": datetime.now(UTC).replace(tzinfo=None),
        "actor_id": who["user_id"],
        "action": "update",
        "operation": operation,
        "entity_type": "",
        "entity_id": "",
        "patient_id": None,
        "request_id": who.get("request_id") or uuid.uuid4().hex,
        "ip": ip,
        "outcome": "success",
        "detail": None,
        "is_mutation": 1,
        "user_agent": who.get("user_agent", ""),
        "duration_ms": int((datetime.now(UTC).replace(tzinfo=None) - who["now"]).total_seconds() * 1000),
        "variables": None,
        **values,
    }
    for key in ("detail", "variables"):
        if row[key] is not None:
            row[key] = orjson.dumps(row[key]).decode()
    sql = f"INSERT INTO event ({', '.join(row)}) VALUES ({', '.join(['%s'] * len(row))})"
    return sql, list(row.values())


async def _refuse(
    cur: Any, who: dict[str, Any], ip: str, operation: str, entity_type: str, error: Refused, kept: dict[str, Any]
) -> None:
    """As ours: ROLLBACK, then the refusal's own event (no detail), and the error."""
    await cur.execute("ROLLBACK")
    sql, args = _event(who, ip, operation, action="create" if operation == "scheduleAppointment" else "update",
                       entity_type=entity_type, outcome=error.code.lower(), variables=kept)  # fmt: skip
    await cur.execute(sql, args)
    raise error


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC).isoformat()
    return value.isoformat() if isinstance(value, date) else value


async def q5(cur: Any, who: dict[str, Any], variables: dict[str, Any], ip: str) -> dict[str, Any]:
    follow_up_id = _decode(variables["id"], "FollowUp")
    kept = {"followUpId": variables["id"], "input": {**Q5_INPUT}, "reason": REDACTED}
    reach, args = await _reach(cur, who, "f.patient_id")
    await cur.execute("BEGIN")
    try:
        await cur.execute(
            "SELECT f.patient_id, f.status, f.outcome_text, f.pain_score, f.bleeding, f.wexner_score, f.recurrence, "
            f"f.satisfaction, f.recorded_by_id, f.recorded_at, f.version FROM follow_up f WHERE {reach} AND f.id = %s",
            [*args, follow_up_id],
        )
        row = await cur.fetchone()
        if row is None:
            raise Refused("NOT_FOUND", "Follow-up not found")
        patient_id, status, *measures, recorded_by, recorded_at, version = row
        if status == "cancelled":
            raise Refused("CONFLICT", "This follow-up was cancelled")
        if status != "scheduled" and not REASON:
            raise Refused("BAD_USER_INPUT", "This record is signed off: give a reason for the amendment")
        now = datetime.now(UTC).replace(tzinfo=None)
        before = dict(zip(OUTCOME_FIELDS, [status, *measures], strict=True))
        before.update(recorded_by_id=recorded_by, recorded_at=recorded_at)
        after = {**before, "status": "completed", "wexner_score": None, "recurrence": None, **OUTCOME}
        after.update(recorded_by_id=who["user_id"], recorded_at=now)
        changed = {key: value for key, value in after.items() if before[key] != value}
        sets = ", ".join(f"{key} = %s" for key in changed)
        await cur.execute(
            f"UPDATE follow_up SET {sets}, version = %s WHERE id = %s AND version = %s",
            [*changed.values(), version + 1, follow_up_id, version],
        )
        if cur.rowcount != 1:
            raise Refused("CONFLICT", "This follow-up was changed by someone else; reload and try again")
        diff = {key: {"before": _iso(before[key]), "after": _iso(value)} for key, value in sorted(changed.items())}
        request_id = who.get("request_id") or uuid.uuid4().hex
        await cur.execute(
            "INSERT INTO amendment (entity_type, entity_id, patient_id, kind, changes, reason, actor_id, request_id, "
            "at) VALUES ('FollowUp', %s, %s, 'update', %s, %s, %s, %s, %s)",
            [follow_up_id, patient_id, orjson.dumps(diff).decode(), REASON, who["user_id"], request_id, now],
        )
        sql, event_args = _event(who, ip, "recordFollowUpOutcome", entity_type="FollowUp",
                                 entity_id=str(follow_up_id), patient_id=patient_id, request_id=request_id,
                                 detail={"status": "completed"}, variables=kept)  # fmt: skip
        await cur.execute(sql, event_args)
        await cur.execute("COMMIT")
    except Refused as error:
        await _refuse(cur, who, ip, "recordFollowUpOutcome", "FollowUp", error, kept)
    except BaseException:
        await cur.execute("ROLLBACK")
        raise
    return {"recordFollowUpOutcome": {"id": encode_id("FollowUp", follow_up_id), "status": "COMPLETED"}}


REASON = "bench re-run"
Q5_INPUT = {"outcomeText": REDACTED, "painScore": REDACTED, "bleeding": False, "wexnerScore": None,
            "recurrence": None, "satisfaction": REDACTED, "missed": False}  # fmt: skip


async def book(cur: Any, who: dict[str, Any], variables: dict[str, Any], ip: str) -> dict[str, Any]:
    patient_id = _decode(variables["patient"], "Patient")
    schedule_id = _decode(variables["schedule"], "Schedule")
    kept = {"input": {"patientId": variables["patient"], "scheduleId": variables["schedule"],
                      "kind": "FIRST_VISIT", "reason": None, "followUpId": None}}  # fmt: skip
    reach, args = await _reach(cur, who, "%s")
    await cur.execute(f"SELECT {reach}", [patient_id, *args])
    if not (await cur.fetchone())[0]:
        raise Refused("NOT_FOUND", "Patient not found")
    today = datetime.now(CLINIC_TZ).date()
    await cur.execute("BEGIN")
    try:
        await cur.execute(
            "UPDATE schedule SET booked = booked + 1 WHERE id = %s AND booked < capacity AND day >= %s "
            "AND status = 'open'",
            [schedule_id, today],
        )
        if cur.rowcount != 1:
            raise Refused("CONFLICT", "No place is left in this session")
        await cur.execute(
            "SELECT day, start_time, end_time, slot_minutes, capacity FROM schedule WHERE id = %s", [schedule_id]
        )
        day, start, end, slot_minutes, capacity = await cur.fetchone()
        start_at = datetime.combine(day, time()) + start
        if start_at.replace(tzinfo=CLINIC_TZ) <= datetime.now(UTC):
            raise Refused("CONFLICT", "This session has already started")
        await cur.execute(
            "SELECT place FROM appointment WHERE schedule_id = %s AND active = 1 FOR UPDATE", [schedule_id]
        )
        held = {r[0] for r in await cur.fetchall()}
        place = next((n for n in range(1, capacity + 1) if n not in held), None)
        if place is None:
            raise Refused("CONFLICT", "No place is left in this session")
        slots = max(1, ((end - start).seconds // 60) // max(1, slot_minutes))
        slot = (place - 1) * slots // max(1, capacity)
        slot_at = (start_at.replace(tzinfo=CLINIC_TZ) + timedelta(minutes=slot * slot_minutes)).astimezone(UTC)
        now = datetime.now(UTC).replace(tzinfo=None)
        await cur.execute(
            "INSERT INTO appointment (patient_id, booked_for_id, schedule_id, place, slot_at, kind, status, active, "
            "booked_via, booked_by_id, created_at, updated_at, version) "
            "VALUES (%s, %s, %s, %s, %s, 'first_visit', 'booked', 1, 'staff', %s, %s, %s, 1)",
            [patient_id, patient_id, schedule_id, place, slot_at.replace(tzinfo=None), who["user_id"], now, now],
        )
        appointment_id = cur.lastrowid
        await cur.execute(
            "INSERT INTO appointment_status_change (appointment_id, to_status, changed_by_id, changed_at) "
            "VALUES (%s, 'booked', %s, %s)",
            [appointment_id, who["user_id"], now],
        )
        detail = {"schedule": schedule_id, "place": place, "via": "staff", "status": "booked"}
        sql, event_args = _event(who, ip, "scheduleAppointment", action="create", entity_type="Appointment",
                                 entity_id=str(appointment_id), patient_id=patient_id, detail=detail,
                                 variables=kept)  # fmt: skip
        await cur.execute(sql, event_args)
        await cur.execute("COMMIT")
    except Refused as error:
        await _refuse(cur, who, ip, "scheduleAppointment", "Appointment", error, kept)
    except BaseException:
        await cur.execute("ROLLBACK")
        raise
    return {"scheduleAppointment": {"id": encode_id("Appointment", appointment_id), "place": place, "status": "BOOKED"}}


WRITES = {Q5: q5, BOOK: book}

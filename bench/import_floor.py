# ruff: noqa: S608  (benchmark tooling: SQL from constants)
"""The schedule import's floor (bench/import_schedules.py): the same rows inserted by one multi-row INSERT per batch.

Given the CSV plan the API imported, and the database it wrote to: take the rows the import made (to compare
with at the end), delete them, then time the floor doing the import's work the short way, through the raw driver
(sqlite3 or pymysql): parse the CSV (csv module), look the physicians and departments up (one SELECT each), fill
in each session's default hours (the clinic's morning/afternoon, as the import did), and insert every row with
one multi-row INSERT per BATCH rows, in one transaction with the import's event row. Nothing is checked against
existing sessions (the unique key on physician, day and start refuses a duplicate). The rows it wrote must equal
the import's.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

BATCH = 1000
SAME = (
    "physician_id, department_id, day, period, start_time, end_time, slot_minutes, capacity, booked, status, location"
)


def _connect(url: str) -> tuple[Any, str]:
    if url.startswith("sqlite"):
        return sqlite3.connect(url.split("///", 1)[1]), "?"
    import pymysql

    rest = url.split("://", 1)[1]
    auth, _, location = rest.rpartition("@")
    user, _, password = auth.partition(":")
    host_port, _, database = location.partition("/")
    host, _, port = host_port.partition(":")
    conn = pymysql.connect(
        host=host, port=int(port or 3306), user=user, password=password, database=database, charset="utf8mb4"
    )
    return conn, "%s"


def _text(value: Any) -> str:
    if isinstance(value, timedelta):  # MariaDB's TIME
        seconds = int(value.total_seconds())
        return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    return str(value)[:8] if ":" in str(value) else str(value)


def _snapshot(cursor: Any, mark: str, first: date, last: date) -> list[tuple[str, ...]]:
    cursor.execute(f"SELECT {SAME} FROM schedule WHERE day BETWEEN {mark} AND {mark} ORDER BY physician_id, day, "
                   "start_time", (first, last))  # fmt: skip
    return [tuple(_text(value) for value in row) for row in cursor.fetchall()]


def run(url: str, plan: bytes) -> dict[str, Any]:
    """Replace the import's rows by the floor's; rows per second, and whether they are the same."""
    conn, mark = _connect(url)
    try:
        cursor = conn.cursor()
        rows = list(csv.reader(io.StringIO(plan.decode("utf-8-sig"))))[1:]
        first, last = min(row[0] for row in rows), max(row[0] for row in rows)
        imported = _snapshot(cursor, mark, date.fromisoformat(first), date.fromisoformat(last))
        cursor.execute(f"SELECT period, start_time, end_time FROM schedule WHERE day BETWEEN {mark} AND {mark}",
                       (first, last))  # fmt: skip
        hours = {period: (start, end) for period, start, end in cursor.fetchall()}  # as the import stored them
        cursor.execute("SELECT id FROM app_user WHERE username = 'admin'")
        admin_id = cursor.fetchone()[0]
        cursor.execute(f"DELETE FROM schedule WHERE day BETWEEN {mark} AND {mark}", (first, last))
        conn.commit()

        started = time.perf_counter()
        parsed = list(csv.reader(io.StringIO(plan.decode("utf-8-sig"))))[1:]
        names = sorted({row[4] for row in parsed})
        cursor.execute(f"SELECT username, id FROM app_user WHERE username IN ({', '.join([mark] * len(names))})", names)
        physicians = dict(cursor.fetchall())
        codes = sorted({row[5] for row in parsed})
        cursor.execute(f"SELECT code, id FROM department WHERE code IN ({', '.join([mark] * len(codes))})", codes)
        departments = dict(cursor.fetchall())
        now = datetime.now(UTC).replace(tzinfo=None)
        values: list[tuple[Any, ...]] = []
        for day, period, start, end, username, code, capacity, slot, location in parsed:
            default_start, default_end = hours[period]
            values.append((physicians[username], departments[code], day, period, start or default_start,
                           end or default_end, int(slot), int(capacity), 0, "open", location, admin_id, now, now,
                           1))  # fmt: skip
        columns = f"{SAME}, created_by_id, created_at, updated_at, version"
        one = "(" + ", ".join([mark] * 15) + ")"
        if mark == "%s":
            cursor.execute("BEGIN")
        for low in range(0, len(values), BATCH):
            batch = values[low : low + BATCH]
            cursor.execute(f"INSERT INTO schedule ({columns}) VALUES {', '.join([one] * len(batch))}",
                           [value for row in batch for value in row])  # fmt: skip
        cursor.execute(
            "INSERT INTO event (occurred_at, actor_id, action, operation, entity_type, entity_id, request_id, ip, "
            f"outcome, detail, is_mutation, user_agent) VALUES ({mark}, {mark}, 'import', 'importSchedules', "
            f"'Schedule', '', {mark}, '', 'success', {mark}, 1, '')",
            (now, admin_id, uuid.uuid4().hex, json.dumps({"file": "plan.csv", "created": len(values), "updated": 0})),
        )
        conn.commit()
        seconds = time.perf_counter() - started
        same = _snapshot(cursor, mark, date.fromisoformat(first), date.fromisoformat(last)) == imported
    finally:
        conn.close()
    return {
        "rows": len(values),
        "batch": BATCH,
        "seconds": round(seconds, 3),
        "rows_per_second": round(len(values) / seconds),
        "same_rows_as_the_import": same,
    }

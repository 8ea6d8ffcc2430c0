"""Booking rush: 200 clients book 50 places of one session at once (`scheduleAppointment`, as the chief).

    python bench/wl_booking.py [--clients 200] [--places 50]

Each client books a different patient of the chief's reach (the demo data, bench/wl_common.py) into a fresh
session of 50 places; all requests are sent together on connections opened beforehand. Counted: the wall time of
the whole rush (first request sent to last answer), bookings per second (50 / that time), requests per second,
p50/p99 of the answers, the server's CPU. Checked: exactly 50 booked (the answers, the session's `booked`, the
active appointments and their distinct places), every other answer CONFLICT and nothing else. Beside it, the
floor (bench/floor_writes.py `book`): the same conditional UPDATE, appointment, history and event rows in raw SQL.
Ours runs with its production defaults (MAX_REQUESTS_IN_FLIGHT 256 holds the 200 clients; the adaptive
limit decides how many run at once).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import date, timedelta
from typing import Any

import httpx
import orjson
from common import encode_id  # type: ignore[import-not-found]
from floor_writes import BOOK  # type: ignore[import-not-found]
from wl_common import Proc, connect, load_average, log, login, prepare  # type: ignore[import-not-found]

LOCATION = "bench rush"


def fresh_session(capacity: int) -> int:
    """A new open session of the chief (Colorectal Surgery) on a day no earlier run used."""
    conn = connect()
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT u.id, u.department_id FROM app_user u WHERE u.username = 'chief'")
            chief, department = cursor.fetchone()
            cursor.execute("SELECT MAX(day) FROM schedule WHERE location = %s", (LOCATION,))
            last = cursor.fetchone()[0]
            day = max(date.today() + timedelta(days=30), (last or date.today()) + timedelta(days=1))
            cursor.execute(
                "INSERT INTO schedule (physician_id, department_id, day, period, start_time, end_time, slot_minutes, "
                "capacity, booked, status, location, created_at, updated_at, version) "
                "VALUES (%s, %s, %s, 'morning', '08:00:00', '12:10:00', 5, %s, 0, 'open', %s, NOW(6), NOW(6), 1)",
                (chief, department, day, capacity, LOCATION),
            )
            return int(cursor.lastrowid)
    finally:
        conn.close()


def patients_in_reach(count: int) -> list[int]:
    conn = connect()
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT p.id FROM patient p JOIN department d ON d.id = p.department_id "
                "WHERE d.code IN ('CRS', 'CRS-ANO') AND p.voided_at IS NULL ORDER BY p.id LIMIT %s",
                (count,),
            )
            found = [int(row[0]) for row in cursor.fetchall()]
    finally:
        conn.close()
    if len(found) < count:
        raise SystemExit(f"only {len(found)} patients in the chief's reach; {count} needed")
    return found


def stored(schedule_id: int) -> dict[str, int]:
    conn = connect()
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT s.booked, COUNT(a.id), COUNT(DISTINCT a.place) FROM schedule s "
                "LEFT JOIN appointment a ON a.schedule_id = s.id AND a.active = 1 WHERE s.id = %s GROUP BY s.id",
                (schedule_id,),
            )
            booked, active, places = cursor.fetchone()
    finally:
        conn.close()
    return {"booked": int(booked), "appointments": int(active), "distinct_places": int(places)}


async def rush(url: str, token: str, schedule_id: int, patients: list[int]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=len(patients), max_keepalive_connections=len(patients))
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=120) as client:
        # open every connection first, so the rush measures bookings, not TCP handshakes
        await asyncio.gather(*(client.post("/graphql", json={"query": "{ __typename }"}) for _ in patients))
        schedule = encode_id("Schedule", schedule_id)
        bodies = [
            orjson.dumps({"query": BOOK, "variables": {"patient": encode_id("Patient", pk), "schedule": schedule}})
            for pk in patients
        ]
        started = time.perf_counter()

        async def one(content: bytes) -> tuple[float, dict[str, Any]]:
            response = await client.post("/graphql", content=content, headers={"Content-Type": "application/json"})
            return time.perf_counter() - started, response.json()

        answers = await asyncio.gather(*(one(content) for content in bodies))
    wall = max(seconds for seconds, _ in answers)
    booked = sorted(seconds for seconds, answer in answers if (answer.get("data") or {}).get("scheduleAppointment"))
    codes: dict[str, int] = {}
    for _, answer in answers:
        for error in answer.get("errors") or []:
            code = (error.get("extensions") or {}).get("code", "none")
            codes[code] = codes.get(code, 0) + 1
    latencies = sorted(seconds for seconds, _ in answers)
    return {
        "wall_seconds": round(wall, 3),
        "booked_answers": len(booked),
        "last_booking_at_s": round(booked[-1], 3) if booked else None,
        "bookings_per_second": round(len(booked) / wall, 1),
        "requests_per_second": round(len(answers) / wall, 1),
        "p50_ms": round(1000 * latencies[len(latencies) // 2], 1),
        "p99_ms": round(1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 1),
        "error_codes": codes,
    }


def run(clients: int = 200, places: int = 50) -> dict[str, Any]:
    prepare()
    patients = patients_in_reach(clients)
    results: dict[str, Any] = {"clients": clients, "places": places, "load_average_before": load_average()}
    # the production defaults: MAX_REQUESTS_IN_FLIGHT (256) holds every client; an OVERLOADED answer would count as
    # an error other than CONFLICT
    with Proc("ours") as ours, Proc("floor") as floor:
        token = login(ours.url)
        for server in (ours, floor):
            warm = fresh_session(1)  # the first booking of each server (schema, statements) is not timed
            asyncio.run(rush(server.url, token, warm, patients[:2]))
            schedule_id = fresh_session(places)
            cpu = server.cpu_seconds()
            measured = asyncio.run(rush(server.url, token, schedule_id, patients))
            measured["server_cpu_ms_per_request"] = round(1000 * (server.cpu_seconds() - cpu) / clients, 2)
            measured["stored"] = stored(schedule_id)
            conflicts = measured["error_codes"].get("CONFLICT", 0)
            measured["ok"] = (
                measured["booked_answers"] == places
                and conflicts == clients - places
                and set(measured["error_codes"]) <= {"CONFLICT"}
                and measured["stored"] == {"booked": places, "appointments": places, "distinct_places": places}
            )
            results[server.name] = measured
            log(f"booking rush {server.name}: {measured}")
    ours_rate, floor_rate = results["ours"]["bookings_per_second"], results["floor"]["bookings_per_second"]
    results["floor_over_ours"] = round(floor_rate / ours_rate, 2)
    results["load_average_after"] = load_average()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--places", type=int, default=50)
    args = parser.parse_args()
    print(orjson.dumps(run(args.clients, args.places), option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()

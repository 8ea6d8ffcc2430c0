"""Booking under real concurrency: the app served by uvicorn, 30 HTTP clients at once over TCP, on whichever
database the suite runs (SQLite, or MariaDB with TEST_DATABASE_URL). The database decides: exactly one of 30
gets the last place and the others CONFLICT; one patient sending 30 bookings of one session at once holds
one place."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select

from core.db import Database
from models.appointment import Appointment
from models.audit import Event
from models.patient import Patient
from tests.appointment_helpers import BOOK, SCHEDULE, appointments_of, department_id, gid, make_schedule, schedule_row
from tests.clinical_helpers import user_id
from tests.conftest import GraphQLClient

CLIENTS = 30


@pytest.fixture
async def served(client: GraphQLClient) -> AsyncIterator[str]:
    """The test's app on a free port (its lifespan already runs under the client fixture)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(client.app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
        await asyncio.sleep(0.02)
    yield f"http://127.0.0.1:{port}/graphql"
    server.should_exit = True
    await task


async def _patients(db: Database, count: int) -> list[int]:
    """`count` new patients of Colorectal Surgery attended by the physician."""
    physician = await user_id(db, "physician")
    crs = await department_id(db, "CRS")
    rows = [
        Patient(name=f"并发测试{index}", name_initials="BFCS", department_id=crs, attending_physician_id=physician)
        for index in range(count)
    ]
    async with db.transaction() as session:
        session.add_all(rows)
        await session.flush()
        return [int(row.id) for row in rows]  # type: ignore[arg-type]


async def _at_once(url: str, token: str, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(limits=limits, timeout=60.0) as http:
        gate = asyncio.Event()

        async def send(body: dict[str, Any]) -> dict[str, Any]:
            await gate.wait()
            response = await http.post(url, json=body, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 200, response.text
            result: dict[str, Any] = response.json()
            return result

        tasks = [asyncio.create_task(send(body)) for body in bodies]
        await asyncio.sleep(0.05)
        gate.set()
        return await asyncio.gather(*tasks)


def _outcomes(results: list[dict[str, Any]]) -> tuple[int, list[str]]:
    won = sum(1 for result in results if "errors" not in result)
    codes = [error["extensions"]["code"] for result in results for error in result.get("errors", [])]
    return won, codes


async def test_thirty_clients_on_the_last_place_one_wins(client: GraphQLClient, db: Database, served: str) -> None:
    schedule = await make_schedule(db, capacity=1)
    patients = await _patients(db, CLIENTS)
    token = await client.token("admin")
    bodies = [
        {
            "query": SCHEDULE,
            "variables": {"input": {"patientId": gid("Patient", pk), "scheduleId": gid("Schedule", schedule)}},
        }
        for pk in patients
    ]
    results = await _at_once(served, token, bodies)
    won, codes = _outcomes(results)
    assert won == 1 and codes == ["CONFLICT"] * (CLIENTS - 1), codes
    stored = await appointments_of(db, schedule)
    assert len(stored) == 1 and stored[0].patient_id in patients and stored[0].place == 1
    assert (await schedule_row(db, schedule)).booked == 1
    async with db.session() as session:
        outcomes = (
            await session.execute(
                select(Event.outcome, func.count())
                .where(Event.operation == "scheduleAppointment")
                .group_by(Event.outcome)
            )
        ).all()
    assert dict(outcomes) == {"success": 1, "conflict": CLIENTS - 1}


async def test_many_places_many_clients_each_gets_one_place(client: GraphQLClient, db: Database, served: str) -> None:
    """Ten places, thirty clients: ten win, with ten distinct place numbers, and the count is exact."""
    schedule = await make_schedule(db, capacity=10)
    patients = await _patients(db, CLIENTS)
    token = await client.token("admin")
    bodies = [
        {
            "query": SCHEDULE,
            "variables": {"input": {"patientId": gid("Patient", pk), "scheduleId": gid("Schedule", schedule)}},
        }
        for pk in patients
    ]
    won, codes = _outcomes(await _at_once(served, token, bodies))
    stored = await appointments_of(db, schedule)
    assert won == len(stored) == 10 and set(codes) == {"CONFLICT"}
    assert sorted(row.place for row in stored) == list(range(1, 11))
    assert (await schedule_row(db, schedule)).booked == 10


async def test_one_patient_thirty_times_holds_one_place(client: GraphQLClient, db: Database, served: str) -> None:
    schedule = await make_schedule(db, capacity=20)
    token = await client.token("patient")
    # a patient's sessions run only the mini-program's trusted documents: BOOK is registered as one, sent by hash
    trusted = {"persistedQuery": {"version": 1, "sha256Hash": await client.register_trusted(BOOK)}}
    bodies = [
        {"query": BOOK, "variables": {"s": gid("Schedule", schedule)}, "extensions": trusted} for _ in range(CLIENTS)
    ]
    won, codes = _outcomes(await _at_once(served, token, bodies))
    assert won == 1 and codes == ["CONFLICT"] * (CLIENTS - 1), codes
    async with db.session() as session:
        held = (
            await session.execute(
                select(func.count()).select_from(Appointment).where(Appointment.schedule_id == schedule)
            )
        ).scalar_one()
    assert held == 1 and (await schedule_row(db, schedule)).booked == 1

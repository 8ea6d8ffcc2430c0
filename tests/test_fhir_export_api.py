"""FHIR bulk exports through the GraphQL API (the console's page): start, follow, download over HTTP, cancel; the
same export as the Bulk Data Access endpoints', with the same capability, scope and audit; refusals per role."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select

from core.db import Database
from core.ids import encode_id
from models.audit import Event
from models.fhir import FhirExport
from tests.clinical_helpers import user_id
from tests.conftest import GraphQLClient, error_codes
from tests.test_clinical_patient_side import new_user
from tests.test_fhir_export import _department_of, _patients_in

EXPORT_FIELDS = """id level status departmentId departmentName types since progress totalPatients donePatients
  message createdAt finishedAt expiresAt statusUrl files { type url count }"""
START = f"""mutation ($d: ID, $types: [String!], $since: DateTime) {{
  startFhirExport(departmentId: $d, types: $types, since: $since) {{ {EXPORT_FIELDS} }} }}"""
MINE = f"{{ myFhirExports(first: 20) {{ totalCount edges {{ node {{ {EXPORT_FIELDS} }} }} }} }}"
CANCEL = "mutation ($id: String!) { cancelFhirExport(exportId: $id) }"


@pytest.fixture
def settings_overrides(tmp_path: Path) -> dict[str, Any]:
    return {"fhir_export_dir": str(tmp_path / "exports"), "fhir_export_batch": 4}


async def _mine(client: GraphQLClient, as_: str) -> list[dict[str, Any]]:
    return [edge["node"] for edge in (await client.data(MINE, as_=as_))["myFhirExports"]["edges"]]


async def _finished(client: GraphQLClient, as_: str, export_id: str, seconds: float = 60) -> dict[str, Any]:
    for _ in range(int(seconds * 20)):
        (found,) = [export for export in await _mine(client, as_) if export["id"] == export_id]
        if found["status"] not in ("ACCEPTED", "RUNNING"):
            return found
        await asyncio.sleep(0.05)
    raise AssertionError("the export did not finish")


async def test_a_chief_exports_the_department_through_the_api(client: GraphQLClient, db: Database) -> None:
    department = await _department_of(db, "chief")
    expected = await _patients_in(db, department)
    started = (await client.data(START, {"d": encode_id("Department", department)}, as_="chief"))["startFhirExport"]
    assert (started["level"], started["departmentId"]) == ("GROUP", encode_id("Department", department))
    assert started["status"] in ("ACCEPTED", "RUNNING", "COMPLETED") and started["departmentName"]
    done = await _finished(client, "chief", started["id"])
    assert done["status"] == "COMPLETED", done
    assert done["donePatients"] == done["totalPatients"] == len(expected)
    assert done["finishedAt"] and done["expiresAt"] and done["progress"].startswith("100%")
    files = {entry["type"]: entry for entry in done["files"]}
    assert {"Patient", "Encounter", "Condition"} <= set(files)

    # The files download over HTTP with the same token, as the console does; the status URL is the same export's.
    auth = {"Authorization": f"Bearer {await client.token('chief')}", "Accept": "application/fhir+ndjson"}
    patients = await client.http.get(files["Patient"]["url"], headers=auth)
    assert patients.status_code == 200, patients.text
    lines = [orjson.loads(line) for line in patients.content.splitlines() if line]
    assert {int(resource["id"]) for resource in lines} == set(expected) and len(lines) == files["Patient"]["count"]
    status = await client.http.get(done["statusUrl"], headers={"Authorization": auth["Authorization"]})
    assert status.status_code == 200 and status.json()["request"].endswith(f"/fhir/Group/{department}/$export")

    # Recorded as the HTTP kick-off is: one create by the chief, an export read of each patient.
    chief = await user_id(db, "chief")
    async with db.session() as session:
        kicked = await session.execute(
            select(func.count()).where(
                Event.operation == "fhirBulkExport", Event.action == "create", Event.actor_id == chief
            )
        )
        assert kicked.scalar_one() == 1
        read = await session.execute(select(Event.patient_id).where(Event.action == "export", Event.actor_id == chief))
        assert set(read.scalars()) == set(expected)

    # Cancelled (here: a finished one's files deleted at once): gone from the list, its URLs answer 404.
    assert (await client.data(CANCEL, {"id": started["id"]}, as_="chief"))["cancelFhirExport"] is True
    assert [export["id"] for export in await _mine(client, "chief")] == []
    assert (await client.http.get(files["Patient"]["url"], headers=auth)).status_code == 404
    assert error_codes(await client.run(CANCEL, {"id": started["id"]}, as_="chief")) == ["NOT_FOUND"]


async def test_types_and_since_and_bad_input(client: GraphQLClient, db: Database) -> None:
    department = encode_id("Department", await _department_of(db, "chief"))
    variables = {"d": department, "types": ["Patient"], "since": "2020-01-01T00:00:00+08:00"}
    started = (await client.data(START, variables, as_="chief"))["startFhirExport"]
    assert started["types"] == ["Patient"] and started["since"].startswith("2019-12-31T16:00:00")
    done = await _finished(client, "chief", started["id"])
    assert [entry["type"] for entry in done["files"]] == ["Patient"]

    before = await _count(db)
    for bad in ({"types": ["Spaceship"]}, {"since": "2099-01-01T00:00:00Z"}, {"since": "2020-01-01T00:00:00"}):
        refused = await client.run(START, {"d": department, **bad}, as_="chief")
        assert error_codes(refused) == ["BAD_USER_INPUT"], refused
    assert error_codes(await client.run(START, {"d": encode_id("Department", 10**8)}, as_="chief")) == ["NOT_FOUND"]
    assert error_codes(await client.run(START, {"d": "not-an-id"}, as_="chief")) == ["NOT_FOUND"]
    assert await _count(db) == before  # nothing queued by a refused start


async def _count(db: Database) -> int:
    async with db.session() as session:
        return int((await session.execute(select(func.count()).select_from(FhirExport))).scalar_one())


async def test_refusals_by_role_scope_and_owner(client: GraphQLClient, db: Database) -> None:
    # Every patient in reach needs capability fhir.export_all: an admin has it, a chief does not.
    assert error_codes(await client.run(START, as_="chief")) == ["FORBIDDEN"]
    everyone = (await client.data(START, as_="admin"))["startFhirExport"]
    assert everyone["level"] == "PATIENT" and everyone["departmentId"] is None

    # A physician's group export outside their data scope (another department's) is refused; their own is not.
    own, other = await _department_of(db, "physician"), await _department_of(db, "physician2")
    assert own != other
    refused = await client.run(START, {"d": encode_id("Department", other)}, as_="physician")
    assert error_codes(refused) == ["FORBIDDEN"]
    mine = (await client.data(START, {"d": encode_id("Department", own)}, as_="physician"))["startFhirExport"]

    # An export is its requester's alone: not listed for anyone else, and not theirs to cancel.
    assert mine["id"] not in [export["id"] for export in await _mine(client, "admin")]
    assert everyone["id"] not in [export["id"] for export in await _mine(client, "physician")]
    assert error_codes(await client.run(CANCEL, {"id": mine["id"]}, as_="admin")) == ["NOT_FOUND"]
    assert mine["id"] in [export["id"] for export in await _mine(client, "physician")]

    # The patient role and an account with no role have none of it in their schema.
    await new_user(db, "wx-exporter")
    for as_ in ("wx-exporter", "patient"):
        for query in (START, MINE, CANCEL):
            refused = await client.run(query, {"id": mine["id"]} if query is CANCEL else None, as_=as_)
            assert error_codes(refused) == ["GRAPHQL_VALIDATION_FAILED"]

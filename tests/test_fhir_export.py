"""FHIR bulk data export: kick-off, status, manifest, files; scope, masking and audit as the API; refusals per
role; cancellation; `_type` and `_since`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from core.db import Database
from core.ids import encode_id
from core.timeutil import utcnow
from models.audit import Event
from models.clinical import TreatmentPlan
from models.fhir import FhirExport
from models.organisation import Department
from models.patient import Patient
from models.user import User
from policies.scope import subtree
from tests.clinical_helpers import user_id
from tests.conftest import GraphQLClient
from tests.fhir_helpers import ASYNC, check_files, download, headers, kick_off, wait
from tests.test_clinical_patient_side import new_user


@pytest.fixture
def settings_overrides(tmp_path: Path) -> dict[str, Any]:
    return {"fhir_export_dir": str(tmp_path / "exports"), "fhir_export_batch": 4}


async def _department_of(db: Database, username: str) -> int:
    async with db.session() as session:
        return int((await session.execute(select(User.department_id).where(User.username == username))).scalar_one())


async def _patients_in(db: Database, department_id: int) -> dict[int, Any]:
    async with db.session() as session:
        parents = dict((await session.execute(select(Department.id, Department.parent_id))).all())
        rows = await session.execute(
            select(Patient).where(
                Patient.department_id.in_(subtree(department_id, parents)), Patient.voided_at.is_(None)
            )
        )
        return {p.id: p for p in rows.scalars()}


def _group(department_id: int) -> str:
    return f"/fhir/Group/{encode_id('Department', department_id)}/$export"


async def _export(client: GraphQLClient, path: str, as_: str, **params: str) -> tuple[dict[str, Any], Any]:
    response = await kick_off(client, path, as_, **params)
    assert response.status_code == 202, response.text
    status_url = response.headers["Content-Location"]
    assert status_url.startswith("http://testserver/fhir/$export-status/")
    done = await wait(client, status_url, as_)
    assert done.status_code == 200, done.text
    manifest = done.json()
    assert done.headers["Expires"]
    return manifest, status_url


async def test_group_export_of_the_chiefs_department(client: GraphQLClient, db: Database) -> None:
    department = await _department_of(db, "chief")
    expected = await _patients_in(db, department)
    manifest, _ = await _export(client, _group(department), "chief")
    assert set(manifest) == {"transactionTime", "request", "requiresAccessToken", "output", "error"}
    assert manifest["requiresAccessToken"] is True and manifest["error"] == []
    assert manifest["request"].endswith(_group(department))
    files = await download(client, manifest, "chief")
    check_files(files)
    assert {"Patient", "Encounter", "Condition", "CarePlan", "Observation", "Communication"} <= set(files)
    patients = {int(p["id"]): p for p in files["Patient"]}
    assert set(patients) == set(expected)
    # Masking as the API: the chief sees identity numbers masked, phones whole.
    for pid, resource in patients.items():
        row = expected[pid]
        resident = [i for i in resource["identifier"] if i["system"] == "urn:oid:2.16.156.10011.1.1"]
        assert resident[0]["value"] == row.id_number[:3] + "*" * 11 + row.id_number[-4:]
        assert resource["telecom"][0]["value"] == row.phone
    # An export is an audited read of every patient in it, by the requester.
    chief = await user_id(db, "chief")
    async with db.session() as session:
        read = (
            await session.execute(select(Event.patient_id).where(Event.action == "export", Event.actor_id == chief))
        ).scalars()
        assert set(read) == set(expected)
        kicked = (
            await session.execute(
                select(func.count()).where(Event.operation == "fhirBulkExport", Event.action == "create")
            )
        ).scalar_one()
        assert kicked == 1


async def test_physician_gets_their_own_patients_masked(client: GraphQLClient, db: Database) -> None:
    department = await _department_of(db, "physician")
    physician = await user_id(db, "physician")
    manifest, _ = await _export(client, _group(department), "physician")
    files = await download(client, manifest, "physician")
    check_files(files)
    in_department = await _patients_in(db, department)
    own = {pid for pid, p in in_department.items() if p.attending_physician_id == physician}
    assert own and {int(p["id"]) for p in files["Patient"]} <= set(in_department)
    assert own <= {int(p["id"]) for p in files["Patient"]}
    for resource in files["Patient"]:
        row = in_department[int(resource["id"])]
        assert all(i["system"] != "urn:oid:2.16.156.10011.1.1" for i in resource["identifier"])
        assert resource["telecom"][0]["value"] == row.phone[:3] + "****" + row.phone[-4:]
    assert "Communication" not in files  # takes part in no conversation, manages none


async def test_refusals(client: GraphQLClient, db: Database) -> None:
    department = await _department_of(db, "chief")
    path = _group(department)

    async def kick(as_: str | None, target: str = path, **params: str) -> Any:
        sent = dict(ASYNC) if as_ is None else await headers(client, as_)
        response = await client.http.get(target, params=params, headers=sent)
        if response.status_code != 202:
            body = response.json()
            assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["diagnostics"]
        return response

    assert (await kick(None)).status_code == 401
    # a physician of another department; the patient role; an account with no role
    assert (await kick("physician2")).status_code == 403
    assert (await kick("patient")).status_code == 403
    await new_user(db, "norole")
    assert (await kick("norole")).status_code == 403
    # Patient/$export is for admins (capability fhir.export_all)
    assert (await kick("chief", "/fhir/Patient/$export")).status_code == 403
    assert (await kick("physician", "/fhir/Patient/$export")).status_code == 403
    # bad requests
    assert (await kick("chief", _type="Patient,Spaceship")).status_code == 400
    assert (await kick("chief", _since="yesterday")).status_code == 400
    assert (await kick("chief", _since="2026-01-01T00:00:00")).status_code == 400  # no zone
    assert (await kick("chief", _outputFormat="text/csv")).status_code == 400
    assert (await kick("chief", _group(999_999))).status_code == 404
    no_prefer = await client.http.get(path, headers={"Authorization": f"Bearer {await client.token('chief')}"})
    assert no_prefer.status_code == 400 and no_prefer.json()["issue"][0]["code"] == "invalid"
    async with db.session() as session:
        assert (await session.execute(select(func.count()).select_from(FhirExport))).scalar_one() == 0
        refused = (
            await session.execute(
                select(func.count()).where(Event.operation == "fhirBulkExport", Event.outcome == "forbidden")
            )
        ).scalar_one()
        assert refused >= 4  # refusals are recorded


async def test_status_and_files_are_the_requesters_only(client: GraphQLClient, db: Database) -> None:
    department = await _department_of(db, "chief")
    manifest, status_url = await _export(client, _group(department), "chief", _type="Patient")
    other = {"Authorization": f"Bearer {await client.token('deptadmin')}"}
    assert (await client.http.get(status_url, headers=other)).status_code == 404
    assert (await client.http.get(manifest["output"][0]["url"], headers=other)).status_code == 404
    assert (await client.http.delete(status_url, headers=other)).status_code == 404
    mine = {"Authorization": f"Bearer {await client.token('chief')}"}
    assert (await client.http.get(status_url, headers=mine)).status_code == 200


async def test_admin_patient_export_and_type_filter(client: GraphQLClient, db: Database) -> None:
    manifest, _ = await _export(client, "/fhir/Patient/$export", "admin", _type="Patient,Condition")
    assert [o["type"] for o in manifest["output"]] == ["Patient", "Condition"]
    files = await download(client, manifest, "admin")
    check_files(files, only="Patient")  # a Condition's encounter was not asked for
    async with db.session() as session:
        patients = (await session.execute(select(func.count()).select_from(Patient))).scalar_one()
    assert len(files["Patient"]) == patients


async def test_since_leaves_out_what_did_not_change(client: GraphQLClient, db: Database) -> None:
    department = await _department_of(db, "chief")
    since = utcnow()
    async with db.session() as session:
        plan = (
            (
                await session.execute(
                    select(TreatmentPlan)
                    .join(Patient, Patient.id == TreatmentPlan.patient_id)
                    .where(Patient.department_id == department)
                    .order_by(TreatmentPlan.id)
                )
            )
            .scalars()
            .first()
        )
    assert plan is not None
    amend = """mutation ($id: ID!, $v: Int!) { updateTreatmentPlan(id: $id, version: $v,
      input: {description: "since"}, reason: "test") { version } }"""
    await client.data(amend, {"id": encode_id("TreatmentPlan", plan.id), "v": plan.version}, as_="chief")
    manifest, _ = await _export(client, _group(department), "chief", _since=since.isoformat())
    files = await download(client, manifest, "chief")
    assert {"CarePlan", "Provenance"} <= set(files) and not {"Patient", "Encounter", "Condition"} & set(files)
    assert all(r["meta"]["lastUpdated"] >= since.isoformat() for rows in files.values() for r in rows)
    assert [c["id"] for c in files["CarePlan"]] == [f"plan-{plan.id}"]
    assert files["Provenance"][0]["target"] == [{"reference": f"CarePlan/plan-{plan.id}"}]
    future = await kick_off(client, _group(department), "chief", _since="2099-01-01T00:00:00Z")
    assert future.status_code == 400


async def test_cancel(client: GraphQLClient, db: Database, settings_overrides: dict[str, Any]) -> None:
    department = await _department_of(db, "chief")
    manifest, status_url = await _export(client, _group(department), "chief")
    folder = Path(settings_overrides["fhir_export_dir"]) / status_url.rsplit("/", 1)[1]
    assert any(folder.iterdir())
    auth = {"Authorization": f"Bearer {await client.token('chief')}"}
    assert (await client.http.delete(status_url, headers=auth)).status_code == 202
    assert not folder.exists()
    assert (await client.http.get(status_url, headers=auth)).status_code == 404
    gone = await client.http.get(manifest["output"][0]["url"], headers=auth)
    assert gone.status_code == 404 and gone.json()["resourceType"] == "OperationOutcome"

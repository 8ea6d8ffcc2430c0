"""The department tree is read once per process and dropped when a department is created or moved
(resolvers/data/tree.py DepartmentTree): a move changes who reaches which patients at once, on this instance
and, through the change notice, on the others."""

from __future__ import annotations

import asyncio
import time

from core.db import Database
from tests.conftest import GraphQLClient, error_codes
from tests.test_cluster import instances  # noqa: F401 - the two-instance fixture
from tests.test_organisation import CREATE_DEPT, UPDATE_DEPT, dep_id, departments_by_code

REGISTER = 'mutation ($d: ID!) { registerPatient(input: {name: "夜诊患者", departmentId: $d}) { id } }'
PATIENT = "query ($id: ID!) { patient(id: $id) { id name } }"


async def _night_clinic_patient(client: GraphQLClient) -> tuple[str, str]:
    """A root department outside the chief's (Colorectal Surgery and below), and a patient of it."""
    created = await client.data(CREATE_DEPT, {"input": {"name": "夜间门诊", "code": "NIGHT"}}, as_="admin")
    department = created["createDepartment"]["id"]
    patient = (await client.data(REGISTER, {"d": department}, as_="admin"))["registerPatient"]["id"]
    return department, patient


async def test_moving_a_department_changes_the_chiefs_reach_at_once(client: GraphQLClient, db: Database) -> None:
    department, patient = await _night_clinic_patient(client)
    assert error_codes(await client.run(PATIENT, {"id": patient}, as_="chief")) == ["NOT_FOUND"]
    tree = client.services.department_tree
    assert tree._parents is not None  # read once, kept for the next requests

    crs = dep_id((await departments_by_code(db))["CRS"])
    await client.data(UPDATE_DEPT, {"id": department, "input": {"parentId": crs}}, as_="admin")
    assert (await client.data(PATIENT, {"id": patient}, as_="chief"))["patient"]["name"] == "夜诊患者"

    await client.data(UPDATE_DEPT, {"id": department, "input": {"parentId": None}}, as_="admin")
    assert error_codes(await client.run(PATIENT, {"id": patient}, as_="chief")) == ["NOT_FOUND"]


async def test_a_move_on_one_instance_reaches_the_other(
    instances: tuple[GraphQLClient, GraphQLClient],  # noqa: F811
) -> None:
    a, b = instances
    department, patient = await _night_clinic_patient(a)
    chief_on_b = await b.token("chief")
    assert error_codes(await b.run(PATIENT, {"id": patient}, token=chief_on_b)) == ["NOT_FOUND"]
    assert b.services.department_tree._parents is not None  # B holds its copy

    departments = (await a.data("{ departments { id code } }", as_="admin"))["departments"]
    crs = next(d["id"] for d in departments if d["code"] == "CRS")
    await a.data(UPDATE_DEPT, {"id": department, "input": {"parentId": crs}}, as_="admin")
    start = time.monotonic()
    while True:  # well before B's copy would be re-read for age (10 s): the notice dropped it
        result = await b.run(PATIENT, {"id": patient}, token=chief_on_b)
        if "errors" not in result:
            break
        assert time.monotonic() - start < 3.0, result
        await asyncio.sleep(0.05)
    assert result["data"]["patient"]["name"] == "夜诊患者"

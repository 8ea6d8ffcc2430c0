"""Departments (a flat list with parentId) and positions: staff read them, only the admin changes them."""

from __future__ import annotations

from sqlalchemy import func, select

from core.db import Database
from core.ids import encode_id
from models.audit import Event
from models.organisation import Department, Position
from tests.conftest import GraphQLClient, error_codes

DEPARTMENTS = "{ departments { id name code parentId sortOrder } }"
POSITIONS = "{ positions { id name description } }"
CREATE_DEPT = """
mutation ($input: CreateDepartmentInput!) { createDepartment(input: $input) { id name code parentId sortOrder } }
"""
UPDATE_DEPT = """
mutation ($id: ID!, $input: UpdateDepartmentInput!) { updateDepartment(id: $id, input: $input) { id name code parentId sortOrder } }
"""
CREATE_POS = "mutation ($n: String!, $d: String) { createPosition(name: $n, description: $d) { id name description } }"
UPDATE_POS = "mutation ($id: ID!, $n: String, $d: String) { updatePosition(id: $id, name: $n, description: $d) { id name description } }"


async def departments_by_code(db: Database) -> dict[str, Department]:
    async with db.session() as session:
        return {d.code: d for d in (await session.execute(select(Department))).scalars().all()}


def dep_id(department: Department) -> str:
    return encode_id("Department", department.id)  # type: ignore[arg-type]


async def count(db: Database, model: type) -> int:
    async with db.session() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def events(db: Database, operation: str) -> list[Event]:
    async with db.session() as session:
        rows = await session.execute(select(Event).where(Event.operation == operation).order_by(Event.id))  # type: ignore[arg-type]
        return list(rows.scalars().all())


async def test_staff_see_the_flat_department_list_with_parent_ids(client: GraphQLClient, db: Database) -> None:
    for username in ["admin", "deptadmin", "chief", "physician", "physician2"]:
        await _check_department_list(client, db, username)


async def _check_department_list(client: GraphQLClient, db: Database, username: str) -> None:
    stored = await departments_by_code(db)
    data = await client.data(DEPARTMENTS, as_=username)
    by_code = {d["code"]: d for d in data["departments"]}
    assert set(by_code) == {"HOSP", "CRS", "CRS-ANO", "GI"}
    assert by_code["HOSP"]["parentId"] is None
    assert by_code["CRS"]["parentId"] == by_code["HOSP"]["id"] == dep_id(stored["HOSP"])
    assert by_code["CRS-ANO"]["parentId"] == by_code["CRS"]["id"]
    assert by_code["GI"]["parentId"] == by_code["HOSP"]["id"]
    assert by_code["CRS"]["name"] == "结直肠肛门外科 Colorectal Surgery"
    positions = (await client.data(POSITIONS, as_=username))["positions"]
    assert "住院医师 Resident" in {p["name"] for p in positions}


async def test_anonymous_and_patient_have_no_department_list(client: GraphQLClient) -> None:
    for username in [None, "patient"]:
        for query in (DEPARTMENTS, POSITIONS):
            result = await client.run(query, as_=username)
            assert error_codes(result) == ["GRAPHQL_VALIDATION_FAILED"], username


async def test_admin_creates_and_updates_departments(client: GraphQLClient, db: Database) -> None:
    stored = await departments_by_code(db)
    data = await client.data(
        CREATE_DEPT,
        {
            "input": {
                "name": "盆底中心 Pelvic Floor",
                "code": "CRS-PF",
                "parentId": dep_id(stored["CRS"]),
                "sortOrder": 3,
            }
        },
        as_="admin",
    )
    created = data["createDepartment"]
    assert created["parentId"] == dep_id(stored["CRS"]) and created["sortOrder"] == 3
    stored = await departments_by_code(db)
    row = stored["CRS-PF"]
    assert (row.name, row.parent_id, row.sort_order) == ("盆底中心 Pelvic Floor", stored["CRS"].id, 3)
    assert created["id"] == dep_id(row)
    # It shows in everyone's list at once.
    listed = {d["code"]: d for d in (await client.data(DEPARTMENTS, as_="physician"))["departments"]}
    assert listed["CRS-PF"]["parentId"] == dep_id(stored["CRS"])
    # Move it under GI, rename it; leaving parentId out keeps the parent.
    data = await client.data(
        UPDATE_DEPT, {"id": created["id"], "input": {"parentId": dep_id(stored["GI"]), "name": "盆底"}}, as_="admin"
    )
    assert data["updateDepartment"]["parentId"] == dep_id(stored["GI"])
    data = await client.data(UPDATE_DEPT, {"id": created["id"], "input": {"sortOrder": 9}}, as_="admin")
    assert data["updateDepartment"]["parentId"] == dep_id(stored["GI"])
    assert data["updateDepartment"]["name"] == "盆底"
    # Made a root.
    data = await client.data(UPDATE_DEPT, {"id": created["id"], "input": {"parentId": None}}, as_="admin")
    assert data["updateDepartment"]["parentId"] is None
    row = (await departments_by_code(db))["CRS-PF"]
    assert (row.name, row.parent_id, row.sort_order) == ("盆底", None, 9)
    assert [e.outcome for e in await events(db, "createDepartment")] == ["success"]
    assert [e.outcome for e in await events(db, "updateDepartment")] == ["success"] * 3
    assert {e.entity_id for e in await events(db, "updateDepartment")} == {str(row.id)}


async def test_update_department_refuses_cycles(client: GraphQLClient, db: Database) -> None:
    stored = await departments_by_code(db)
    for moved, new_parent in [("HOSP", "CRS-ANO"), ("HOSP", "CRS"), ("CRS", "CRS-ANO"), ("CRS", "CRS")]:
        result = await client.run(
            UPDATE_DEPT, {"id": dep_id(stored[moved]), "input": {"parentId": dep_id(stored[new_parent])}}, as_="admin"
        )
        assert error_codes(result) == ["BAD_USER_INPUT"], (moved, new_parent)
        assert result["errors"][0]["extensions"]["field"] == "parentId"
    after = await departments_by_code(db)
    assert {c: d.parent_id for c, d in after.items()} == {c: d.parent_id for c, d in stored.items()}
    # An unknown parent.
    result = await client.run(
        UPDATE_DEPT, {"id": dep_id(stored["GI"]), "input": {"parentId": encode_id("Department", 9999)}}, as_="admin"
    )
    assert error_codes(result) == ["BAD_USER_INPUT"]
    result = await client.run(UPDATE_DEPT, {"id": encode_id("Department", 9999), "input": {"name": "x"}}, as_="admin")
    assert error_codes(result) == ["NOT_FOUND"]
    assert [e.outcome for e in await events(db, "updateDepartment")] == ["bad_user_input"] * 5 + ["not_found"]


async def test_duplicate_department_code_is_refused_and_nothing_stored(client: GraphQLClient, db: Database) -> None:
    stored = await departments_by_code(db)
    before = await count(db, Department)
    result = await client.run(CREATE_DEPT, {"input": {"name": "Another", "code": "GI"}}, as_="admin")
    assert error_codes(result) in (["CONFLICT"], ["BAD_USER_INPUT"])
    assert result["data"] is None
    assert await count(db, Department) == before
    result = await client.run(UPDATE_DEPT, {"id": dep_id(stored["CRS-ANO"]), "input": {"code": "GI"}}, as_="admin")
    assert error_codes(result) in (["CONFLICT"], ["BAD_USER_INPUT"])
    after = await departments_by_code(db)
    assert after["CRS-ANO"].code == "CRS-ANO" and after["GI"].name == stored["GI"].name
    # The driver's message (which can hold values) never reaches the client.
    assert "UNIQUE" not in str(result) and "Duplicate" not in str(result)
    for bad in [{"name": "x", "code": "has space"}, {"name": " ", "code": "OK1"}, {"name": "x", "code": ""}]:
        assert error_codes(await client.run(CREATE_DEPT, {"input": bad}, as_="admin")) == ["BAD_USER_INPUT"]
    result = await client.run(
        CREATE_DEPT, {"input": {"name": "x", "code": "NEW1", "parentId": encode_id("Department", 9999)}}, as_="admin"
    )
    assert error_codes(result) == ["BAD_USER_INPUT"]
    assert await count(db, Department) == before
    assert (await events(db, "createDepartment"))[0].outcome == "conflict"


async def test_admin_creates_and_updates_positions(client: GraphQLClient, db: Database) -> None:
    before = await count(db, Position)
    data = await client.data(CREATE_POS, {"n": "专科护士 Specialist Nurse", "d": "造口护理"}, as_="admin")
    created = data["createPosition"]
    assert created["name"] == "专科护士 Specialist Nurse"
    data = await client.data(UPDATE_POS, {"id": created["id"], "d": "造口与伤口护理"}, as_="admin")
    assert data["updatePosition"] == {**created, "description": "造口与伤口护理"}
    async with db.session() as session:
        row = (await session.execute(select(Position).where(Position.name == "专科护士 Specialist Nurse"))).scalar_one()
    assert row.description == "造口与伤口护理"
    result = await client.run(CREATE_POS, {"n": "护士 Nurse"}, as_="admin")
    assert error_codes(result) in (["CONFLICT"], ["BAD_USER_INPUT"])
    assert await count(db, Position) == before + 1
    result = await client.run(UPDATE_POS, {"id": encode_id("Position", 9999), "n": "x"}, as_="admin")
    assert error_codes(result) == ["NOT_FOUND"]
    assert [e.outcome for e in await events(db, "createPosition")] == ["success", "conflict"]


async def test_only_the_admin_changes_the_organisation(client: GraphQLClient, db: Database) -> None:
    stored = await departments_by_code(db)
    for username in ["deptadmin", "chief", "physician", "patient"]:
        for query, variables in [
            (CREATE_DEPT, {"input": {"name": "x", "code": "X1"}}),
            (UPDATE_DEPT, {"id": dep_id(stored["CRS"]), "input": {"name": "x"}}),
            (CREATE_POS, {"n": "x"}),
            (UPDATE_POS, {"id": encode_id("Position", 1), "n": "x"}),
        ]:
            result = await client.run(query, variables, as_=username)
            assert set(error_codes(result)) == {"GRAPHQL_VALIDATION_FAILED"}, (username, query)
            assert "data" not in result
    assert (await departments_by_code(db))["CRS"].name == stored["CRS"].name
    assert "X1" not in await departments_by_code(db)

"""Departments and positions through their life: moved without cycles, unique names among siblings, disabled (no new
users or patients, out of pickers, what they hold stays in reach), deleted only when nothing refers to them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from core.db import Database
from core.ids import encode_id
from models.organisation import Department, Position
from models.user import User
from resolvers.data.references import referring_columns
from tests.conftest import GraphQLClient, error_codes
from tests.test_appointment_import import GOOD, imported, plan_csv, schedule_count
from tests.test_organisation import CREATE_DEPT, CREATE_POS, UPDATE_DEPT, count, dep_id, departments_by_code, events

PICKER = "{ departments { id code disabled } }"
TREE = "{ departments(includeDisabled: true) { id code disabled parentId } }"
DELETE_DEPT = "mutation ($id: ID!) { deleteDepartment(id: $id) { id code } }"
DELETE_POS = "mutation ($id: ID!) { deletePosition(id: $id) { id name } }"
CREATE_USER = "mutation ($input: CreateUserInput!) { createUser(input: $input) { id department { code } } }"
REGISTER = 'mutation ($d: ID) { registerPatient(input: {name: "新患者", departmentId: $d}) { id } }'
PATIENTS = "{ patients { totalCount } }"


def _field(result: dict[str, Any]) -> str | None:
    field: str | None = result["errors"][0].get("extensions", {}).get("field")
    return field


def _new_user(department: str, username: str = "newdoc") -> dict[str, Any]:
    return {
        "input": {
            "username": username,
            "displayName": "新医生",
            "password": "Another-Pass#2026",
            "departmentId": department,
            "roleKeys": ["physician"],
        }
    }


def test_references_come_from_the_foreign_keys() -> None:
    to_department = {(table.name, column.name) for table, column in referring_columns("department")}
    assert {("department", "parent_id"), ("app_user", "department_id"), ("patient", "department_id")} <= to_department
    assert ("learning_task", "department_id") in to_department
    assert {(t.name, c.name) for t, c in referring_columns("position")} == {("app_user", "position_id")}


async def test_names_are_unique_among_siblings(client: GraphQLClient, db: Database) -> None:
    stored = await departments_by_code(db)
    hosp, crs = dep_id(stored["HOSP"]), dep_id(stored["CRS"])
    taken = {"input": {"name": " 消化内科 GASTROENTEROLOGY ", "code": "GI2", "parentId": hosp}}
    result = await client.run(CREATE_DEPT, taken, as_="admin")
    assert error_codes(result) == ["CONFLICT"] and _field(result) == "name"
    # the same name below another parent is another department
    elsewhere = {"input": {"name": "消化内科 Gastroenterology", "code": "CRS-GI", "parentId": crs}}
    moved = (await client.data(CREATE_DEPT, elsewhere, as_="admin"))["createDepartment"]
    # ...which cannot move next to its namesake, nor be renamed onto a sibling's name
    result = await client.run(UPDATE_DEPT, {"id": moved["id"], "input": {"parentId": hosp}}, as_="admin")
    assert error_codes(result) == ["CONFLICT"] and _field(result) == "name"
    result = await client.run(
        UPDATE_DEPT, {"id": dep_id(stored["CRS-ANO"]), "input": {"name": "消化内科 gastroenterology"}}, as_="admin"
    )
    assert error_codes(result) == ["CONFLICT"]
    after = await departments_by_code(db)
    assert after["CRS-GI"].parent_id == stored["CRS"].id and after["CRS-ANO"].name == stored["CRS-ANO"].name
    assert "GI2" not in after


async def test_racing_writers_cannot_both_take_a_sibling_name(
    client: GraphQLClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two writers that both passed the resolver's check (their transactions overlapped): the unique sibling key
    refuses the second with the check's own answer, and nothing of it is stored. Then the real thing: many
    concurrent creates of one name under one parent (root and below), exactly one wins."""
    import resolvers.organisation as organisation

    async def passed(*_args: Any, **_kwargs: Any) -> None:
        return None

    stored = await departments_by_code(db)
    hosp = dep_id(stored["HOSP"])
    monkeypatch.setattr(organisation, "_unique_among_siblings", passed)
    taken = {"input": {"name": " 消化内科 gastroenterology", "code": "GI2", "parentId": hosp}}
    result = await client.run(CREATE_DEPT, taken, as_="admin")
    assert error_codes(result) == ["CONFLICT"] and _field(result) == "name"
    assert "same parent" in result["errors"][0]["message"]
    renamed = {"id": dep_id(stored["CRS-ANO"]), "input": {"name": stored["CRS"].name.upper()}}  # not a sibling
    assert (await client.data(UPDATE_DEPT, renamed, as_="admin"))["updateDepartment"]["name"] == renamed["input"][
        "name"
    ]
    onto = {"id": dep_id(stored["CRS"]), "input": {"name": stored["GI"].name.casefold()}}  # onto a sibling's name
    assert error_codes(await client.run(UPDATE_DEPT, onto, as_="admin")) == ["CONFLICT"]
    monkeypatch.undo()

    after = await departments_by_code(db)
    assert "GI2" not in after and after["CRS"].name == stored["CRS"].name
    refused = [e for e in await events(db, "createDepartment") if e.outcome == "conflict"]
    assert refused, "the refusal is audited"

    for parent in (None, hosp):
        attempts = [
            {"input": {"name": "日间手术中心", "code": f"DAY{parent and 1}{n}", "parentId": parent}} for n in range(6)
        ]
        results = await asyncio.gather(*(client.run(CREATE_DEPT, a, as_="admin") for a in attempts))
        won = [r for r in results if not r.get("errors")]
        assert len(won) == 1, results
        assert all(error_codes(r) == ["CONFLICT"] for r in results if r.get("errors"))
    named = [d for d in (await departments_by_code(db)).values() if d.name == "日间手术中心"]
    assert sorted(d.parent_id or 0 for d in named) == sorted([0, stored["HOSP"].id])


async def test_a_department_never_moves_below_itself(client: GraphQLClient, db: Database) -> None:
    stored = await departments_by_code(db)
    for parent in ("CRS-ANO", "CRS"):
        result = await client.run(
            UPDATE_DEPT, {"id": dep_id(stored["CRS"]), "input": {"parentId": dep_id(stored[parent])}}, as_="admin"
        )
        assert error_codes(result) == ["BAD_USER_INPUT"] and _field(result) == "parentId", parent
    moved = await client.data(
        UPDATE_DEPT, {"id": dep_id(stored["CRS-ANO"]), "input": {"parentId": dep_id(stored["GI"])}}, as_="admin"
    )
    assert moved["updateDepartment"]["parentId"] == dep_id(stored["GI"])
    [*_, event] = await events(db, "updateDepartment")
    assert event.detail == {"parentId": {"from": stored["CRS"].id, "to": stored["GI"].id}}


async def test_a_disabled_department_takes_nobody_new_and_keeps_what_it_holds(
    client: GraphQLClient, db: Database
) -> None:
    gi = dep_id((await departments_by_code(db))["GI"])
    before = (await client.data(PATIENTS, as_="physician2"))["patients"]["totalCount"]
    assert before > 0
    data = await client.data(UPDATE_DEPT, {"id": gi, "input": {"disabled": True}}, as_="admin")
    assert data["updateDepartment"]["id"] == gi
    assert (await departments_by_code(db))["GI"].disabled is True
    assert "GI" not in {d["code"] for d in (await client.data(PICKER, as_="physician"))["departments"]}
    tree = {d["code"]: d for d in (await client.data(TREE, as_="admin"))["departments"]}
    assert tree["GI"]["disabled"] is True and tree["CRS"]["disabled"] is False
    users_before = await count(db, User)
    result = await client.run(CREATE_USER, _new_user(gi), as_="admin")
    assert error_codes(result) == ["BAD_USER_INPUT"] and _field(result) == "departmentId"
    result = await client.run(REGISTER, {"d": gi}, as_="admin")
    assert error_codes(result) == ["BAD_USER_INPUT"] and _field(result) == "departmentId"
    assert await count(db, User) == users_before
    # what it holds stays in reach, and its own staff still work
    assert (await client.data(PATIENTS, as_="physician2"))["patients"]["totalCount"] == before
    await client.data(UPDATE_DEPT, {"id": gi, "input": {"disabled": False}}, as_="admin")
    created = await client.data(CREATE_USER, _new_user(gi), as_="admin")
    assert created["createUser"]["department"]["code"] == "GI"
    assert [e.detail for e in await events(db, "updateDepartment")] == [{"disabled": True}, {"disabled": False}]


async def test_delete_only_what_nothing_refers_to(client: GraphQLClient, db: Database) -> None:
    stored = await departments_by_code(db)
    result = await client.run(DELETE_DEPT, {"id": dep_id(stored["GI"])}, as_="admin")
    assert error_codes(result) == ["CONFLICT"]
    assert "app_user" in result["errors"][0]["message"] and "patient" in result["errors"][0]["message"]
    result = await client.run(DELETE_DEPT, {"id": dep_id(stored["HOSP"])}, as_="admin")
    assert error_codes(result) == ["CONFLICT"] and "department" in result["errors"][0]["message"]
    fresh = (await client.data(CREATE_DEPT, {"input": {"name": "临时科室", "code": "TMP"}}, as_="admin"))[
        "createDepartment"
    ]
    assert (await client.data(DELETE_DEPT, {"id": fresh["id"]}, as_="admin"))["deleteDepartment"]["code"] == "TMP"
    assert "TMP" not in await departments_by_code(db)
    assert error_codes(await client.run(DELETE_DEPT, {"id": fresh["id"]}, as_="admin")) == ["NOT_FOUND"]
    assert [e.outcome for e in await events(db, "deleteDepartment")] == ["conflict", "conflict", "success", "not_found"]

    async with db.session() as session:
        held = (await session.execute(select(Position).order_by(Position.id))).scalars().first()
    assert held is not None
    result = await client.run(DELETE_POS, {"id": encode_id("Position", held.id)}, as_="admin")  # type: ignore[arg-type]
    assert error_codes(result) == ["CONFLICT"] and "app_user" in result["errors"][0]["message"]
    spare = (await client.data(CREATE_POS, {"n": "实习生 Intern", "d": ""}, as_="admin"))["createPosition"]
    assert (await client.data(DELETE_POS, {"id": spare["id"]}, as_="admin"))["deletePosition"][
        "name"
    ] == "实习生 Intern"
    async with db.session() as session:
        names = set((await session.execute(select(Position.name))).scalars().all())
        departments = (await session.execute(select(Department.code))).scalars().all()
    assert "实习生 Intern" not in names and held.name in names and "GI" in departments


async def test_only_admins_delete_or_disable(client: GraphQLClient, db: Database) -> None:
    stored = await departments_by_code(db)
    tmp = dep_id(stored["CRS-ANO"])
    for username in ["deptadmin", "chief", "physician", "patient"]:
        for query, variables in (
            (DELETE_DEPT, {"id": tmp}),
            (DELETE_POS, {"id": "UG9zaXRpb246MQ"}),
            (UPDATE_DEPT, {"id": tmp, "input": {"disabled": True}}),
        ):
            result = await client.run(query, variables, as_=username)
            assert set(error_codes(result)) == {"GRAPHQL_VALIDATION_FAILED"}, (username, query)
    assert (await departments_by_code(db))["CRS-ANO"].disabled is False


async def test_a_disabled_department_takes_no_new_schedules(client: GraphQLClient, db: Database) -> None:
    crs = dep_id((await departments_by_code(db))["CRS"])
    await client.data(UPDATE_DEPT, {"id": crs, "input": {"disabled": True}}, as_="admin")
    before = await schedule_count(db)
    report = await imported(client, plan_csv(GOOD))
    assert report["written"] is False and report["problemCount"] == 3
    assert {(p["column"], p["message"]) for p in report["problems"]} == {
        ("Department", "That department is disabled: it takes no new schedules")
    }
    assert await schedule_count(db) == before
    await client.data(UPDATE_DEPT, {"id": crs, "input": {"disabled": False}}, as_="admin")
    assert (await imported(client, plan_csv(GOOD)))["created"] == 3

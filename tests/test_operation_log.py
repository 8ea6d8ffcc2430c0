"""The operation log: every mutation with who, what (variables by an allow-list, secrets never), how it ended, how
long it ran, from where; filtered and paged; department admins see their departments' staff; a CSV export whose
cells cannot run as spreadsheet formulas."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from sqlalchemy import select

from core.db import Database
from core.ids import encode_id
from core.logredact import is_secret_name
from models.audit import Event
from models.organisation import Department
from models.user import User
from resolvers.audit.oplog import SAFE_ARGUMENTS, spreadsheet_safe
from schema.engine.oplog import NoteMutationCall
from schema.root import Mutation
from tests.conftest import GraphQLClient, error_codes

ENTRY = "id occurredAt actorId actorUsername operation variables result durationMs ip userAgent entityType entityId"
LOGS = f"""
query ($filter: OperationLogFilter, $first: Int, $after: String) {{
  operationLogs(filter: $filter, first: $first, after: $after) {{
    totalCount edges {{ cursor node {{ {ENTRY} }} }} pageInfo {{ hasNextPage endCursor }}
  }}
}}
"""
EXPORT = "query ($filter: OperationLogFilter) { operationLogCsv(filter: $filter) { filename contentType rows csv } }"
CREATE_DEPT = "mutation ($input: CreateDepartmentInput!) { createDepartment(input: $input) { id } }"
CREATE_USER = "mutation ($input: CreateUserInput!) { createUser(input: $input) { id } }"
REGISTER = 'mutation { registerPatient(input: {name: "张三", phone: "13911112222"}) { id } }'
SECRET = "Sekrit-Pass#2026"


async def user_key(db: Database, username: str) -> int:
    async with db.session() as session:
        return int((await session.execute(select(User.id).where(User.username == username))).scalar_one())


async def dept_key(db: Database, code: str) -> int:
    async with db.session() as session:
        return int((await session.execute(select(Department.id).where(Department.code == code))).scalar_one())


async def logs(client: GraphQLClient, username: str, **filters: Any) -> list[dict[str, Any]]:
    data = await client.data(LOGS, {"filter": filters, "first": 100}, as_=username)
    return [edge["node"] for edge in data["operationLogs"]["edges"]]


def test_every_mutation_notes_its_call_and_no_secret_is_allow_listed() -> None:
    for field in Mutation.__strawberry_definition__.fields:  # type: ignore[attr-defined]
        assert any(isinstance(e, NoteMutationCall) for e in field.extensions), field.name
    for operation, paths in SAFE_ARGUMENTS.items():
        for path in paths:
            assert not any(is_secret_name(part) for part in path.split(".")), (operation, path)
    assert spreadsheet_safe("=1+1") == "'=1+1" and spreadsheet_safe("@SUM(A1)") == "'@SUM(A1)"
    assert spreadsheet_safe("-2") == "'-2" and spreadsheet_safe("plain") == "plain"


async def test_a_mutation_is_logged_with_kept_and_redacted_variables(client: GraphQLClient, db: Database) -> None:
    crs = encode_id("Department", await dept_key(db, "CRS"))
    variables = {
        "input": {
            "username": "oplog.user",
            "displayName": "日志 Log",
            "password": SECRET,
            "phone": "13800001111",
            "departmentId": crs,
            "roleKeys": ["physician"],
        }
    }
    await client.data(CREATE_USER, variables, as_="admin")
    [entry] = await logs(client, "admin", operation="createUser")
    assert entry["result"] == "OK" and entry["actorUsername"] == "admin"
    assert entry["actorId"] == encode_id("User", await user_key(db, "admin"))
    assert entry["variables"] == {
        "input": {
            "username": "oplog.user",
            "displayName": "日志 Log",
            "password": "[redacted]",
            "phone": "[redacted]",
            "departmentId": crs,
            "roleKeys": ["physician"],
            "positionId": None,
        }
    }
    assert entry["durationMs"] >= 0 and entry["ip"] == "127.0.0.1" and entry["userAgent"].startswith("python-httpx")
    assert entry["entityType"] == "User" and entry["entityId"] == str(await user_key(db, "oplog.user"))
    async with db.session() as session:
        stored = (await session.execute(select(Event).where(Event.operation == "createUser"))).scalar_one()
    assert stored.is_mutation is True
    assert SECRET not in json.dumps(stored.variables) and "13800001111" not in json.dumps(stored.variables)
    # a patient's name and phone are never kept
    await client.data(REGISTER, as_="physician")
    [registered] = await logs(client, "admin", operation="registerPatient")
    assert registered["variables"]["input"]["name"] == "[redacted]"
    assert registered["variables"]["input"]["phone"] == "[redacted]"


async def test_refusals_are_logged_with_their_code(client: GraphQLClient, db: Database) -> None:
    bad = await client.run(CREATE_DEPT, {"input": {"name": "坏", "code": "bad code!"}}, as_="admin")
    assert error_codes(bad) == ["BAD_USER_INPUT"]
    twice = {"input": {"name": "日志科", "code": "OPLOG"}}
    await client.data(CREATE_DEPT, twice, as_="admin")
    assert error_codes(
        await client.run(CREATE_DEPT, {"input": {"name": "日志科二", "code": "OPLOG"}}, as_="admin")
    ) == ["CONFLICT"]
    entries = await logs(client, "admin", operation="createDepartment")
    assert [e["result"] for e in entries] == ["CONFLICT", "OK", "BAD_USER_INPUT"]  # newest first
    assert (
        entries[1]["variables"]["input"]["name"] == "日志科"
        and entries[1]["variables"]["input"]["code"] == "[redacted]"
    )
    assert all(e["durationMs"] is not None for e in entries)
    assert [e["result"] for e in await logs(client, "admin", operation="createDepartment", result="conflict")] == [
        "CONFLICT"
    ]
    assert len(await logs(client, "admin", operation="createDepartment", result="OK")) == 1


async def test_filters_and_pages(client: GraphQLClient, db: Database) -> None:
    for index in range(3):
        await client.data(CREATE_DEPT, {"input": {"name": f"分页{index}", "code": f"PAGE{index}"}}, as_="admin")
    await client.data(REGISTER, as_="physician")
    admin_id = encode_id("User", await user_key(db, "admin"))
    mine = await logs(client, "admin", actor=admin_id)
    assert {e["operation"] for e in mine} == {"createDepartment"} and len(mine) == 3
    first = await client.data(LOGS, {"filter": {"actor": admin_id}, "first": 2}, as_="admin")
    assert first["operationLogs"]["totalCount"] == 3 and first["operationLogs"]["pageInfo"]["hasNextPage"]
    rest = await client.data(
        LOGS, {"filter": {"actor": admin_id}, "first": 2, "after": first["operationLogs"]["pageInfo"]["endCursor"]},
        as_="admin",
    )  # fmt: skip
    names = [
        e["node"]["variables"]["input"]["name"]
        for e in first["operationLogs"]["edges"] + rest["operationLogs"]["edges"]
    ]
    assert names == ["分页2", "分页1", "分页0"]
    when = mine[1]["occurredAt"]
    assert [e["variables"]["input"]["name"] for e in await logs(client, "admin", actor=admin_id, to=when)] == ["分页0"]
    assert len(await logs(client, "admin", actor=admin_id, **{"from": when})) == 2
    assert await logs(client, "admin", operation="noSuchMutation") == []
    result = await client.run(LOGS, {"filter": {"result": "MAYBE"}}, as_="admin")
    assert error_codes(result) == ["BAD_USER_INPUT"] and result["errors"][0]["extensions"]["field"] == "result"


async def test_department_admins_see_their_departments_staff_only(client: GraphQLClient, db: Database) -> None:
    await client.data(REGISTER, as_="physician")  # Colorectal Surgery
    await client.data(REGISTER, as_="physician2")  # Gastroenterology
    await client.data(CREATE_DEPT, {"input": {"name": "管理", "code": "ADM1"}}, as_="admin")  # the hospital
    seen = {(e["actorUsername"], e["operation"]) for e in await logs(client, "deptadmin")}
    assert ("physician", "registerPatient") in seen
    assert not any(actor in ("physician2", "admin") for actor, _ in seen)
    everything = {(e["actorUsername"], e["operation"]) for e in await logs(client, "admin")}
    assert {
        ("physician", "registerPatient"),
        ("physician2", "registerPatient"),
        ("admin", "createDepartment"),
    } <= everything
    outside = encode_id("User", await user_key(db, "physician2"))
    assert error_codes(await client.run(LOGS, {"filter": {"actor": outside}}, as_="deptadmin")) == ["NOT_FOUND"]
    export = (await client.data(EXPORT, as_="deptadmin"))["operationLogCsv"]
    assert "physician2" not in export["csv"] and "physician" in export["csv"]
    for username in ["chief", "physician", "patient"]:
        assert set(error_codes(await client.run(LOGS, as_=username))) == {"GRAPHQL_VALIDATION_FAILED"}, username
        assert set(error_codes(await client.run(EXPORT, as_=username))) == {"GRAPHQL_VALIDATION_FAILED"}, username


async def test_the_csv_export_escapes_formulas(client: GraphQLClient, db: Database) -> None:
    token = await client.token("admin")
    response = await client.post(
        CREATE_DEPT,
        {"input": {"name": '=HYPERLINK("http://x")', "code": "FORMULA"}},
        token=token,
        headers={"User-Agent": "=cmd|' /C calc'!A0"},
    )
    assert "errors" not in response.json(), response.text
    export = (await client.data(EXPORT, {"filter": {"operation": "createDepartment"}}, as_="admin"))["operationLogCsv"]
    assert export["filename"].endswith(".csv") and export["contentType"].startswith("text/csv") and export["rows"] == 1
    rows = list(csv.reader(io.StringIO(export["csv"])))
    header, line = rows[0], rows[1]
    assert header == ["time", "actor", "operation", "result", "duration_ms", "ip", "user_agent", "entity", "variables"]
    cell = dict(zip(header, line, strict=True))
    assert cell["user_agent"] == "'=cmd|' /C calc'!A0"
    assert cell["actor"] == "admin" and cell["operation"] == "createDepartment" and cell["result"] == "OK"
    assert json.loads(cell["variables"])["input"]["name"] == '=HYPERLINK("http://x")'  # inside JSON, not a cell start

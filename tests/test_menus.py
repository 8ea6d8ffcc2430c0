"""Menus: a tree stored as data, edited by admins (no cycles, delete only a leaf); each user's myMenus follows the
same policy as their schema, so a grant or revoke changes both at once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from core.db import Database
from models.menu import Menu
from policies.capabilities import COORDINATES as CAPABILITIES
from tests.conftest import GraphQLClient, error_codes
from tests.test_roles_permissions import GRANT, REVOKE, events

FIELDS = "id key parentId kind titleZh titleEn path icon sortOrder visible needs"
MY_MENUS = f"{{ myMenus {{ {FIELDS} }} }}"
MENUS = f"{{ menus {{ {FIELDS} }} }}"
CREATE = f"mutation ($input: CreateMenuInput!) {{ createMenu(input: $input) {{ {FIELDS} }} }}"
UPDATE = f"mutation ($id: ID!, $input: UpdateMenuInput!) {{ updateMenu(id: $id, input: $input) {{ {FIELDS} }} }}"
MOVE = f"mutation ($id: ID!, $p: ID, $o: Int) {{ moveMenu(id: $id, parentId: $p, sortOrder: $o) {{ {FIELDS} }} }}"
DELETE = "mutation ($id: ID!) { deleteMenu(id: $id) { key } }"

MODULES = {
    "clinical",
    "appointments",
    "patients",
    "consultations",
    "education",
    "learning",
    "moderation",
    "integrity",
    "operations",
    "system",
}


def _field(result: dict[str, Any]) -> str | None:
    field: str | None = result["errors"][0].get("extensions", {}).get("field")
    return field


async def my_keys(client: GraphQLClient, username: str) -> list[str]:
    entries = (await client.data(MY_MENUS, as_=username))["myMenus"]
    seen: set[str] = set()
    for entry in entries:  # parents come before their entries
        assert entry["parentId"] is None or entry["parentId"] in seen, entry
        seen.add(entry["id"])
    return [entry["key"] for entry in entries]


async def by_key(client: GraphQLClient) -> dict[str, dict[str, Any]]:
    return {m["key"]: m for m in (await client.data(MENUS, as_="admin"))["menus"]}


async def test_the_demo_menu_covers_every_module_and_names_real_coordinates(client: GraphQLClient) -> None:
    menus = await by_key(client)
    assert {key for key, m in menus.items() if m["parentId"] is None} == MODULES
    system = menus["system"]["id"]
    assert {k for k, m in menus.items() if m["parentId"] == system} >= {
        "system.users",
        "system.departments",
        "system.positions",
        "system.roles",
        "system.dictionaries",
        "system.menus",
        "system.operation-log",
    }
    assert {"integrity.audit", "integrity.logins", "operations.jobs", "clinical.patients"} <= set(menus)
    known = client.services.coordinates | CAPABILITIES
    for menu in menus.values():
        assert set(menu["needs"]) <= known, menu
        assert menu["kind"] == "DIRECTORY" or menu["needs"], menu


async def test_each_role_gets_the_entries_its_schema_holds(client: GraphQLClient) -> None:
    admin = await my_keys(client, "admin")
    assert {"system", "system.menus", "system.roles", "integrity.audit", "operations.jobs"} <= set(admin)
    physician = await my_keys(client, "physician")
    assert {"clinical", "clinical.patients", "clinical.follow-ups", "appointments.list"} <= set(physician)
    assert "appointments.schedules.import" not in physician  # chief physicians manage schedules
    assert not {"system", "system.menus", "integrity.audit", "operations", "operations.jobs"} & set(physician)
    assert "clinical.patients.register" in physician  # a button whose mutation the physician may run
    dept_admin = await my_keys(client, "deptadmin")
    assert {"system", "system.users", "system.users.create", "system.operation-log"} <= set(dept_admin)
    assert not {"system.menus", "system.roles", "integrity.audit"} & set(dept_admin)
    patient = await my_keys(client, "patient")
    assert not {"system", "clinical", "integrity"} & set(patient)
    # a capability named by an entry counts: the chief manages consultations, the physician does not
    assert "consultations.review" in await my_keys(client, "chief")
    assert "consultations.review" not in physician


async def test_granting_the_audit_log_shows_its_entry_and_revoking_hides_it(client: GraphQLClient) -> None:
    assert "integrity.audit" not in await my_keys(client, "deptadmin")
    await client.data(GRANT, {"r": "dept_admin", "o": "AuditEvent.*", "a": "read"}, as_="admin")
    assert "integrity.audit" not in await my_keys(client, "deptadmin")  # the type alone is no page
    await client.data(GRANT, {"r": "dept_admin", "o": "Query.auditEvents", "a": "read"}, as_="admin")
    keys = await my_keys(client, "deptadmin")
    assert "integrity" in keys and "integrity.audit" in keys
    assert "integrity.logins" not in keys
    assert "integrity.audit" in await my_keys(client, "admin")
    await client.data(REVOKE, {"r": "dept_admin", "o": "Query.auditEvents", "a": "read"}, as_="admin")
    keys = await my_keys(client, "deptadmin")
    assert "integrity.audit" not in keys


async def test_admin_edits_the_tree(client: GraphQLClient, db: Database) -> None:
    menus = await by_key(client)
    system = menus["system"]["id"]
    created = await client.data(
        CREATE,
        {
            "input": {
                "key": "system.reports",
                "titleZh": "报表",
                "titleEn": "Reports",
                "parentId": system,
                "path": "/system/reports",
                "needs": ["Query.userStats", "capability:metrics.read"],
                "sortOrder": 5,
            }
        },
        as_="admin",
    )
    entry = created["createMenu"]
    assert entry["parentId"] == system and entry["kind"] == "PAGE" and entry["visible"] is True
    assert "system.reports" in await my_keys(client, "admin")
    button = (
        await client.data(
            CREATE, {"input": {"key": "system.reports.export", "titleZh": "导出", "titleEn": "Export",
                               "kind": "BUTTON", "parentId": entry["id"]}},
            as_="admin",
        )
    )["createMenu"]  # fmt: skip
    updated = await client.data(
        UPDATE, {"id": entry["id"], "input": {"titleEn": "Figures", "visible": False}}, as_="admin"
    )
    assert updated["updateMenu"]["titleEn"] == "Figures" and updated["updateMenu"]["visible"] is False
    assert "system.reports" not in await my_keys(client, "admin")  # hidden from every menu
    moved = await client.data(MOVE, {"id": entry["id"], "p": None, "o": 999}, as_="admin")
    assert moved["moveMenu"]["parentId"] is None and moved["moveMenu"]["sortOrder"] == 999
    async with db.session() as session:
        row = (await session.execute(select(Menu).where(Menu.key == "system.reports"))).scalar_one()
    assert (row.parent_id, row.title_en, row.visible, row.needs) == (
        None,
        "Figures",
        False,
        ["Query.userStats", "capability:metrics.read"],
    )
    result = await client.run(DELETE, {"id": entry["id"]}, as_="admin")
    assert error_codes(result) == ["CONFLICT"]
    assert (await client.data(DELETE, {"id": button["id"]}, as_="admin"))["deleteMenu"][
        "key"
    ] == "system.reports.export"
    await client.data(DELETE, {"id": entry["id"]}, as_="admin")
    assert "system.reports" not in await by_key(client)
    assert [e.outcome for e in await events(db, "deleteMenu")] == ["conflict", "success", "success"]
    assert [e.outcome for e in await events(db, "createMenu")] == ["success", "success"]


async def test_no_cycles_and_bad_input_names_the_field(client: GraphQLClient, db: Database) -> None:
    menus = await by_key(client)
    system, users, button = menus["system"]["id"], menus["system.users"]["id"], menus["system.users.create"]["id"]
    for variables, field in (
        ({"id": system, "p": users}, "parentId"),
        ({"id": system, "p": system}, "parentId"),
        ({"id": users, "p": button}, "parentId"),
    ):
        result = await client.run(MOVE, variables, as_="admin")
        assert error_codes(result) == ["BAD_USER_INPUT"] and _field(result) == field, variables
    base = {"key": "x.page", "titleZh": "页", "titleEn": "Page"}
    for change, field in (
        ({"key": "Bad Key"}, "key"),
        ({"titleZh": " "}, "titleZh"),
        ({"titleEn": "x" * 101}, "titleEn"),
        ({"titleZh": "页\u0000"}, "titleZh"),  # a control character
        ({"needs": ["Query.noSuchField"]}, "needs"),
        ({"needs": ["capability:fly"]}, "needs"),
        ({"path": "/" * 201}, "path"),
    ):
        result = await client.run(CREATE, {"input": {**base, **change}}, as_="admin")
        assert error_codes(result) == ["BAD_USER_INPUT"] and _field(result) == field, change
    result = await client.run(UPDATE, {"id": users, "input": {"kind": "BUTTON"}}, as_="admin")
    assert error_codes(result) == ["BAD_USER_INPUT"] and _field(result) == "kind"
    result = await client.run(CREATE, {"input": {**base, "key": "system"}}, as_="admin")
    assert error_codes(result) == ["CONFLICT"]
    after = await by_key(client)
    assert after["system"]["parentId"] is None and after["system.users"]["parentId"] == system
    assert "x.page" not in after


async def test_only_admins_edit_menus(client: GraphQLClient, db: Database) -> None:
    menus = await by_key(client)
    target = menus["clinical.icd"]["id"]
    for username in ["deptadmin", "chief", "physician", "patient"]:
        for query, variables in (
            (MENUS, None),
            (CREATE, {"input": {"key": "x.y", "titleZh": "x", "titleEn": "x"}}),
            (UPDATE, {"id": target, "input": {"titleEn": "x"}}),
            (MOVE, {"id": target, "p": None}),
            (DELETE, {"id": target}),
        ):
            result = await client.run(query, variables, as_=username)
            assert set(error_codes(result)) == {"GRAPHQL_VALIDATION_FAILED"}, (username, query)
    assert (await by_key(client))["clinical.icd"] == menus["clinical.icd"]

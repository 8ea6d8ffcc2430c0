"""A role's life cycle (rename, data scope, parents without cycles, delete when unused; built-ins stay), what a
role may do with the origin of each permission, and the catalogue of every grantable permission."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from core.db import Database
from models.policy import CasbinRule
from models.role import Role
from policies.capabilities import COORDINATES as CAPABILITIES
from policies.decision import is_structural
from tests.conftest import GraphQLClient, error_codes
from tests.test_roles_permissions import ASSIGN, CREATE_ROLE, GRANT, events, rules, user_id

UPDATE_ROLE = """
mutation ($k: String!, $input: UpdateRoleInput!) { updateRole(key: $k, input: $input) { key name description dataScope inherits builtin } }
"""
DELETE_ROLE = "mutation ($k: String!) { deleteRole(key: $k) { key name } }"
ROLE_PERMISSIONS = "query ($k: String!) { rolePermissions(roleKey: $k) { object action origin inherited } }"
CATALOG = "{ permissionCatalog { domain permissions { object actions description } } }"
SCOPE = "{ me { roles { key dataScope } } }"


def _field(result: dict[str, Any]) -> str | None:
    field: str | None = result["errors"][0].get("extensions", {}).get("field")
    return field


async def role_row(db: Database, key: str) -> Role | None:
    async with db.session() as session:
        return (await session.execute(select(Role).where(Role.key == key))).scalar_one_or_none()


async def _create(client: GraphQLClient, key: str, inherits: list[str], scope: str = "SELF") -> None:
    await client.data(CREATE_ROLE, {"k": key, "n": key, "s": scope, "i": inherits}, as_="admin")


async def test_admin_renames_rescopes_and_reparents_a_custom_role(client: GraphQLClient, db: Database) -> None:
    await _create(client, "nurse", ["physician"])
    data = await client.data(
        UPDATE_ROLE,
        {"k": "nurse", "input": {"name": "护士 Nurse", "description": "Ward nurse", "dataScope": "DEPARTMENT"}},
        as_="admin",
    )
    assert data["updateRole"] == {
        "key": "nurse",
        "name": "护士 Nurse",
        "description": "Ward nurse",
        "dataScope": "DEPARTMENT",
        "inherits": ["authenticated", "physician"],
        "builtin": False,
    }
    row = await role_row(db, "nurse")
    assert row is not None and (row.name, row.data_scope, row.description) == ("护士 Nurse", "DEPARTMENT", "Ward nurse")
    data = await client.data(UPDATE_ROLE, {"k": "nurse", "input": {"inherits": ["chief_physician"]}}, as_="admin")
    assert set(data["updateRole"]["inherits"]) == {"authenticated", "chief_physician"}
    assert {line for line in await rules(db, "nurse") if line[0] == "g"} == {
        ("g", "authenticated", ""),
        ("g", "chief_physician", ""),
    }
    audited = await events(db, "updateRole")
    assert [e.outcome for e in audited] == ["success", "success"]
    assert audited[0].detail["dataScope"] == {"from": "SELF", "to": "DEPARTMENT"}  # type: ignore[index]
    assert audited[1].detail["inherits"] == {"from": ["physician"], "to": ["chief_physician"]}  # type: ignore[index]


async def test_a_holders_data_scope_follows_the_role_at_once(client: GraphQLClient, db: Database) -> None:
    await _create(client, "gi_reader", ["physician"])
    await client.data(ASSIGN, {"id": await user_id(db, "physician2"), "keys": ["gi_reader"]}, as_="admin")
    token = await client.token("physician2")
    before = (await client.data(SCOPE, token=token))["me"]["roles"]
    assert before == [{"key": "gi_reader", "dataScope": "SELF"}]
    await client.data(UPDATE_ROLE, {"k": "gi_reader", "input": {"dataScope": "DEPARTMENT"}}, as_="admin")
    after = (await client.data(SCOPE, token=token))["me"]["roles"]
    assert after == [{"key": "gi_reader", "dataScope": "DEPARTMENT"}]


async def test_no_cycles_and_no_unknown_parents(client: GraphQLClient, db: Database) -> None:
    await _create(client, "team_a", ["physician"])
    await _create(client, "team_b", ["team_a"])
    for inherits in (["team_b"], ["team_a"], ["nobody_here"]):
        result = await client.run(UPDATE_ROLE, {"k": "team_a", "input": {"inherits": inherits}}, as_="admin")
        assert error_codes(result) == ["BAD_USER_INPUT"] and _field(result) == "inherits", inherits
    assert {line for line in await rules(db, "team_a") if line[0] == "g"} == {
        ("g", "authenticated", ""),
        ("g", "physician", ""),
    }
    result = await client.run(UPDATE_ROLE, {"k": "team_a", "input": {"name": " "}}, as_="admin")
    assert error_codes(result) == ["BAD_USER_INPUT"] and _field(result) == "name"
    result = await client.run(UPDATE_ROLE, {"k": "no_such_role", "input": {"name": "x"}}, as_="admin")
    assert error_codes(result) == ["NOT_FOUND"]
    refused = [e.outcome for e in await events(db, "updateRole")]
    assert refused.count("bad_user_input") == 4 and "not_found" in refused


async def test_built_in_roles_keep_their_place_and_are_never_deleted(client: GraphQLClient, db: Database) -> None:
    result = await client.run(UPDATE_ROLE, {"k": "physician", "input": {"inherits": ["patient"]}}, as_="admin")
    assert error_codes(result) == ["FORBIDDEN"]
    assert ("g", "authenticated", "") in await rules(db, "physician")
    renamed = await client.data(UPDATE_ROLE, {"k": "physician", "input": {"name": "医师"}}, as_="admin")
    assert renamed["updateRole"]["name"] == "医师" and renamed["updateRole"]["builtin"] is True
    for key in ("physician", "admin", "patient"):
        assert error_codes(await client.run(DELETE_ROLE, {"k": key}, as_="admin")) == ["FORBIDDEN"], key
        assert await role_row(db, key) is not None


async def test_delete_a_role_only_when_nobody_holds_or_inherits_it(client: GraphQLClient, db: Database) -> None:
    await _create(client, "temp_lead", ["physician"])
    await _create(client, "temp_member", ["temp_lead"])
    await client.data(GRANT, {"r": "temp_lead", "o": "Query.users", "a": "read"}, as_="admin")
    await client.data(ASSIGN, {"id": await user_id(db, "physician2"), "keys": ["physician", "temp_lead"]}, as_="admin")
    result = await client.run(DELETE_ROLE, {"k": "temp_lead"}, as_="admin")
    assert error_codes(result) == ["CONFLICT"] and "hold" in result["errors"][0]["message"]
    await client.data(ASSIGN, {"id": await user_id(db, "physician2"), "keys": ["physician"]}, as_="admin")
    result = await client.run(DELETE_ROLE, {"k": "temp_lead"}, as_="admin")
    assert error_codes(result) == ["CONFLICT"] and "temp_member" in result["errors"][0]["message"]
    assert (await client.data(DELETE_ROLE, {"k": "temp_member"}, as_="admin"))["deleteRole"]["key"] == "temp_member"
    assert (await client.data(DELETE_ROLE, {"k": "temp_lead"}, as_="admin"))["deleteRole"]["key"] == "temp_lead"
    assert await role_row(db, "temp_lead") is None and await role_row(db, "temp_member") is None
    async with db.session() as session:
        left = (await session.execute(select(CasbinRule).where(CasbinRule.v0.in_(["temp_lead", "temp_member"])))).all()  # type: ignore[attr-defined]
    assert left == []
    roles = {r["key"] for r in (await client.data("{ roles { key } }", as_="admin"))["roles"]}
    assert "temp_lead" not in roles
    outcomes = [e.outcome for e in await events(db, "deleteRole")]
    assert outcomes == ["conflict", "conflict", "success", "success"]
    assert error_codes(await client.run(DELETE_ROLE, {"k": "temp_lead"}, as_="admin")) == ["NOT_FOUND"]


async def test_role_permissions_show_own_and_inherited_with_their_origin(client: GraphQLClient) -> None:
    await _create(client, "auditor", ["physician"])
    await client.data(GRANT, {"r": "auditor", "o": "Query.auditEvents", "a": "read"}, as_="admin")
    held = (await client.data(ROLE_PERMISSIONS, {"k": "auditor"}, as_="admin"))["rolePermissions"]
    by_object = {(p["object"], p["action"]): p for p in held}
    assert by_object[("Query.auditEvents", "read")] == {
        "object": "Query.auditEvents",
        "action": "read",
        "origin": "auditor",
        "inherited": False,
    }
    assert by_object[("Query.patients", "read")]["origin"] == "physician"
    assert by_object[("Query.patients", "read")]["inherited"] is True
    assert by_object[("Query.me", "read")]["origin"] == "authenticated"
    assert by_object[("Mutation.login", "execute")]["origin"] == "anonymous"
    assert held[0]["origin"] == "auditor"  # own lines first
    assert len(by_object) == len(held)  # each permission once
    # a capability that does not pass down the hierarchy is not inherited
    assert ("capability:learning.assignee", "execute") not in by_object
    assert ("capability:records.voided", "execute") in by_object
    physician = (await client.data(ROLE_PERMISSIONS, {"k": "physician"}, as_="admin"))["rolePermissions"]
    assert {
        "object": "capability:learning.assignee",
        "action": "execute",
        "origin": "physician",
        "inherited": False,
    } in physician
    result = await client.run(ROLE_PERMISSIONS, {"k": "nobody"}, as_="admin")
    assert error_codes(result) == ["NOT_FOUND"]


async def test_the_catalogue_holds_every_grantable_permission_by_domain(client: GraphQLClient) -> None:
    domains = (await client.data(CATALOG, as_="admin"))["permissionCatalog"]
    names = [d["domain"] for d in domains]
    assert names == sorted(names)
    assert {"clinical", "organisation", "role", "audit", "operations", "platform", "dictionary"} <= set(names)
    entries = {p["object"]: (d["domain"], p) for d in domains for p in d["permissions"]}
    grantable = {c for c in client.services.coordinates if not is_structural(c.split(".")[0])} | CAPABILITIES
    assert set(entries) == grantable
    assert entries["Query.auditEvents"][0] == "audit"
    assert entries["Mutation.createDepartment"][0] == "organisation"
    assert entries["Mutation.createDepartment"][1]["actions"] == ["execute"]
    assert entries["Patient.phone"][1]["actions"] == ["read", "read_masked"]
    assert entries["Patient.name"][1]["actions"] == ["read"]
    assert entries["capability:consultation.manage"][0] == "consultation"
    assert "conversation" in entries["capability:consultation.manage"][1]["description"]
    assert all(p["description"].strip() for _domain, p in entries.values())


async def test_only_admins_manage_roles_and_read_the_catalogue(client: GraphQLClient, db: Database) -> None:
    await _create(client, "spare", ["physician"])
    for username in ["deptadmin", "chief", "physician", "patient"]:
        for query, variables in (
            (UPDATE_ROLE, {"k": "spare", "input": {"name": "x"}}),
            (DELETE_ROLE, {"k": "spare"}),
            (ROLE_PERMISSIONS, {"k": "spare"}),
            (CATALOG, None),
        ):
            result = await client.run(query, variables, as_=username)
            assert set(error_codes(result)) == {"GRAPHQL_VALIDATION_FAILED"}, (username, query)
    row = await role_row(db, "spare")
    assert row is not None and row.name == "spare"

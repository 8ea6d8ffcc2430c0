"""Roles and permissions through the admin API: a grant or revoke reshapes the role's schema on its next
request, with no restart; the casbin_rule table holds the change."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select

from core.db import Database
from core.ids import encode_id
from models.audit import Event
from models.policy import CasbinRule
from models.role import Role
from models.user import User
from policies.bootstrap import ensure_builtin
from policies.capabilities import COORDINATES as CAPABILITIES
from server import StartupRefused, create_app
from tests.conftest import GraphQLClient, error_codes, make_settings, reset_database

ROLES = """
{ roles { id key name description builtin dataScope inherits permissions { object action }
          effectivePermissions { object action } } }
"""
GRANT = """
mutation ($r: String!, $o: String!, $a: String!) { grantPermission(roleKey: $r, object: $o, action: $a) { key permissions { object action } } }
"""
REVOKE = """
mutation ($r: String!, $o: String!, $a: String!) { revokePermission(roleKey: $r, object: $o, action: $a) { key permissions { object action } } }
"""
CREATE_ROLE = """
mutation ($k: String!, $n: String!, $s: DataScope!, $i: [String!], $d: String) {
  createRole(key: $k, name: $n, dataScope: $s, inherits: $i, description: $d) { id key name dataScope inherits builtin description }
}
"""
ASSIGN = "mutation ($id: ID!, $keys: [String!]!) { assignRoles(userId: $id, roleKeys: $keys) { id roles { key } } }"
FIELDS = "{ __schema { queryType { fields { name } } mutationType { fields { name } } } }"


async def schema_fields(client: GraphQLClient, username: str) -> tuple[set[str], set[str]]:
    schema = (await client.data(FIELDS, as_=username))["__schema"]
    mutation = schema["mutationType"]
    return {f["name"] for f in schema["queryType"]["fields"]}, {
        f["name"] for f in mutation["fields"]
    } if mutation else set()


async def rules(db: Database, role: str) -> set[tuple[str, str, str]]:
    async with db.session() as session:
        rows = (await session.execute(select(CasbinRule).where(CasbinRule.v0 == role))).scalars().all()
    return {(row.ptype, row.v1, row.v2) for row in rows}


async def events(db: Database, operation: str) -> list[Event]:
    async with db.session() as session:
        rows = await session.execute(select(Event).where(Event.operation == operation).order_by(Event.id))  # type: ignore[arg-type]
        return list(rows.scalars().all())


async def user_id(db: Database, username: str) -> str:
    async with db.session() as session:
        pk = (await session.execute(select(User.id).where(User.username == username))).scalar_one()
    return encode_id("User", pk)


async def test_admin_sees_roles_with_permissions_and_inheritance(client: GraphQLClient) -> None:
    roles = {r["key"]: r for r in (await client.data(ROLES, as_="admin"))["roles"]}
    assert set(roles) == {"admin", "dept_admin", "chief_physician", "physician", "patient"}
    admin = roles["admin"]
    assert admin["builtin"] is True and admin["dataScope"] == "ALL"
    assert admin["inherits"] == ["dept_admin"]
    assert {"object": "Mutation.grantPermission", "action": "execute"} in admin["permissions"]
    assert {"object": "Query.users", "action": "read"} not in admin["permissions"]  # inherited, not direct
    effective = admin["effectivePermissions"]
    assert {"object": "Query.users", "action": "read"} in effective
    assert {"object": "Query.departments", "action": "read"} in effective
    assert {"object": "Query.serverInfo", "action": "read"} in effective
    assert roles["physician"]["dataScope"] == "SELF" and roles["physician"]["inherits"] == ["authenticated"]
    assert roles["dept_admin"]["dataScope"] == "DEPARTMENT_AND_BELOW"
    assert roles["chief_physician"]["inherits"] == ["physician"]
    assert {"object": "Query.users", "action": "read"} not in roles["physician"]["effectivePermissions"]
    objects = (await client.data("{ permissionObjects }", as_="admin"))["permissionObjects"]
    assert {"Query.users", "Mutation.assignRoles", "User.*", "User.phone"} <= set(objects)
    assert "CreateUserInput.username" not in objects  # inputs are not coordinates a policy can name


async def test_dept_admin_lists_roles_without_their_permissions(client: GraphQLClient) -> None:
    roles = (await client.data("{ roles { key description builtin } }", as_="deptadmin"))["roles"]
    assert {r["key"] for r in roles} >= {"admin", "physician"}
    result = await client.run("{ roles { key permissions { object } } }", as_="deptadmin")
    assert set(error_codes(result)) == {"GRAPHQL_VALIDATION_FAILED"}


async def test_grant_and_revoke_reshape_the_physicians_schema_without_restart(
    client: GraphQLClient, db: Database
) -> None:
    queries, _ = await schema_fields(client, "physician")
    assert "users" not in queries
    assert error_codes(await client.run("{ users { totalCount } }", as_="physician")) == ["GRAPHQL_VALIDATION_FAILED"]
    data = await client.data(GRANT, {"r": "physician", "o": "Query.users", "a": "read"}, as_="admin")
    assert {"object": "Query.users", "action": "read"} in data["grantPermission"]["permissions"]
    assert ("p", "Query.users", "read") in await rules(db, "physician")
    queries, _ = await schema_fields(client, "physician")  # the same token, the next request
    assert "users" in queries
    # The physician's data scope (SELF) reaches no department: the list is there, with only themselves in it
    # (users are reached by department, and oneself: policies/tables.py).
    data = await client.data("{ users { totalCount edges { node { username } } } }", as_="physician")
    assert data["users"]["totalCount"] == 1
    assert [e["node"]["username"] for e in data["users"]["edges"]] == ["physician"]
    # Roles inheriting physician gain it too.
    assert "users" in (await schema_fields(client, "chief"))[0]
    # Granting twice changes nothing.
    await client.data(GRANT, {"r": "physician", "o": "Query.users", "a": "read"}, as_="admin")
    async with db.session() as session:
        same = (
            await session.execute(
                select(CasbinRule).where(CasbinRule.v0 == "physician", CasbinRule.v1 == "Query.users")
            )
        ).all()
    assert len(same) == 1
    data = await client.data(REVOKE, {"r": "physician", "o": "Query.users", "a": "read"}, as_="admin")
    assert {"object": "Query.users", "action": "read"} not in data["revokePermission"]["permissions"]
    assert ("p", "Query.users", "read") not in await rules(db, "physician")
    assert "users" not in (await schema_fields(client, "physician"))[0]
    assert "users" not in (await schema_fields(client, "chief"))[0]
    assert "users" in (await schema_fields(client, "deptadmin"))[0]  # its own line stays
    grants = await events(db, "grantPermission")
    assert [(e.outcome, e.entity_type, e.detail) for e in grants] == [
        ("success", "Role", {"object": "Query.users", "action": "read", "changed": True}),
        ("success", "Role", {"object": "Query.users", "action": "read", "changed": False}),
    ]
    [revoke] = await events(db, "revokePermission")
    assert revoke.outcome == "success" and revoke.detail == {"object": "Query.users", "action": "read", "changed": True}


async def test_grant_a_mutation_and_a_wildcard(client: GraphQLClient, db: Database) -> None:
    _, mutations = await schema_fields(client, "physician")
    assert "createPosition" not in mutations
    await client.data(GRANT, {"r": "physician", "o": "Mutation.createPosition", "a": "execute"}, as_="admin")
    _, mutations = await schema_fields(client, "physician")
    assert "createPosition" in mutations
    data = await client.data('mutation { createPosition(name: "规培医师") { name } }', as_="physician")
    assert data["createPosition"]["name"] == "规培医师"
    # The patient has no Query.roles; a wildcard on Role alone adds no entry point.
    await client.data(GRANT, {"r": "patient", "o": "Role.*", "a": "read"}, as_="admin")
    assert "roles" not in (await schema_fields(client, "patient"))[0]
    await client.data(GRANT, {"r": "patient", "o": "Query.roles", "a": "read"}, as_="admin")
    data = await client.data("{ roles { key description builtin } }", as_="patient")
    assert data["roles"]  # Role.* made the Role fields visible...
    # ...but not the ones returning Permission, whose own fields the patient may not read.
    result = await client.run("{ roles { permissions { object } } }", as_="patient")
    assert set(error_codes(result)) == {"GRAPHQL_VALIDATION_FAILED"}


async def test_masked_grant_keeps_the_field(client: GraphQLClient) -> None:
    await client.data(GRANT, {"r": "physician", "o": "Patient.idNumber", "a": "read_masked"}, as_="admin")
    data = await client.data('{ __type(name: "Patient") { fields { name } } }', as_="physician")
    assert "idNumber" in {field["name"] for field in data["__type"]["fields"]}


async def test_read_masked_only_where_a_mask_exists(client: GraphQLClient, db: Database) -> None:
    """A field without a mask would show in clear under `read_masked`: such a grant is refused."""
    before = await rules(db, "physician")
    for obj in ("Query.users", "Patient.address", "Patient.name", "Visit.notes"):
        result = await client.run(GRANT, {"r": "physician", "o": obj, "a": "read_masked"}, as_="admin")
        assert error_codes(result) == ["BAD_USER_INPUT"], obj
        assert "no mask" in result["errors"][0]["message"]
    assert await rules(db, "physician") == before


async def test_bad_grants_are_refused(client: GraphQLClient, db: Database) -> None:
    before = await rules(db, "physician")
    for obj, action in [
        ("Query.nope", "read"),
        ("Nope.*", "read"),
        ("users", "read"),
        ("CreateUserInput.username", "read"),
        ("Query.users", "write"),
        ("Query.users", "execute"),
        ("Mutation.createUser", "read"),
        ("Query.users", ""),
    ]:
        for mutation in (GRANT, REVOKE):
            result = await client.run(mutation, {"r": "physician", "o": obj, "a": action}, as_="admin")
            assert error_codes(result) == ["BAD_USER_INPUT"], (obj, action, result)
    assert await rules(db, "physician") == before
    for mutation in (GRANT, REVOKE):
        result = await client.run(mutation, {"r": "no_such_role", "o": "Query.users", "a": "read"}, as_="admin")
        assert error_codes(result) == ["NOT_FOUND"]
    assert await rules(db, "no_such_role") == set()
    assert [e.outcome for e in await events(db, "grantPermission")][-1] == "not_found"


async def test_create_role_assign_it_and_its_holder_schema_follows(client: GraphQLClient, db: Database) -> None:
    data = await client.data(
        CREATE_ROLE,
        {"k": "gi_lead", "n": "消化组长 GI lead", "s": "DEPARTMENT", "i": ["physician", "physician"], "d": "Leads GI"},
        as_="admin",
    )
    role = data["createRole"]
    assert role["key"] == "gi_lead" and role["dataScope"] == "DEPARTMENT" and role["builtin"] is False
    assert set(role["inherits"]) >= {"physician"}
    async with db.session() as session:
        row = (await session.execute(select(Role).where(Role.key == "gi_lead"))).scalar_one()
    assert (row.name, row.data_scope, row.description, row.is_builtin) == (
        "消化组长 GI lead",
        "DEPARTMENT",
        "Leads GI",
        False,
    )
    assert ("g", "physician", "") in await rules(db, "gi_lead")
    async with db.session() as session:
        links = (
            await session.execute(select(CasbinRule).where(CasbinRule.v0 == "gi_lead", CasbinRule.ptype == "g"))
        ).all()
    assert len(links) == 2  # authenticated and physician, each once
    # Give it the user list and hand it to physician2 (GI).
    await client.data(GRANT, {"r": "gi_lead", "o": "Query.users", "a": "read"}, as_="admin")
    token = await client.token("physician2")
    assert "users" not in (await schema_fields(client, "physician2"))[0]
    await client.data(ASSIGN, {"id": await user_id(db, "physician2"), "keys": ["physician", "gi_lead"]}, as_="admin")
    queries, _ = await schema_fields(client, "physician2")
    assert "users" in queries and "departments" in queries  # inherited from physician
    data = await client.data("{ users { edges { node { username } } } }", token=token)
    assert {e["node"]["username"] for e in data["users"]["edges"]} == {"physician2"}  # scope: their own department
    roles = {r["key"]: r for r in (await client.data(ROLES, as_="admin"))["roles"]}
    assert {"object": "Query.users", "action": "read"} in roles["gi_lead"]["permissions"]
    assert {"object": "Query.departments", "action": "read"} in roles["gi_lead"]["effectivePermissions"]
    [event] = await events(db, "createRole")
    assert event.outcome == "success" and event.entity_id == str(row.id)
    assert event.detail == {"inherits": ["physician"], "dataScope": "DEPARTMENT"}


async def test_create_role_refusals(client: GraphQLClient, db: Database) -> None:
    async with db.session() as session:
        before = len((await session.execute(select(Role))).all())
    for key in ["Bad-Key", "x", "anonymous", "authenticated", "1abc"]:
        result = await client.run(CREATE_ROLE, {"k": key, "n": "x", "s": "SELF"}, as_="admin")
        assert error_codes(result) == ["BAD_USER_INPUT"], key
    result = await client.run(CREATE_ROLE, {"k": "physician", "n": "dup", "s": "SELF"}, as_="admin")
    assert error_codes(result) in (["CONFLICT"], ["BAD_USER_INPUT"])
    result = await client.run(CREATE_ROLE, {"k": "orphan", "n": "x", "s": "SELF", "i": ["no_such_role"]}, as_="admin")
    assert error_codes(result) in (["NOT_FOUND"], ["BAD_USER_INPUT"])
    async with db.session() as session:
        assert len((await session.execute(select(Role))).all()) == before
    assert await rules(db, "orphan") == set()


async def test_dept_admin_may_assign_custom_roles_only_within_reach(client: GraphQLClient, db: Database) -> None:
    await client.data(CREATE_ROLE, {"k": "ward_clerk", "n": "Clerk", "s": "SELF", "i": ["physician"]}, as_="admin")
    await client.data(CREATE_ROLE, {"k": "auditor", "n": "Auditor", "s": "SELF"}, as_="admin")
    await client.data(GRANT, {"r": "auditor", "o": "Query.loginLogs", "a": "read"}, as_="admin")
    await client.data(CREATE_ROLE, {"k": "wide", "n": "Wide", "s": "ALL", "i": ["physician"]}, as_="admin")
    physician = await user_id(db, "physician")
    data = await client.data(ASSIGN, {"id": physician, "keys": ["ward_clerk"]}, as_="deptadmin")
    assert data["assignRoles"]["roles"] == [{"key": "ward_clerk"}]
    for key in ["auditor", "wide"]:  # a permission the dept admin lacks; a wider data scope
        result = await client.run(ASSIGN, {"id": physician, "keys": [key]}, as_="deptadmin")
        assert error_codes(result) == ["FORBIDDEN"], key
    data = await client.data('{ users(filter: {roleKey: "ward_clerk"}) { totalCount } }', as_="deptadmin")
    assert data["users"]["totalCount"] == 1
    # Covered by the dept admin's own grants, though not line for line: `User.*` covers `User.phone`,
    # and `read` covers `read_masked`.
    await client.data(CREATE_ROLE, {"k": "reception", "n": "Reception", "s": "SELF"}, as_="admin")
    await client.data(GRANT, {"r": "reception", "o": "User.phone", "a": "read"}, as_="admin")
    await client.data(GRANT, {"r": "reception", "o": "Patient.phone", "a": "read_masked"}, as_="admin")
    data = await client.data(ASSIGN, {"id": physician, "keys": ["reception"]}, as_="deptadmin")
    assert data["assignRoles"]["roles"] == [{"key": "reception"}]
    # ...but a masked grant does not cover a full one.
    await client.data(REVOKE, {"r": "dept_admin", "o": "Patient.idNumber", "a": "read"}, as_="admin")
    await client.data(GRANT, {"r": "reception", "o": "Patient.idNumber", "a": "read"}, as_="admin")
    result = await client.run(ASSIGN, {"id": physician, "keys": ["reception"]}, as_="deptadmin")
    assert error_codes(result) == ["FORBIDDEN"]


async def test_a_revoked_default_line_stays_revoked_after_restart(client: GraphQLClient, db: Database) -> None:
    await client.data(REVOKE, {"r": "physician", "o": "Query.positions", "a": "read"}, as_="admin")
    assert "positions" not in (await schema_fields(client, "physician"))[0]
    await ensure_builtin(db)  # what `server.py migrate` and every start-up run
    await client.services.policy.load()
    assert "positions" not in (await schema_fields(client, "physician"))[0]
    assert ("p", "Query.positions", "read") not in await rules(db, "physician")


async def test_non_admins_cannot_change_permissions(client: GraphQLClient, db: Database) -> None:
    before = await rules(db, "physician")
    for username in [None, "patient", "physician", "chief", "deptadmin"]:
        for query, variables in [
            (GRANT, {"r": "physician", "o": "Query.users", "a": "read"}),
            (REVOKE, {"r": "physician", "o": "Query.departments", "a": "read"}),
            (CREATE_ROLE, {"k": "mine", "n": "x", "s": "ALL"}),
            ("{ roles { permissions { object } } }", None),
            ("{ permissionObjects }", None),
        ]:
            result = await client.run(query, variables, as_=username)
            assert set(error_codes(result)) == {"GRAPHQL_VALIDATION_FAILED"}, (username, query)
    assert await rules(db, "physician") == before
    assert await rules(db, "mine") == set()


# ---- capabilities: granted like coordinates, checked like them -----------------------------------


async def test_a_capability_granted_to_a_custom_role_takes_effect(client: GraphQLClient, db: Database) -> None:
    objects = (await client.data("{ permissionObjects }", as_="admin"))["permissionObjects"]
    assert CAPABILITIES <= set(objects)
    assert "capability:consultation.manage" in objects and "capability:roles.assign_any" in objects
    physician = await user_id(db, "physician")
    # Without it, the dept admin may not hand out the admin role.
    result = await client.run(ASSIGN, {"id": physician, "keys": ["admin"]}, as_="deptadmin")
    assert error_codes(result) == ["FORBIDDEN"]
    await client.data(CREATE_ROLE, {"k": "staffing", "n": "Staffing", "s": "SELF"}, as_="admin")
    data = await client.data(GRANT, {"r": "staffing", "o": "capability:roles.assign_any", "a": "execute"}, as_="admin")
    assert data["grantPermission"]["permissions"] == [{"object": "capability:roles.assign_any", "action": "execute"}]
    assert ("p", "capability:roles.assign_any", "execute") in await rules(db, "staffing")
    await client.data(ASSIGN, {"id": await user_id(db, "deptadmin"), "keys": ["dept_admin", "staffing"]}, as_="admin")
    # With it (the same token, the next request), any role.
    data = await client.data(ASSIGN, {"id": physician, "keys": ["physician", "admin"]}, as_="deptadmin")
    assert {r["key"] for r in data["assignRoles"]["roles"]} == {"physician", "admin"}
    # Revoked: refused again, and the user keeps what they had.
    await client.data(REVOKE, {"r": "staffing", "o": "capability:roles.assign_any", "a": "execute"}, as_="admin")
    chief = await user_id(db, "chief")
    result = await client.run(ASSIGN, {"id": chief, "keys": ["admin"]}, as_="deptadmin")
    assert error_codes(result) == ["FORBIDDEN"]
    assert [e.outcome for e in await events(db, "grantPermission")] == ["success"]
    assert [e.outcome for e in await events(db, "assignRoles")] == ["forbidden", "success", "success", "forbidden"]


async def test_unknown_capabilities_and_wrong_actions_are_bad_input(client: GraphQLClient, db: Database) -> None:
    await client.data(CREATE_ROLE, {"k": "staffing", "n": "Staffing", "s": "SELF"}, as_="admin")
    before = await rules(db, "staffing")
    for obj, action, says in [
        ("capability:no.such", "execute", "unknown capability"),
        ("capability:", "execute", "unknown capability"),
        ("capability:Consultation.Manage", "execute", "unknown capability"),
        ("capability:consultation.manage", "read", "takes 'execute'"),
        ("capability:metrics.read", "read_masked", "takes 'execute'"),
    ]:
        for mutation in (GRANT, REVOKE):
            result = await client.run(mutation, {"r": "staffing", "o": obj, "a": action}, as_="admin")
            assert error_codes(result) == ["BAD_USER_INPUT"], (obj, action, result)
            assert says in result["errors"][0]["message"], result
    assert await rules(db, "staffing") == before
    # Each refusal is recorded, nothing else.
    assert [e.outcome for e in await events(db, "grantPermission")] == ["bad_user_input"] * 5


@pytest.mark.parametrize(
    "line", [("physician", "capability:no.such", "execute"), ("physician", "capability:metrics.read", "read")]
)
async def test_a_stored_line_naming_an_unknown_capability_refuses_start_up(
    database_url: str, db: Database, line: tuple[str, str, str]
) -> None:
    await reset_database(database_url)
    async with db.transaction() as session:
        session.add(CasbinRule(ptype="p", v0=line[0], v1=line[1], v2=line[2]))
    app = create_app(make_settings(database_url))
    try:
        with pytest.raises(StartupRefused, match=line[1]):
            async with app.router.lifespan_context(app):
                pass
    finally:
        await app.state.services.db.dispose()  # a refused start-up leaves its pool open (server.py's lifespan)
    # Without that line the same database starts.
    async with db.transaction() as session:
        await session.execute(delete(CasbinRule).where(CasbinRule.v1 == line[1], CasbinRule.v2 == line[2]))
    app = create_app(make_settings(database_url))
    async with app.router.lifespan_context(app):
        assert (line[1], line[2]) not in app.state.services.policy.permissions(line[0])

"""The department admin manages users of CRS and below only, and hands out only roles within reach;
physicians and chiefs cannot administer users at all (the fields are not in their schema)."""

from __future__ import annotations

from sqlalchemy import select

from core.db import Database
from core.ids import encode_id
from core.security import verify_password
from models.audit import Event
from models.organisation import Department
from models.role import Role, UserRole
from models.user import User
from tests.conftest import DEMO_PASSWORD, GraphQLClient, error_codes

STRONG = "Str0ng-Passw0rd!"

USERS = "query ($filter: UserFilter) { users(first: 100, filter: $filter) { totalCount edges { node { username } } } }"
USER = "query ($id: ID!) { user(id: $id) { id username } }"
CREATE = """
mutation ($input: CreateUserInput!) { createUser(input: $input) { id username department { code } roles { key } } }
"""
UPDATE = "mutation ($id: ID!, $input: UpdateUserInput!) { updateUser(id: $id, input: $input) { id displayName } }"
DISABLE = "mutation ($id: ID!) { disableUser(id: $id) { id status } }"
ENABLE = "mutation ($id: ID!) { enableUser(id: $id) { id status } }"
RESET = "mutation ($id: ID!) { resetPassword(userId: $id) { temporaryPassword } }"
ASSIGN = "mutation ($id: ID!, $keys: [String!]!) { assignRoles(userId: $id, roleKeys: $keys) { id roles { key } } }"


async def user_pk(db: Database, username: str) -> int:
    async with db.session() as session:
        return int((await session.execute(select(User.id).where(User.username == username))).scalar_one())


async def user_id(db: Database, username: str) -> str:
    return encode_id("User", await user_pk(db, username))


async def department_id(db: Database, code: str) -> str:
    async with db.session() as session:
        pk = (await session.execute(select(Department.id).where(Department.code == code))).scalar_one()
    return encode_id("Department", pk)


async def stored_user(db: Database, username: str) -> User | None:
    async with db.session() as session:
        return (await session.execute(select(User).where(User.username == username))).scalar_one_or_none()


async def stored_roles(db: Database, username: str) -> set[str]:
    pk = await user_pk(db, username)
    async with db.session() as session:
        rows = await session.execute(
            select(Role.key).join(UserRole, UserRole.role_id == Role.id).where(UserRole.user_id == pk)  # type: ignore[arg-type]
        )
        return set(rows.scalars().all())


async def events(db: Database, operation: str) -> list[Event]:
    async with db.session() as session:
        rows = await session.execute(select(Event).where(Event.operation == operation).order_by(Event.id))  # type: ignore[arg-type]
        return list(rows.scalars().all())


# ---- reads ---------------------------------------------------------------------------------------


async def test_dept_admin_sees_only_crs_and_below(client: GraphQLClient, db: Database) -> None:
    data = await client.data(USERS, as_="deptadmin")
    assert {e["node"]["username"] for e in data["users"]["edges"]} == {"deptadmin", "chief", "physician"}
    assert data["users"]["totalCount"] == 3
    # A user placed in CRS-ANO (below CRS) is in reach too.
    ano = await department_id(db, "CRS-ANO")
    await client.data(
        CREATE,
        {"input": {"username": "ano.doc", "displayName": "肛肠医生", "password": STRONG, "departmentId": ano}},
        as_="admin",
    )
    data = await client.data(USERS, as_="deptadmin")
    assert {e["node"]["username"] for e in data["users"]["edges"]} == {"deptadmin", "chief", "physician", "ano.doc"}
    # Filters cannot widen the scope.
    gi = await department_id(db, "GI")
    data = await client.data(USERS, {"filter": {"departmentId": gi}}, as_="deptadmin")
    assert data["users"] == {"totalCount": 0, "edges": []}
    data = await client.data(USERS, {"filter": {"search": "physician2"}}, as_="deptadmin")
    assert data["users"]["totalCount"] == 0
    data = await client.data(USERS, {"filter": {"roleKey": "admin"}}, as_="deptadmin")
    assert data["users"]["totalCount"] == 0


async def test_dept_admin_gets_not_found_for_out_of_scope_users(client: GraphQLClient, db: Database) -> None:
    assert (await client.data(USER, {"id": await user_id(db, "chief")}, as_="deptadmin"))["user"]["username"] == "chief"
    for username in ["physician2", "admin", "patient"]:
        result = await client.run(USER, {"id": await user_id(db, username)}, as_="deptadmin")
        assert error_codes(result) == ["NOT_FOUND"], username
        assert result["data"] is None


# ---- writes within and outside the scope ---------------------------------------------------------


async def test_dept_admin_creates_users_in_crs_only(client: GraphQLClient, db: Database) -> None:
    crs = await department_id(db, "CRS")
    data = await client.data(
        CREATE,
        {
            "input": {
                "username": "resident1",
                "displayName": "住院医师",
                "password": STRONG,
                "departmentId": crs,
                "roleKeys": ["physician"],
            }
        },
        as_="deptadmin",
    )
    assert data["createUser"]["department"] == {"code": "CRS"}
    assert await stored_roles(db, "resident1") == {"physician"}
    gi = await department_id(db, "GI")
    hosp = await department_id(db, "HOSP")
    for department in [gi, hosp, None]:
        result = await client.run(
            CREATE,
            {"input": {"username": "outsider", "displayName": "x", "password": STRONG, "departmentId": department}},
            as_="deptadmin",
        )
        assert error_codes(result) == ["FORBIDDEN"], (department, result)
    assert await stored_user(db, "outsider") is None
    # A user in CRS with a role beyond the dept admin's reach: refused, nothing stored.
    result = await client.run(
        CREATE,
        {
            "input": {
                "username": "sneaky",
                "displayName": "x",
                "password": STRONG,
                "departmentId": crs,
                "roleKeys": ["admin"],
            }
        },
        as_="deptadmin",
    )
    assert error_codes(result) == ["FORBIDDEN"]
    assert await stored_user(db, "sneaky") is None
    outcomes = [e.outcome for e in await events(db, "createUser")]
    assert outcomes == ["success", "forbidden", "forbidden", "forbidden", "forbidden"]


async def test_dept_admin_cannot_assign_admin_and_nothing_changes(client: GraphQLClient, db: Database) -> None:
    physician = await user_id(db, "physician")
    for keys in (["admin"], ["physician", "admin"]):
        result = await client.run(ASSIGN, {"id": physician, "keys": keys}, as_="deptadmin")
        assert error_codes(result) == ["FORBIDDEN"]
        assert result["data"] is None
    assert await stored_roles(db, "physician") == {"physician"}
    # Nor to themselves.
    result = await client.run(ASSIGN, {"id": await user_id(db, "deptadmin"), "keys": ["admin"]}, as_="deptadmin")
    assert error_codes(result) == ["FORBIDDEN"]
    assert await stored_roles(db, "deptadmin") == {"dept_admin"}
    refused = await events(db, "assignRoles")
    assert [(e.outcome, e.actor_id) for e in refused] == [("forbidden", await user_pk(db, "deptadmin"))] * 3


async def test_dept_admin_assigns_physician_roles_in_crs(client: GraphQLClient, db: Database) -> None:
    physician = await user_id(db, "physician")
    data = await client.data(ASSIGN, {"id": physician, "keys": ["chief_physician"]}, as_="deptadmin")
    assert data["assignRoles"]["roles"] == [{"key": "chief_physician"}]
    assert await stored_roles(db, "physician") == {"chief_physician"}
    data = await client.data(ASSIGN, {"id": physician, "keys": ["physician"]}, as_="deptadmin")
    assert await stored_roles(db, "physician") == {"physician"}
    [first, second] = await events(db, "assignRoles")
    assert first.outcome == second.outcome == "success"
    assert first.detail == {"before": ["physician"], "after": ["chief_physician"]}
    # Out of scope: NOT_FOUND, nothing changes.
    result = await client.run(
        ASSIGN, {"id": await user_id(db, "physician2"), "keys": ["chief_physician"]}, as_="deptadmin"
    )
    assert error_codes(result) == ["NOT_FOUND"]
    assert await stored_roles(db, "physician2") == {"physician"}


async def test_dept_admin_cannot_touch_users_above_or_outside(client: GraphQLClient, db: Database) -> None:
    admin = await user_id(db, "admin")
    physician2 = await user_id(db, "physician2")
    admin_before = await stored_user(db, "admin")
    for query, variables in [
        (RESET, {"id": admin}),
        (DISABLE, {"id": admin}),
        (UPDATE, {"id": admin, "input": {"displayName": "pwned"}}),
        (RESET, {"id": physician2}),
        (DISABLE, {"id": physician2}),
        (UPDATE, {"id": physician2, "input": {"displayName": "pwned"}}),
    ]:
        result = await client.run(query, variables, as_="deptadmin")
        assert error_codes(result) == ["NOT_FOUND"], (query, variables)
    admin_after = await stored_user(db, "admin")
    assert admin_before is not None and admin_after is not None
    assert admin_after.password_hash == admin_before.password_hash
    assert (admin_after.status, admin_after.display_name) == (admin_before.status, admin_before.display_name)
    assert verify_password(admin_after.password_hash, DEMO_PASSWORD)
    p2 = await stored_user(db, "physician2")
    assert p2 is not None and p2.status == "active" and "pwned" not in p2.display_name
    # An admin placed inside CRS is still beyond reach: a role the dept admin does not hold.
    await client.data(UPDATE, {"id": admin, "input": {"departmentId": await department_id(db, "CRS")}}, as_="admin")
    result = await client.run(RESET, {"id": admin}, as_="deptadmin")
    assert error_codes(result) == ["FORBIDDEN"]
    admin_after = await stored_user(db, "admin")
    assert admin_after is not None and admin_after.password_hash == admin_before.password_hash
    # Moving a CRS user out to GI is refused.
    physician = await user_id(db, "physician")
    result = await client.run(
        UPDATE, {"id": physician, "input": {"departmentId": await department_id(db, "GI")}}, as_="deptadmin"
    )
    assert error_codes(result) == ["FORBIDDEN"]
    row = await stored_user(db, "physician")
    assert row is not None
    assert encode_id("Department", row.department_id) == await department_id(db, "CRS")  # type: ignore[arg-type]


async def test_dept_admin_manages_crs_users(client: GraphQLClient, db: Database) -> None:
    physician = await user_id(db, "physician")
    token = await client.token("physician")
    data = await client.data(UPDATE, {"id": physician, "input": {"displayName": "陈医生"}}, as_="deptadmin")
    assert data["updateUser"]["displayName"] == "陈医生"
    data = await client.data(RESET, {"id": physician}, as_="deptadmin")
    temporary = data["resetPassword"]["temporaryPassword"]
    row = await stored_user(db, "physician")
    assert row is not None and row.password_hash and verify_password(row.password_hash, temporary)
    assert (await client.post("{ me { id } }", token=token)).status_code == 401
    assert (await client.data(DISABLE, {"id": physician}, as_="deptadmin"))["disableUser"]["status"] == "DISABLED"
    assert (await client.data(ENABLE, {"id": physician}, as_="deptadmin"))["enableUser"]["status"] == "ACTIVE"
    for operation in ["updateUser", "resetPassword", "disableUser", "enableUser"]:
        assert [e.outcome for e in await events(db, operation)] == ["success"], operation


async def test_physician_and_chief_cannot_administer_users(client: GraphQLClient, db: Database) -> None:
    for username in ["physician", "chief"]:
        await _check_cannot_administer(client, db, username)


async def _check_cannot_administer(client: GraphQLClient, db: Database, username: str) -> None:
    target = await user_id(db, "physician2")
    crs = await department_id(db, "CRS")
    operations = [
        (USERS, None),
        (USER, {"id": target}),
        (CREATE, {"input": {"username": "x1x", "displayName": "x", "password": STRONG, "departmentId": crs}}),
        (UPDATE, {"id": target, "input": {"displayName": "x"}}),
        (DISABLE, {"id": target}),
        (ENABLE, {"id": target}),
        (RESET, {"id": target}),
        (ASSIGN, {"id": target, "keys": ["admin"]}),
    ]
    for query, variables in operations:
        response = await client.post(
            query,
            variables,
            token=await client.token(username),
            headers={"Accept": "application/graphql-response+json"},
        )
        assert response.status_code == 400, (query, response.text)
        result = response.json()
        assert error_codes(result) and set(error_codes(result)) == {"GRAPHQL_VALIDATION_FAILED"}, result
        assert "data" not in result
    assert await stored_user(db, "x1x") is None
    assert await stored_roles(db, "physician2") == {"physician"}
    async with db.session() as session:
        # Nothing ran: no write succeeded but the logins.
        done = select(Event).where(Event.operation != "login", Event.outcome == "success")
        assert (await session.execute(done)).first() is None


async def test_dept_admin_moves_users_within_reach_only_and_not_themselves(client: GraphQLClient, db: Database) -> None:
    """A user moved by a dept admin must stay among the users they administer: within CRS and below, yes;
    out to GI, no; and a dept admin cannot move themselves out either (which would widen their own reach)."""
    ano, gi, crs = [await department_id(db, code) for code in ("CRS-ANO", "GI", "CRS")]
    physician = await user_id(db, "physician")
    data = await client.data(
        "mutation ($id: ID!, $d: ID) { updateUser(id: $id, input: {departmentId: $d}) { department { code } } }",
        {"id": physician, "d": ano},
        as_="deptadmin",
    )
    assert data["updateUser"]["department"] == {"code": "CRS-ANO"}
    me = await user_id(db, "deptadmin")
    for department in (gi, None):
        result = await client.run(UPDATE, {"id": me, "input": {"departmentId": department}}, as_="deptadmin")
        assert error_codes(result) == ["FORBIDDEN"], department
    row = await stored_user(db, "deptadmin")
    assert row is not None and encode_id("Department", row.department_id) == crs  # type: ignore[arg-type]
    # The admin moves anyone anywhere, no department included.
    result = await client.data(UPDATE, {"id": me, "input": {"departmentId": None}}, as_="admin")
    assert result["updateUser"]["id"] == me
    row = await stored_user(db, "deptadmin")
    assert row is not None and row.department_id is None
    outcomes = [e.outcome for e in await events(db, "updateUser")]
    assert outcomes == ["success", "forbidden", "forbidden", "success"]

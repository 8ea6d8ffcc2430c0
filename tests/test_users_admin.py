"""User administration as the admin: lists, filters, pagination, and every write, checked in the tables."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from core.db import Database
from core.ids import encode_id
from core.security import verify_password
from models.audit import Event
from models.organisation import Department
from models.role import Role, UserRole
from models.user import User
from tests.conftest import GraphQLClient, error_codes

STRONG = "Str0ng-Passw0rd!"

USERS = """
query ($first: Int, $after: String, $filter: UserFilter) {
  users(first: $first, after: $after, filter: $filter) {
    totalCount
    edges { cursor node { id username displayName phone status department { code } roles { key } } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""

USER = "query ($id: ID!) { user(id: $id) { id username displayName status } }"

CREATE = """
mutation ($input: CreateUserInput!) {
  createUser(input: $input) { id username displayName phone status mustChangePassword department { code } roles { key } }
}
"""

UPDATE = """
mutation ($id: ID!, $input: UpdateUserInput!) {
  updateUser(id: $id, input: $input) { id displayName phone department { code } }
}
"""

DISABLE = "mutation ($id: ID!) { disableUser(id: $id) { id status } }"
ENABLE = "mutation ($id: ID!) { enableUser(id: $id) { id status } }"
RESET = """
mutation ($id: ID!, $pw: String) { resetPassword(userId: $id, newPassword: $pw) { temporaryPassword user { id mustChangePassword } } }
"""
ASSIGN = "mutation ($id: ID!, $keys: [String!]!) { assignRoles(userId: $id, roleKeys: $keys) { id roles { key } } }"
ME = "{ me { username } }"
FIELDS = "{ __schema { queryType { fields { name } } mutationType { fields { name } } } }"


async def user_pk(db: Database, username: str) -> int:
    async with db.session() as session:
        pk = (await session.execute(select(User.id).where(User.username == username))).scalar_one()
    return int(pk)


async def user_id(db: Database, username: str) -> str:
    return encode_id("User", await user_pk(db, username))


async def department_id(db: Database, code: str) -> str:
    async with db.session() as session:
        pk = (await session.execute(select(Department.id).where(Department.code == code))).scalar_one()
    return encode_id("Department", pk)


async def stored_user(db: Database, username: str) -> User | None:
    async with db.session() as session:
        return (await session.execute(select(User).where(User.username == username))).scalar_one_or_none()


async def stored_roles(db: Database, pk: int) -> set[str]:
    async with db.session() as session:
        rows = await session.execute(
            select(Role.key).join(UserRole, UserRole.role_id == Role.id).where(UserRole.user_id == pk)  # type: ignore[arg-type]
        )
        return set(rows.scalars().all())


async def events(db: Database, operation: str) -> list[Event]:
    async with db.session() as session:
        rows = await session.execute(select(Event).where(Event.operation == operation).order_by(Event.id))  # type: ignore[arg-type]
        return list(rows.scalars().all())


async def user_count(db: Database) -> int:
    async with db.session() as session:
        return int((await session.execute(select(func.count()).select_from(User))).scalar_one())


def usernames(data: dict[str, Any]) -> list[str]:
    return [edge["node"]["username"] for edge in data["users"]["edges"]]


async def query_fields(client: GraphQLClient, token: str) -> tuple[set[str], set[str]]:
    schema = (await client.data(FIELDS, token=token))["__schema"]
    mutation = schema["mutationType"]
    return {f["name"] for f in schema["queryType"]["fields"]}, {
        f["name"] for f in mutation["fields"]
    } if mutation else set()


# ---- reads ---------------------------------------------------------------------------------------


async def test_admin_lists_every_user_with_total_count(client: GraphQLClient) -> None:
    data = await client.data(USERS, as_="admin")
    assert set(usernames(data)) == {"admin", "deptadmin", "chief", "physician", "physician2", "patient"}
    assert data["users"]["totalCount"] == 6
    assert data["users"]["pageInfo"]["hasNextPage"] is False
    assert data["users"]["pageInfo"]["hasPreviousPage"] is False
    chief = next(e["node"] for e in data["users"]["edges"] if e["node"]["username"] == "chief")
    assert chief["department"] == {"code": "CRS"}
    assert chief["roles"] == [{"key": "chief_physician"}]
    assert chief["displayName"].startswith("张主任")


async def test_admin_filters_users(client: GraphQLClient, db: Database) -> None:
    async def names(filter_: dict[str, Any]) -> tuple[set[str], int]:
        data = await client.data(USERS, {"filter": filter_}, as_="admin")
        return set(usernames(data)), data["users"]["totalCount"]

    assert await names({"roleKey": "physician"}) == ({"physician", "physician2"}, 2)
    assert await names({"departmentId": await department_id(db, "CRS")}) == ({"deptadmin", "chief", "physician"}, 3)
    assert await names({"departmentId": await department_id(db, "GI")}) == ({"physician2"}, 1)
    assert await names({"search": "张主任"}) == ({"chief"}, 1)  # part of the display name
    assert await names({"search": "主任"}) == ({"chief"}, 1)
    assert await names({"search": "ysician2"}) == ({"physician2"}, 1)  # part of a username
    assert await names({"search": "DEPTAD"}) == ({"deptadmin"}, 1)
    assert await names({"search": "13912345678"}) == ({"patient"}, 1)  # a whole phone number
    assert await names({"search": "1391234"}) == (set(), 0)  # a phone number only matches whole
    assert await names({"search": "100%"}) == (set(), 0)  # LIKE wildcards are literal
    assert await names({"search": "_"}) == (set(), 0)
    assert await names({"status": "ACTIVE", "roleKey": "patient"}) == ({"patient"}, 1)
    assert await names({"status": "DISABLED"}) == (set(), 0)
    await client.data(DISABLE, {"id": await user_id(db, "physician2")}, as_="admin")
    assert await names({"status": "DISABLED"}) == ({"physician2"}, 1)
    assert await names({"status": "ACTIVE", "roleKey": "physician"}) == ({"physician"}, 1)


async def test_keyset_pagination_across_pages(client: GraphQLClient) -> None:
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        data = (await client.data(USERS, {"first": 2, "after": after}, as_="admin"))["users"]
        pages += 1
        assert data["totalCount"] == 6
        assert len(data["edges"]) <= 2
        seen += [edge["node"]["username"] for edge in data["edges"]]
        info = data["pageInfo"]
        assert info["hasPreviousPage"] is (after is not None)
        if data["edges"]:
            assert info["startCursor"] == data["edges"][0]["cursor"]
            assert info["endCursor"] == data["edges"][-1]["cursor"]
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]
    assert pages == 3
    assert sorted(seen) == sorted({"admin", "deptadmin", "chief", "physician", "physician2", "patient"})
    assert len(seen) == len(set(seen))  # no user twice


async def test_pagination_rejects_bad_cursors_and_large_pages(client: GraphQLClient) -> None:
    for cursor in ["not-a-cursor!!", "WzEsMl0", "eyJhIjoxfQ", "WyJ4Il0", "Wzk5OTk5OTk5OTk5OTk5OTk5OTk5XQ", "WzEuNV0"]:
        result = await client.run(USERS, {"after": cursor}, as_="admin")
        assert error_codes(result) == ["BAD_USER_INPUT"], (cursor, result)
    # A cursor whose key is too large for the database's integer.
    big = "WzE4NDQ2NzQ0MDczNzA5NTUxNjAwXQ"  # [18446744073709551600]
    assert error_codes(await client.run(USERS, {"after": big}, as_="admin")) == ["BAD_USER_INPUT"]
    assert error_codes(await client.run(USERS, {"first": 101}, as_="admin")) == ["BAD_USER_INPUT"]
    assert error_codes(await client.run(USERS, {"first": -1}, as_="admin")) == ["BAD_USER_INPUT"]
    assert len((await client.data(USERS, {"first": 100}, as_="admin"))["users"]["edges"]) == 6
    # An empty page still tells whether there is more; an empty cursor is no cursor.
    empty = (await client.data(USERS, {"first": 0, "after": ""}, as_="admin"))["users"]
    assert empty["edges"] == [] and empty["totalCount"] == 6
    assert empty["pageInfo"] == {"hasNextPage": True, "hasPreviousPage": False, "startCursor": None, "endCursor": None}


async def test_user_by_id_and_unknown_or_malformed_ids(client: GraphQLClient, db: Database) -> None:
    chief = await user_id(db, "chief")
    data = await client.data(USER, {"id": chief}, as_="admin")
    assert data["user"]["username"] == "chief"
    for bad in [encode_id("User", 999999), "garbage", encode_id("Department", await user_pk(db, "chief")), "", "Ü"]:
        result = await client.run(USER, {"id": bad}, as_="admin")
        assert error_codes(result) == ["NOT_FOUND"], (bad, result)


# ---- createUser ----------------------------------------------------------------------------------


async def test_create_user_stores_it_with_roles_and_an_event(client: GraphQLClient, db: Database) -> None:
    crs = await department_id(db, "CRS")
    data = await client.data(
        CREATE,
        {
            "input": {
                "username": "Wang.Fang",
                "displayName": "王芳 Wang Fang",
                "password": STRONG,
                "phone": "13700001111",
                "departmentId": crs,
                "roleKeys": ["physician"],
            }
        },
        as_="admin",
    )
    created = data["createUser"]
    assert created["username"] == "wang.fang"  # normalised
    assert created["displayName"] == "王芳 Wang Fang"
    assert created["mustChangePassword"] is True
    assert created["department"] == {"code": "CRS"}
    assert created["roles"] == [{"key": "physician"}]
    row = await stored_user(db, "wang.fang")
    assert row is not None
    assert row.display_name == "王芳 Wang Fang"
    assert row.phone == "13700001111"
    assert row.password_hash and verify_password(row.password_hash, STRONG)
    assert STRONG not in row.password_hash
    assert await stored_roles(db, row.id) == {"physician"}  # type: ignore[arg-type]
    assert created["id"] == encode_id("User", row.id)  # type: ignore[arg-type]
    # Round trip through a read, as another request.
    again = await client.data(USER, {"id": created["id"]}, as_="admin")
    assert again["user"]["displayName"] == "王芳 Wang Fang"
    # The new user logs in; the password policy made them change it first.
    login = await client.login("wang.fang", STRONG)
    assert login["mustChangePassword"] is True
    [event] = await events(db, "createUser")
    assert (event.actor_id, event.action, event.entity_type, event.entity_id, event.outcome) == (
        await user_pk(db, "admin"),
        "create",
        "User",
        str(row.id),
        "success",
    )
    assert event.detail == {"roles": ["physician"], "departmentId": row.department_id}


async def test_create_user_password_policy(client: GraphQLClient, db: Database) -> None:
    before = await user_count(db)
    for password in ["Sh0rt!", "alllowercase-letters", "NoDigitsOrSymbols", "xwang.li9Str0ng!"]:
        result = await client.run(
            CREATE, {"input": {"username": "wang.li9", "displayName": "x", "password": password}}, as_="admin"
        )
        assert error_codes(result) == ["BAD_USER_INPUT"], (password, result)
        assert result["errors"][0]["extensions"]["field"] == "password"
    assert await user_count(db) == before
    assert await stored_user(db, "wang.li9") is None


async def test_create_user_refuses_bad_input_and_stores_nothing(client: GraphQLClient, db: Database) -> None:
    before = await user_count(db)
    cases: list[dict[str, Any]] = [
        {"username": "a", "displayName": "x", "password": STRONG},  # too short a username
        {"username": "bad name", "displayName": "x", "password": STRONG},
        {"username": "newbie", "displayName": "   ", "password": STRONG},
        {"username": "newbie", "displayName": "x", "password": STRONG, "phone": "call me"},
        {"username": "newbie", "displayName": "x", "password": STRONG, "roleKeys": ["no_such_role"]},
        {"username": "newbie", "displayName": "x", "password": STRONG, "departmentId": encode_id("Department", 9999)},
        {"username": "newbie", "displayName": "x", "password": STRONG, "positionId": encode_id("Position", 9999)},
    ]
    for case in cases:
        result = await client.run(CREATE, {"input": case}, as_="admin")
        assert error_codes(result) == ["BAD_USER_INPUT"], (case, result)
    assert await user_count(db) == before


async def test_duplicate_username_is_refused_and_nothing_is_stored(client: GraphQLClient, db: Database) -> None:
    before = await user_count(db)
    chief_before = await stored_user(db, "chief")
    for username in ["chief", "CHIEF", " Chief "]:
        result = await client.run(
            CREATE, {"input": {"username": username, "displayName": "Impostor", "password": STRONG}}, as_="admin"
        )
        assert error_codes(result)[0] in ("BAD_USER_INPUT", "CONFLICT"), result
        assert "data" not in result or result["data"] is None
    assert await user_count(db) == before
    chief_after = await stored_user(db, "chief")
    assert chief_after is not None and chief_before is not None
    assert chief_after.display_name == chief_before.display_name
    assert not [e for e in await events(db, "createUser") if e.outcome == "success"]


# ---- updateUser, disable/enable, resetPassword ---------------------------------------------------


async def test_update_user(client: GraphQLClient, db: Database) -> None:
    physician = await user_id(db, "physician")
    gi = await department_id(db, "GI")
    data = await client.data(
        UPDATE,
        {"id": physician, "input": {"displayName": "陈医生（新）", "phone": "13711112222", "departmentId": gi}},
        as_="admin",
    )
    assert data["updateUser"] == {
        "id": physician,
        "displayName": "陈医生（新）",
        "phone": "13711112222",
        "department": {"code": "GI"},
    }
    row = await stored_user(db, "physician")
    assert row is not None
    assert (row.display_name, row.phone) == ("陈医生（新）", "13711112222")
    assert encode_id("Department", row.department_id) == gi  # type: ignore[arg-type]
    # Leaving a field out keeps it; an explicit null clears it.
    data = await client.data(UPDATE, {"id": physician, "input": {"departmentId": None}}, as_="admin")
    assert data["updateUser"]["department"] is None
    assert data["updateUser"]["displayName"] == "陈医生（新）"
    [event, _] = await events(db, "updateUser")
    assert event.outcome == "success" and event.entity_id == str(row.id)
    assert event.detail == {"changed": ["displayName", "phone", "departmentId"]}
    # Bad input changes nothing.
    result = await client.run(UPDATE, {"id": physician, "input": {"displayName": ""}}, as_="admin")
    assert error_codes(result) == ["BAD_USER_INPUT"]
    result = await client.run(
        UPDATE, {"id": physician, "input": {"departmentId": encode_id("Department", 9999)}}, as_="admin"
    )
    assert error_codes(result) == ["BAD_USER_INPUT"]
    result = await client.run(UPDATE, {"id": encode_id("User", 9999), "input": {"displayName": "x"}}, as_="admin")
    assert error_codes(result) == ["NOT_FOUND"]
    row = await stored_user(db, "physician")
    assert row is not None and row.display_name == "陈医生（新）" and row.department_id is None


async def test_disabled_users_token_is_refused_on_its_next_request(client: GraphQLClient, db: Database) -> None:
    token = await client.token("physician")
    assert (await client.data(ME, token=token))["me"]["username"] == "physician"
    physician = await user_id(db, "physician")
    data = await client.data(DISABLE, {"id": physician}, as_="admin")
    assert data["disableUser"] == {"id": physician, "status": "DISABLED"}
    row = await stored_user(db, "physician")
    assert row is not None and row.status == "disabled"
    response = await client.post(ME, token=token)
    assert response.status_code == 401
    assert error_codes(response.json()) == ["UNAUTHENTICATED"]
    # Nor can they log in again.
    from tests.conftest import DEMO_PASSWORD, LOGIN

    result = await client.run(LOGIN, {"u": "physician", "p": DEMO_PASSWORD})
    assert error_codes(result) == ["UNAUTHENTICATED"]
    # Enabled again, they log in; the old token stays dead (its session was ended).
    data = await client.data(ENABLE, {"id": physician}, as_="admin")
    assert data["enableUser"]["status"] == "ACTIVE"
    row = await stored_user(db, "physician")
    assert row is not None and row.status == "active"
    assert (await client.post(ME, token=token)).status_code == 401
    fresh = (await client.login("physician"))["accessToken"]
    assert (await client.data(ME, token=fresh))["me"]["username"] == "physician"
    assert [e.outcome for e in await events(db, "disableUser")] == ["success"]
    assert [e.outcome for e in await events(db, "enableUser")] == ["success"]


async def test_admin_cannot_disable_themselves(client: GraphQLClient, db: Database) -> None:
    result = await client.run(DISABLE, {"id": await user_id(db, "admin")}, as_="admin")
    assert error_codes(result) == ["FORBIDDEN"]
    row = await stored_user(db, "admin")
    assert row is not None and row.status == "active"
    assert [e.outcome for e in await events(db, "disableUser")] == ["forbidden"]


async def test_reset_password(client: GraphQLClient, db: Database) -> None:
    token = await client.token("chief")
    chief = await user_id(db, "chief")
    data = await client.data(RESET, {"id": chief}, as_="admin")
    temporary = data["resetPassword"]["temporaryPassword"]
    assert len(temporary) >= 10
    assert data["resetPassword"]["user"] == {"id": chief, "mustChangePassword": True}
    row = await stored_user(db, "chief")
    assert row is not None and row.password_hash and verify_password(row.password_hash, temporary)
    assert row.must_change_password is True
    assert (await client.post(ME, token=token)).status_code == 401  # sessions ended
    login = await client.login("chief", temporary)
    assert login["mustChangePassword"] is True
    # Until they change it, they hold only the basics.
    queries, _ = await query_fields(client, login["accessToken"])
    assert "departments" not in queries and "me" in queries
    # An explicit new password must meet the policy.
    result = await client.run(RESET, {"id": chief, "pw": "weak"}, as_="admin")
    assert error_codes(result) == ["BAD_USER_INPUT"]
    row2 = await stored_user(db, "chief")
    assert row2 is not None and row2.password_hash == row.password_hash
    data = await client.data(RESET, {"id": chief, "pw": STRONG}, as_="admin")
    assert data["resetPassword"]["temporaryPassword"] == STRONG
    assert [e.outcome for e in await events(db, "resetPassword")] == ["success", "bad_user_input", "success"]


# ---- assignRoles ---------------------------------------------------------------------------------


async def test_assign_roles_changes_the_users_schema_on_their_next_request(client: GraphQLClient, db: Database) -> None:
    token = await client.token("deptadmin")
    queries, mutations = await query_fields(client, token)
    assert "users" in queries and "assignRoles" in mutations
    deptadmin = await user_id(db, "deptadmin")
    data = await client.data(ASSIGN, {"id": deptadmin, "keys": ["physician"]}, as_="admin")
    assert data["assignRoles"]["roles"] == [{"key": "physician"}]
    assert await stored_roles(db, await user_pk(db, "deptadmin")) == {"physician"}
    # The same token, next request: the schema has shrunk.
    queries, mutations = await query_fields(client, token)
    assert "users" not in queries and "assignRoles" not in mutations
    assert "departments" in queries
    result = await client.run("{ users { totalCount } }", token=token)
    assert error_codes(result) == ["GRAPHQL_VALIDATION_FAILED"]
    # And back.
    await client.data(ASSIGN, {"id": deptadmin, "keys": ["dept_admin", "physician", "dept_admin"]}, as_="admin")
    assert await stored_roles(db, await user_pk(db, "deptadmin")) == {"dept_admin", "physician"}
    queries, _ = await query_fields(client, token)
    assert "users" in queries
    # No roles at all: only what anyone logged in has (their profile, the labels of what they see, their menu).
    await client.data(ASSIGN, {"id": deptadmin, "keys": []}, as_="admin")
    queries, mutations = await query_fields(client, token)
    assert queries == {"me", "serverInfo", "dictionaries", "myMenus"}
    assert await stored_roles(db, await user_pk(db, "deptadmin")) == set()
    outcomes = [(e.outcome, e.detail) for e in await events(db, "assignRoles")]
    assert outcomes == [
        ("success", {"before": ["dept_admin"], "after": ["physician"]}),
        ("success", {"before": ["physician"], "after": ["dept_admin", "physician"]}),
        ("success", {"before": ["dept_admin", "physician"], "after": []}),
    ]


async def test_assign_unknown_role_is_bad_input(client: GraphQLClient, db: Database) -> None:
    physician_pk = await user_pk(db, "physician")
    result = await client.run(ASSIGN, {"id": encode_id("User", physician_pk), "keys": ["nope"]}, as_="admin")
    assert error_codes(result) == ["BAD_USER_INPUT"]
    assert await stored_roles(db, physician_pk) == {"physician"}


async def test_concurrent_creates_of_one_username_store_one_user(client: GraphQLClient, db: Database) -> None:
    import asyncio

    token = await client.token("admin")
    variables = {"input": {"username": "twin", "displayName": "双胞胎", "password": STRONG}}
    responses = await asyncio.gather(*(client.post(CREATE, variables, token=token) for _ in range(3)))
    results = [response.json() for response in responses]
    assert sum(1 for result in results if "errors" not in result) == 1, results
    for result in results:
        if "errors" in result:
            assert error_codes(result)[0] in ("BAD_USER_INPUT", "CONFLICT"), result
    async with db.session() as session:
        assert len((await session.execute(select(User).where(User.username == "twin"))).all()) == 1
    assert [e.outcome for e in await events(db, "createUser")].count("success") == 1

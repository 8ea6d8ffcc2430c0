"""Every write commits together with its `event` row; refusals are recorded in their own transaction;
admins read the event table and the login log, nobody else has them."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

import resolvers.audit.unit
from core.db import Database
from core.ids import encode_id
from models.audit import Event
from models.organisation import Department
from models.role import Role, UserRole
from models.user import User
from tests.conftest import GraphQLClient, error_codes

STRONG = "Str0ng-Passw0rd!"

AUDIT = """
query ($first: Int, $after: String, $filter: AuditEventFilter) {
  auditEvents(first: $first, after: $after, filter: $filter) {
    totalCount
    edges { node { id occurredAt actorId action operation entityType entityId requestId ip outcome detail } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
LOGIN_LOGS = """
query ($filter: LoginLogFilter) {
  loginLogs(first: 50, filter: $filter) { totalCount edges { node { username userId method success reason ip createdAt } } }
}
"""


async def pk_of(db: Database, username: str) -> int:
    async with db.session() as session:
        return int((await session.execute(select(User.id).where(User.username == username))).scalar_one())


async def dep_pk(db: Database, code: str) -> int:
    async with db.session() as session:
        return int((await session.execute(select(Department.id).where(Department.code == code))).scalar_one())


async def all_events(db: Database) -> list[Event]:
    async with db.session() as session:
        rows = await session.execute(select(Event).where(Event.operation != "login").order_by(Event.id))  # type: ignore[arg-type]
        return list(rows.scalars().all())


async def test_every_admin_mutation_leaves_one_event(client: GraphQLClient, db: Database) -> None:
    admin = await pk_of(db, "admin")
    physician = await pk_of(db, "physician")
    crs = encode_id("Department", await dep_pk(db, "CRS"))
    created = await client.data(
        """mutation ($input: CreateUserInput!) { createUser(input: $input) { id } }""",
        {"input": {"username": "nurse1", "displayName": "护士", "password": STRONG, "departmentId": crs}},
        as_="admin",
    )
    nurse_pk = await pk_of(db, "nurse1")
    nurse = created["createUser"]["id"]
    pid = encode_id("User", physician)
    steps: list[tuple[str, dict[str, Any]]] = [
        ('mutation ($id: ID!) { updateUser(id: $id, input: {displayName: "护士长"}) { id } }', {"id": nurse}),
        ("mutation ($id: ID!) { disableUser(id: $id) { id } }", {"id": nurse}),
        ("mutation ($id: ID!) { enableUser(id: $id) { id } }", {"id": nurse}),
        ("mutation ($id: ID!) { resetPassword(userId: $id) { temporaryPassword } }", {"id": nurse}),
        ('mutation ($id: ID!) { assignRoles(userId: $id, roleKeys: ["chief_physician"]) { id } }', {"id": pid}),
        ('mutation { createDepartment(input: {name: "病房", code: "WARD"}) { id } }', {}),
        ('mutation { createPosition(name: "药师") { id } }', {}),
        ('mutation { grantPermission(roleKey: "physician", object: "Query.users", action: "read") { key } }', {}),
        ('mutation { revokePermission(roleKey: "physician", object: "Query.users", action: "read") { key } }', {}),
        ('mutation { createRole(key: "pharmacist", name: "药师", dataScope: SELF) { key } }', {}),
    ]
    for query, variables in steps:
        await client.data(query, variables, as_="admin")
    rows = await all_events(db)
    summary = [(e.operation, e.action, e.entity_type, e.outcome) for e in rows]
    assert summary == [
        ("createUser", "create", "User", "success"),
        ("updateUser", "update", "User", "success"),
        ("disableUser", "update", "User", "success"),
        ("enableUser", "update", "User", "success"),
        ("resetPassword", "update", "User", "success"),
        ("assignRoles", "update", "User", "success"),
        ("createDepartment", "create", "Department", "success"),
        ("createPosition", "create", "Position", "success"),
        ("grantPermission", "update", "Role", "success"),
        ("revokePermission", "update", "Role", "success"),
        ("createRole", "create", "Role", "success"),
    ]
    assert {e.actor_id for e in rows} == {admin}
    assert all(e.request_id and e.ip == "127.0.0.1" and e.occurred_at.tzinfo is not None for e in rows)
    assert [e.entity_id for e in rows[:5]] == [str(nurse_pk)] * 5
    assert rows[5].entity_id == str(physician)
    assert rows[6].entity_id == str(await dep_pk(db, "WARD"))
    # Nothing secret in the details: no password, temporary or not.
    assert STRONG not in str([e.detail for e in rows])


async def test_refused_attempt_leaves_a_forbidden_event_and_no_change(client: GraphQLClient, db: Database) -> None:
    physician = await pk_of(db, "physician")
    result = await client.run(
        'mutation ($id: ID!) { assignRoles(userId: $id, roleKeys: ["admin"]) { id } }',
        {"id": encode_id("User", physician)},
        as_="deptadmin",
    )
    assert error_codes(result) == ["FORBIDDEN"]
    async with db.session() as session:
        keys = (
            (
                await session.execute(
                    select(Role.key).join(UserRole, UserRole.role_id == Role.id).where(UserRole.user_id == physician)  # type: ignore[arg-type]
                )
            )
            .scalars()
            .all()
        )
    assert list(keys) == ["physician"]
    [event] = await all_events(db)
    assert (event.actor_id, event.operation, event.action, event.entity_type, event.outcome) == (
        await pk_of(db, "deptadmin"),
        "assignRoles",
        "update",
        "User",
        "forbidden",
    )
    # The admin reads it back through the API.
    data = await client.data(AUDIT, {"filter": {"action": "update"}}, as_="admin")
    [edge] = data["auditEvents"]["edges"]
    assert edge["node"]["outcome"] == "forbidden"
    assert edge["node"]["actorId"] == encode_id("User", await pk_of(db, "deptadmin"))


async def test_write_and_event_commit_together(
    client: GraphQLClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the event cannot be written, the write it records is rolled back with it."""
    real = resolvers.audit.unit.event_values

    def failing(ctx: Any, **kwargs: Any) -> dict[str, Any]:
        if kwargs.get("outcome", "success") == "success":
            raise RuntimeError("event table unavailable")
        return real(ctx, **kwargs)

    async with db.session() as session:
        before = int((await session.execute(select(func.count()).select_from(User))).scalar_one())
    await client.token("admin")  # logging in writes an event too
    monkeypatch.setattr(resolvers.audit.unit, "event_values", failing)
    result = await client.run(
        "mutation ($input: CreateUserInput!) { createUser(input: $input) { id } }",
        {"input": {"username": "ghost", "displayName": "x", "password": STRONG}},
        as_="admin",
    )
    assert error_codes(result) == ["INTERNAL"]
    assert "event table unavailable" not in str(result)
    result = await client.run('mutation { createDepartment(input: {name: "x", code: "GHOST"}) { id } }', as_="admin")
    assert error_codes(result) == ["INTERNAL"]
    monkeypatch.undo()
    async with db.session() as session:
        assert int((await session.execute(select(func.count()).select_from(User))).scalar_one()) == before
        assert (await session.execute(select(Department).where(Department.code == "GHOST"))).first() is None
    assert [e for e in await all_events(db) if e.outcome == "success"] == []  # a failure may be recorded, no success


async def test_audit_events_query_filters_and_pages(client: GraphQLClient, db: Database) -> None:
    for name in ["甲", "乙", "丙"]:
        await client.data(f'mutation {{ createPosition(name: "{name}") {{ id }} }}', as_="admin")
    await client.run(
        'mutation ($id: ID!) { assignRoles(userId: $id, roleKeys: ["admin"]) { id } }',
        {"id": encode_id("User", await pk_of(db, "chief"))},
        as_="deptadmin",
    )
    data = (await client.data(AUDIT, {"first": 2}, as_="admin"))["auditEvents"]
    assert data["totalCount"] >= 4  # the logins are events too
    newest = data["edges"][0]["node"]
    assert (newest["operation"], newest["outcome"]) == ("assignRoles", "forbidden")
    assert data["pageInfo"]["hasNextPage"] is True
    seen = [e["node"]["id"] for e in data["edges"]]
    after = data["pageInfo"]["endCursor"]
    while after:
        page = (await client.data(AUDIT, {"first": 2, "after": after}, as_="admin"))["auditEvents"]
        seen += [e["node"]["id"] for e in page["edges"]]
        after = page["pageInfo"]["endCursor"] if page["pageInfo"]["hasNextPage"] else None
    assert len(seen) == len(set(seen)) == data["totalCount"]
    admin_id = encode_id("User", await pk_of(db, "admin"))
    mine = (await client.data(AUDIT, {"filter": {"actorId": admin_id, "action": "create"}}, as_="admin"))["auditEvents"]
    assert mine["totalCount"] == 3
    assert [e["node"]["operation"] for e in mine["edges"]] == ["createPosition"] * 3
    assert all(e["node"]["actorId"] == admin_id for e in mine["edges"])
    # Time windows, with and without a zone (naive means UTC).
    for since, count in [("2000-01-01T00:00:00Z", 3), ("2000-01-01T00:00:00", 3), ("2999-01-01T00:00:00+08:00", 0)]:
        window = {"actorId": admin_id, "action": "create", "from": since}
        got = (await client.data(AUDIT, {"filter": window}, as_="admin"))["auditEvents"]["totalCount"]
        assert got == count, since
    upto = {"actorId": admin_id, "action": "create", "to": "2000-01-01T00:00:00"}
    assert (await client.data(AUDIT, {"filter": upto}, as_="admin"))["auditEvents"]["totalCount"] == 0
    assert error_codes(await client.run(AUDIT, {"after": "bogus"}, as_="admin")) == ["BAD_USER_INPUT"]


async def test_login_logs_record_every_attempt(client: GraphQLClient, db: Database) -> None:
    from tests.conftest import LOGIN

    await client.token("admin")
    await client.login("physician")
    result = await client.run(LOGIN, {"u": "Physician", "p": "wrong-password"})
    assert error_codes(result) == ["UNAUTHENTICATED"]
    result = await client.run(LOGIN, {"u": "nobody", "p": "wrong-password"})
    assert error_codes(result) == ["UNAUTHENTICATED"]
    data = (await client.data(LOGIN_LOGS, {"filter": {"username": "physician"}}, as_="admin"))["loginLogs"]
    assert data["totalCount"] == 2
    failed, ok = (e["node"] for e in data["edges"])  # newest first
    assert (failed["success"], failed["reason"], failed["method"]) == (False, "bad_credentials", "password")
    assert (ok["success"], ok["reason"]) == (True, "ok")
    assert ok["userId"] == encode_id("User", await pk_of(db, "physician")) and ok["ip"] == "127.0.0.1"
    failures = (await client.data(LOGIN_LOGS, {"filter": {"success": False}}, as_="admin"))["loginLogs"]
    assert {e["node"]["username"] for e in failures["edges"]} == {"physician", "nobody"}
    assert "wrong-password" not in str(failures)
    window = {"from": "2000-01-01T00:00:00", "to": "2999-01-01T00:00:00Z"}
    assert (await client.data(LOGIN_LOGS, {"filter": window}, as_="admin"))["loginLogs"]["totalCount"] == 4


async def test_logs_are_absent_for_everyone_but_the_admin(client: GraphQLClient) -> None:
    for username in [None, "patient", "physician", "chief", "deptadmin"]:
        schema = await client.data("{ __schema { queryType { fields { name } } types { name } } }", as_=username)
        queries = {f["name"] for f in schema["__schema"]["queryType"]["fields"]}
        types = {t["name"] for t in schema["__schema"]["types"]}
        assert not {"auditEvents", "loginLogs"} & queries, username
        assert not {"AuditEvent", "LoginLogEntry", "AuditEventConnection"} & types, username
        for query in (AUDIT, LOGIN_LOGS):
            result = await client.run(query, as_=username)
            assert set(error_codes(result)) == {"GRAPHQL_VALIDATION_FAILED"}, username

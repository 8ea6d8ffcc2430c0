"""The standard menu is part of the production bootstrap (policies/menus.py, run by `ensure_builtin`): a fresh
installation without demo data has it, each user sees what their schema allows, and a restart neither undoes an
admin's edit nor brings back what they deleted; a standard entry added in a later version arrives once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from core.crypto import configure as configure_cipher
from core.db import Database
from core.security import hash_password
from models.menu import Menu, MenuKind, SeededMenuEntry
from models.role import Role, UserRole
from models.user import User
from policies import menus as standard
from policies.bootstrap import ensure_builtin
from server import create_app
from tests.conftest import GraphQLClient, _delete_all, make_settings
from tests.test_menus import DELETE, MENUS, MOVE, UPDATE, my_keys

PASSWORD = "Strong#Staff2026"
PRODUCTION = {
    "app_mode": "production",
    "jwt_secret": "a-production-signing-key-of-forty-characters",
    "data_encryption_keys": Fernet.generate_key().decode(),
    "search_hash_key": "a-production-search-hash-key-of-our-own",
}
STAFF = {"ops": "admin", "doc": "physician"}
SCHEMA_FIELDS = "{ __schema { queryType { fields { name } } mutationType { fields { name } } } }"


def all_keys(tree: list[tuple[int, standard.Entry]]) -> set[str]:
    keys: set[str] = set()

    def visit(entry: standard.Entry) -> None:
        keys.add(entry[0])
        for child in entry[7]:
            visit(child)

    for _, entry in tree:
        visit(entry)
    return keys


@pytest.fixture(autouse=True)
def demo_cipher() -> Iterator[None]:
    """create_app configures the process-wide field cipher: leave the demo keys behind."""
    yield
    settings = make_settings("sqlite+aiosqlite://")
    configure_cipher(settings.data_keys, settings.search_hash_key.get_secret_value())


@pytest.fixture
async def fresh(database_url: str) -> AsyncIterator[Database]:
    """A production installation: migrated, bootstrapped, two staff accounts, no demo data at all."""
    db = Database(database_url)
    await _delete_all(db)
    await ensure_builtin(db)
    async with db.transaction() as session:
        roles = {key: role_id for key, role_id in (await session.execute(select(Role.key, Role.id))).all()}
        for username, role in STAFF.items():
            user = User(username=username, display_name=username, password_hash=hash_password(PASSWORD))
            session.add(user)
            await session.flush()
            session.add(UserRole(user_id=user.id, role_id=roles[role]))  # type: ignore[arg-type]
    yield db
    await db.dispose()


class Started:
    """The app started (its lifespan run) as a production server is, after `server.py migrate`."""

    def __init__(self, database_url: str) -> None:
        self.app = create_app(make_settings(database_url, **PRODUCTION))

    async def __aenter__(self) -> GraphQLClient:
        self._lifespan = self.app.router.lifespan_context(self.app)
        await self._lifespan.__aenter__()
        transport = httpx.ASGITransport(app=self.app, client=("127.0.0.1", 50000))
        self._http = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        client = GraphQLClient(self._http, self.app)
        for username in STAFF:
            client._tokens[username] = (await client.login(username, PASSWORD))["accessToken"]
        return client

    async def __aexit__(self, *exc: Any) -> None:
        await self._http.aclose()
        await self._lifespan.__aexit__(*exc)


async def stored(db: Database) -> dict[str, Menu]:
    async with db.session() as session:
        return {m.key: m for m in (await session.execute(select(Menu))).scalars().all()}


async def by_key(client: GraphQLClient) -> dict[str, dict[str, Any]]:
    return {m["key"]: m for m in (await client.data(MENUS, as_="ops"))["menus"]}


async def test_a_fresh_installation_has_the_standard_menu(fresh: Database, database_url: str) -> None:
    async with db_count(fresh) as (menus, markers):
        assert menus == markers == len(all_keys(standard.STANDARD_MENU))
    async with Started(database_url) as client:
        entries = await by_key(client)
        assert set(entries) == all_keys(standard.STANDARD_MENU)
        assert entries["system.users"]["parentId"] == entries["system"]["id"]
        assert entries["system.users"]["titleEn"] == "Users" and entries["system.users"]["needs"] == ["Query.users"]
        admin = await my_keys(client, "ops")
        assert {"system", "system.menus", "system.roles", "integrity.audit", "clinical.patients"} <= set(admin)

        physician = await my_keys(client, "doc")
        assert {"clinical", "clinical.patients"} <= set(physician)
        assert not {"system.menus", "system.roles", "integrity.audit", "operations.jobs"} & set(physician)
        schema = (await client.data(SCHEMA_FIELDS, as_="doc"))["__schema"]
        held = {f"Query.{f['name']}" for f in schema["queryType"]["fields"]}
        held |= {f"Mutation.{f['name']}" for f in schema["mutationType"]["fields"]}
        shown = set(physician)
        for key in physician:
            entry = entries[key]
            coordinates = {need for need in entry["needs"] if not need.startswith("capability:")}
            assert coordinates <= held, entry
            if entry["kind"] == "DIRECTORY":  # shown only with something shown below
                assert any(e["parentId"] == entry["id"] and e["key"] in shown for e in entries.values()), key
        hidden = [key for key, e in entries.items() if e["kind"] != "DIRECTORY" and key not in shown]
        assert all(not set(entries[key]["needs"]) <= held for key in hidden)


class db_count:
    """(menu rows, seeded markers) of a database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def __aenter__(self) -> tuple[int, int]:
        async with self.db.session() as session:
            menus = (await session.execute(select(func.count()).select_from(Menu))).scalar_one()
            markers = (await session.execute(select(func.count()).select_from(SeededMenuEntry))).scalar_one()
        return int(menus), int(markers)

    async def __aexit__(self, *exc: Any) -> None:
        return None


async def test_a_restart_keeps_what_an_admin_edited(fresh: Database, database_url: str) -> None:
    async with Started(database_url) as client:
        entries = await by_key(client)
        await client.data(UPDATE, {"id": entries["system.users"]["id"], "input": {"titleEn": "Staff"}}, as_="ops")
        await client.data(
            UPDATE, {"id": entries["clinical.protocols"]["id"], "input": {"key": "clinical.plans"}}, as_="ops"
        )
        await client.data(MOVE, {"id": entries["clinical.icd"]["id"], "p": entries["system"]["id"]}, as_="ops")
        for key in ["system.operation-log.export", "patients.export"]:
            await client.data(DELETE, {"id": entries[key]["id"]}, as_="ops")
        before = await by_key(client)

    for _ in range(2):  # `server.py migrate` runs the bootstrap again; then the server restarts
        await ensure_builtin(fresh)
        async with Started(database_url) as client:
            after = await by_key(client)
            assert after == before
            assert after["system.users"]["titleEn"] == "Staff"
            assert after["clinical.icd"]["parentId"] == after["system"]["id"]
            assert {"system.operation-log.export", "patients.export", "clinical.protocols"}.isdisjoint(after)
            assert "patients.export" not in await my_keys(client, "ops")
    rows = await stored(fresh)
    assert rows["system.users"].title_en == "Staff" and "patients.export" not in rows


async def test_a_standard_entry_added_later_arrives_once(
    fresh: Database, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    new_page: standard.Entry = (
        "system.menu-audit", MenuKind.PAGE, "菜单变更", "Menu changes", "/system/menu-audit", "history",
        ["Query.menus"], [("system.menu-audit.export", MenuKind.BUTTON, "导出", "Export", "", "", ["Query.menus"], [])],
    )  # fmt: skip
    gone: standard.Entry = ("gone", MenuKind.DIRECTORY, "已删", "Gone", "", "", [], [
        ("gone.page", MenuKind.PAGE, "页", "Page", "/gone", "", ["Query.menus"], []),
    ])  # fmt: skip
    later = [
        (order, entry if entry[0] != "system" else (*entry[:7], [*entry[7], new_page]))
        for order, entry in standard.STANDARD_MENU
    ]
    async with Started(database_url) as client:  # the admin deletes a whole section first
        entries = await by_key(client)
        for key in ["operations.jobs", "operations.server", "operations.stats", "operations.caches"]:
            await client.data(DELETE, {"id": entries[key]["id"]}, as_="ops")
        for key in ["operations.users", "operations.sessions", "operations"]:
            await client.data(DELETE, {"id": entries[key]["id"]}, as_="ops")
    later = [*later, (95, gone)]
    lost: standard.Entry = (
        "operations.new",
        MenuKind.PAGE,
        "新页",
        "New page",
        "/operations/new",
        "",
        ["Query.jobs"],
        [],
    )
    later = [(o, e if e[0] != "operations" else (*e[:7], [*e[7], lost])) for o, e in later]
    monkeypatch.setattr(standard, "STANDARD_MENU", later)  # the next version's tree
    await ensure_builtin(fresh)
    await ensure_builtin(fresh)
    async with Started(database_url) as client:
        entries = await by_key(client)
        keys = [m["key"] for m in (await client.data(MENUS, as_="ops"))["menus"]]
        assert keys.count("system.menu-audit") == 1 and keys.count("system.menu-audit.export") == 1
        assert entries["system.menu-audit"]["parentId"] == entries["system"]["id"]
        assert entries["system.menu-audit.export"]["parentId"] == entries["system.menu-audit"]["id"]
        assert entries["gone"]["parentId"] is None and entries["gone.page"]["parentId"] == entries["gone"]["id"]
        assert not {"operations", "operations.new"} & set(entries)  # a new entry under a deleted section stays out
        assert "system.menu-audit" in await my_keys(client, "ops")
        assert "system.menu-audit" not in await my_keys(client, "doc")  # the physician's schema has no Query.menus
        await client.data(DELETE, {"id": entries["system.menu-audit.export"]["id"]}, as_="ops")
    await ensure_builtin(fresh)
    rows = await stored(fresh)
    assert "system.menu-audit.export" not in rows and "system.menu-audit" in rows
    async with db_count(fresh) as (menus, markers):
        assert markers == len(all_keys(later)) and menus == len(rows)

"""The operator's command line (`python server.py ...`) against a temporary SQLite file, and production start-up."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from cli import main
from core.crypto import configure as configure_cipher
from core.db import Database
from core.security import verify_password
from core.settings import DEMO_JWT_SECRET, get_settings
from models.policy import CasbinRule
from models.role import Role, UserRole
from models.user import User
from resolvers.demo.seed import seed_demo
from server import StartupRefused, create_app
from tests.conftest import DEMO_PASSWORD, LOGIN, make_settings

ROOT = Path(__file__).resolve().parent.parent
GOOD_SECRET = "a-production-signing-key-of-forty-characters"
SECRET_ENV = ("REDIS_URL", "APP_MODE", "JWT_SECRET", "DATA_ENCRYPTION_KEYS", "SEARCH_HASH_KEY")
PRODUCTION = {
    "app_mode": "production",
    "jwt_secret": GOOD_SECRET,
    "data_encryption_keys": Fernet.generate_key().decode(),
    "search_hash_key": "a-production-search-hash-key-of-our-own",
}
ADMIN_PASSWORD = "Strong#Admin2026"


def run(db_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key.upper() not in {*SECRET_ENV, "DEMO_PASSWORD", "TEST_DATABASE_URL"}
    }
    environment.update(DATABASE_URL=db_url, LOG_LEVEL="WARNING", **env)
    return subprocess.run(
        [sys.executable, "server.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(autouse=True)
def demo_cipher() -> Iterator[None]:
    """create_app and the command line configure the process-wide field cipher: leave the demo keys behind."""
    yield
    settings = make_settings("sqlite+aiosqlite://")
    configure_cipher(settings.data_keys, settings.search_hash_key.get_secret_value())


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[subprocess.CompletedProcess[str]]]:
    """`migrate` run twice on one fresh file: the file (a template for the other tests) and both results."""
    path = tmp_path_factory.mktemp("cli") / "template.db"
    url = f"sqlite+aiosqlite:///{path}"
    return path, [run(url, "migrate"), run(url, "migrate")]


@pytest.fixture
def db_url(tmp_path: Path, migrated: tuple[Path, list[Any]]) -> str:
    """A migrated database of this test's own."""
    template, _ = migrated
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{template}{suffix}")
        if source.exists():
            shutil.copy(source, tmp_path / f"cli.db{suffix}")
    return f"sqlite+aiosqlite:///{tmp_path}/cli.db"


async def seed(url: str) -> None:
    db = Database(url)
    try:
        assert await seed_demo(db, password=DEMO_PASSWORD)
    finally:
        await db.dispose()


async def count(url: str, statement: Any) -> int:
    db = Database(url)
    try:
        async with db.session() as session:
            return int((await session.execute(statement)).scalar_one())
    finally:
        await db.dispose()


async def test_migrate_twice_is_idempotent(db_url: str, migrated: tuple[Path, list[Any]]) -> None:
    _, (first, second) = migrated
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    lines = await count(db_url, select(func.count()).select_from(CasbinRule))
    assert lines > 20
    assert await count(db_url, select(func.count()).select_from(Role)) == 5
    assert f"{lines} new default-policy lines" in first.stdout
    assert "0 new default-policy lines" in second.stdout


async def test_seed_demo_twice(db_url: str) -> None:
    first = run(db_url, "seed-demo", DEMO_PASSWORD="Seeded#Demo2026")
    assert first.returncode == 0, first.stderr
    assert "demo data seeded" in first.stdout
    users = await count(db_url, select(func.count()).select_from(User))
    assert users == 6
    second = run(db_url, "seed-demo")
    assert second.returncode == 0, second.stderr
    assert "already present" in second.stdout
    assert await count(db_url, select(func.count()).select_from(User)) == users

    db = Database(db_url)
    try:
        async with db.session() as session:
            admin = (await session.execute(select(User).where(User.username == "admin"))).scalar_one()
        assert admin.is_demo and verify_password(admin.password_hash, "Seeded#Demo2026")
    finally:
        await db.dispose()


def in_process(monkeypatch: pytest.MonkeyPatch, db_url: str, *argv: str, **env: str) -> str:
    """`cli.main(argv)` (what `python server.py` runs) in this process (no event loop running): the message it exits with."""
    for key in SECRET_ENV:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("DATABASE_URL", db_url)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    try:
        with pytest.raises(SystemExit) as exit_info:
            main(list(argv))
    finally:
        get_settings.cache_clear()
    message = str(exit_info.value.code)
    assert message and message != "0"
    return message


def test_seed_demo_refused_in_production(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/none.db"
    env = {key.upper(): value for key, value in PRODUCTION.items()}
    message = in_process(monkeypatch, url, "seed-demo", **env)
    assert "demo mode only" in message


async def test_create_admin_makes_a_working_admin(db_url: str) -> None:
    created = run(db_url, "create-admin", "Alice", "--password-env", "ADMIN_PW", ADMIN_PW=ADMIN_PASSWORD)
    assert created.returncode == 0, created.stderr
    assert "administrator" in created.stdout
    assert ADMIN_PASSWORD not in created.stdout + created.stderr

    db = Database(db_url)
    try:
        async with db.session() as session:
            alice = (await session.execute(select(User).where(User.username == "alice"))).scalar_one()
            roles = (
                await session.execute(
                    select(Role.key).join(UserRole, UserRole.role_id == Role.id).where(UserRole.user_id == alice.id)  # type: ignore[arg-type]
                )
            ).scalars()
            assert list(roles) == ["admin"]
        assert alice.must_change_password is False and alice.is_demo is False
    finally:
        await db.dispose()

    # Log in through the API against that database; in production too, since no demo account exists.
    for settings in (make_settings(db_url), make_settings(db_url, **PRODUCTION)):
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                response = await http.post(
                    "/graphql", json={"query": LOGIN, "variables": {"u": "alice", "p": ADMIN_PASSWORD}}
                )
                body = response.json()
                assert "errors" not in body, body
                token = body["data"]["login"]["accessToken"]
                assert [r["key"] for r in body["data"]["login"]["user"]["roles"]] == ["admin"]
                schema = await http.post(
                    "/graphql",
                    json={"query": "{ __schema { mutationType { fields { name } } } }"},
                    headers={"Authorization": f"Bearer {token}"},
                )
                names = {f["name"] for f in schema.json()["data"]["__schema"]["mutationType"]["fields"]}
                assert "assignRoles" in names

    assert await count(db_url, select(func.count()).select_from(User)) == 1


def test_create_admin_refusals_are_clear(monkeypatch: pytest.MonkeyPatch, db_url: str) -> None:
    monkeypatch.setenv("ADMIN_PW", ADMIN_PASSWORD)
    assert "NO_SUCH_VAR" in in_process(monkeypatch, db_url, "create-admin", "alice", "--password-env", "NO_SUCH_VAR")
    monkeypatch.setenv("WEAK_PW", "short")
    assert "at least 10" in in_process(monkeypatch, db_url, "create-admin", "bob", "--password-env", "WEAK_PW")
    monkeypatch.setenv("NAME_PW", "Carol#Admin2026")
    assert "username" in in_process(monkeypatch, db_url, "create-admin", "carol", "--password-env", "NAME_PW")
    assert "Username" in in_process(monkeypatch, db_url, "create-admin", "x", "--password-env", "ADMIN_PW")
    # A second account of an existing name.
    get_settings.cache_clear()
    monkeypatch.setenv("DATABASE_URL", db_url)
    main(["create-admin", "alice", "--password-env", "ADMIN_PW"])
    get_settings.cache_clear()
    assert "taken" in in_process(monkeypatch, db_url, "create-admin", "ALICE", "--password-env", "ADMIN_PW")
    users = asyncio.run(count(db_url, select(func.count()).select_from(User)))
    assert users == 1


def test_production_refuses_the_demo_secret(tmp_path: Path) -> None:
    result = run(f"sqlite+aiosqlite:///{tmp_path}/prod.db", "migrate", APP_MODE="production")
    assert result.returncode != 0
    assert "configuration refused" in result.stderr and "JWT_SECRET" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "prod.db").exists()


def test_production_refuses_a_short_secret(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/prod.db"
    message = in_process(monkeypatch, url, "migrate", APP_MODE="production", JWT_SECRET="too-short-secret")
    assert "configuration refused" in message and "JWT_SECRET" in message
    with pytest.raises(ValueError, match="JWT_SECRET"):
        make_settings(url, app_mode="production", jwt_secret=DEMO_JWT_SECRET)


async def test_production_refuses_to_start_with_demo_accounts(db_url: str) -> None:
    await seed(db_url)
    app = create_app(make_settings(db_url, **PRODUCTION))
    with pytest.raises(StartupRefused, match="demo accounts"):
        async with app.router.lifespan_context(app):
            pass
    # Demo mode starts on the same database.
    demo = create_app(make_settings(db_url))
    async with demo.router.lifespan_context(demo):
        pass


def test_serve_with_workers_needs_redis(tmp_path: Path) -> None:
    result = run(f"sqlite+aiosqlite:///{tmp_path}/serve.db", "serve", "--workers", "2", "--port", "0")
    assert result.returncode != 0
    assert "REDIS_URL" in result.stderr


def test_serve_keeps_idle_connections_longer_than_a_balancer_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """uvicorn's own default (5 s) is shorter than nginx's upstream keepalive_timeout (60 s): the balancer would send
    requests on connections the server is closing. `server.py serve` passes HTTP_KEEP_ALIVE_SECONDS (75 s)."""
    import uvicorn

    import cli
    from tests.conftest import make_settings

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: seen.update(kwargs))
    cli.cmd_serve(make_settings("sqlite+aiosqlite:///unused.db"), "127.0.0.1", 0, 1)
    assert seen["timeout_keep_alive"] == 75 > 60
    cli.cmd_serve(make_settings("sqlite+aiosqlite:///unused.db", http_keep_alive_seconds=120), "127.0.0.1", 0, 1)
    assert seen["timeout_keep_alive"] == 120


def test_serve_uses_the_protocol_that_refuses_at_the_door(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under overload most requests are refused by the HTTP protocol itself (schema/engine/door.py)."""
    import uvicorn

    import cli
    from schema.engine.door import AdmissionProtocol
    from tests.conftest import make_settings

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: seen.update(kwargs))
    cli.cmd_serve(make_settings("sqlite+aiosqlite:///unused.db"), "127.0.0.1", 0, 1)
    assert seen["http"] is AdmissionProtocol and seen["factory"] is True

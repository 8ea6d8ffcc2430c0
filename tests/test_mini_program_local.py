"""The mini-program path on a developer's machine: the demo WeChat stand-in, unconfigured WeChat as a clear
configuration error, `make run` loading the trusted documents, and `load-documents` failing in one line."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from core.db import Database
from core.errors import AppError, ErrorCode
from core.settings import Settings
from models.auth import LoginLog
from models.user import User
from resolvers.auth.wechat import openid_for, uses_demo_stand_in
from schema.engine.persisted import store_documents
from tests.conftest import GraphQLClient, error_codes

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "clients" / "mini-program" / "manifest.json"


def by_name(name: str) -> str:
    for digest, document in json.loads(MANIFEST.read_text(encoding="utf-8")).items():
        if re.match(rf"(query|mutation|subscription)\s+{name}\b", document):
            return str(digest)
    raise KeyError(name)


async def send(client: GraphQLClient, name: str, variables: dict[str, Any] | None = None, token: str = "") -> Any:
    """As the mini-program sends a document: its hash alone."""
    body: dict[str, Any] = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": by_name(name)}}}
    if variables:
        body["variables"] = variables
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return (await client.http.post("/graphql", json=body, headers=headers)).json()


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # demo mode (the default) with no WeChat credentials, as after a fresh clone; WeChat itself is unreachable
    return {"wechat_app_id": "", "wechat_app_secret": "", "wechat_api_base": "http://127.0.0.1:9"}


@pytest.fixture(autouse=True)
async def documents(client: GraphQLClient) -> None:
    await store_documents(client.services.db, "mini-program", json.loads(MANIFEST.read_text(encoding="utf-8")))
    await client.services.persisted.trusted.load()


async def test_demo_patient_logs_in_through_the_stand_in(client: GraphQLClient, db: Database) -> None:
    result = await send(client, "WechatLogin", {"code": "demo-patient"})
    assert "errors" not in result, result
    login = result["data"]["wechatLogin"]
    async with db.session() as session:
        patient = (await session.execute(select(User).where(User.username == "patient"))).scalar_one()
    assert patient.wechat_openid == "demo-patient-openid"
    token = login["accessToken"]
    record = await send(client, "MyRecord", token=token)
    assert "errors" not in record, record
    assert record["data"]["myRecord"]["name"]
    # the mini-program's session runs only its documents
    refused = await client.run("{ me { id } }", token=token)
    assert error_codes(refused) == ["PERSISTED_QUERY_REQUIRED"]


async def test_any_demo_code_is_a_new_account_and_other_codes_are_refused(client: GraphQLClient, db: Database) -> None:
    first = await send(client, "WechatLogin", {"code": "demo-newcomer"})
    again = await send(client, "WechatLogin", {"code": "demo-newcomer"})
    assert first["data"]["wechatLogin"]["user"]["id"] == again["data"]["wechatLogin"]["user"]["id"]
    assert first["data"]["wechatLogin"]["user"]["roles"] == []
    async with db.session() as session:
        created = (await session.execute(select(User).where(User.wechat_openid == "demo-newcomer-openid"))).all()
    assert len(created) == 1
    for code in ("wx-real-code", "demo-", "demo-patient; drop", "good-x"):
        result = await send(client, "WechatLogin", {"code": code})
        assert error_codes(result) == ["BAD_USER_INPUT"], code
        assert result["errors"][0]["extensions"]["field"] == "code"
    async with db.session() as session:
        failures = (await session.execute(select(LoginLog).where(LoginLog.success.is_(False)))).scalars().all()  # type: ignore[attr-defined]
    assert [f.reason for f in failures if f.method == "wechat"][-4:] == ["bad_user_input"] * 4


@pytest.mark.parametrize("settings_overrides", [{"wechat_app_id": "wx-real-app", "wechat_app_secret": ""}])
async def test_half_configured_wechat_is_a_configuration_error(client: GraphQLClient) -> None:
    result = await send(client, "WechatLogin", {"code": "demo-patient"})
    assert error_codes(result) == ["NOT_CONFIGURED"]
    assert result["errors"][0]["extensions"]["settings"] == ["WECHAT_APP_ID", "WECHAT_APP_SECRET"]
    assert "WECHAT_APP_SECRET" in result["errors"][0]["message"]


async def test_outside_demo_mode_unconfigured_wechat_is_not_configured() -> None:
    production = Settings(
        _env_file=None,  # type: ignore[call-arg]
        app_mode="production",
        jwt_secret="a-production-signing-key-of-forty-characters",
        data_encryption_keys=Fernet.generate_key().decode(),
        search_hash_key="a-production-search-hash-key-of-our-own",
    )
    assert not uses_demo_stand_in(production)
    with pytest.raises(AppError) as refused:
        await openid_for(production, "demo-patient")
    assert refused.value.code is ErrorCode.NOT_CONFIGURED
    configured_demo = Settings(_env_file=None, wechat_app_id="wx-app", wechat_app_secret="s")  # type: ignore[call-arg]
    assert not uses_demo_stand_in(configured_demo)  # with credentials, demo mode talks to WeChat


def test_make_run_loads_the_trusted_documents() -> None:
    plan = subprocess.run(
        ["make", "-n", "run", "PY=python"], cwd=ROOT, capture_output=True, text=True, check=False, timeout=60
    ).stdout
    lines = [line for line in plan.splitlines() if "server.py" in line]
    loads = "python server.py load-documents --client mini-program clients/mini-program/manifest.json"
    assert loads in lines, plan
    assert lines.index(loads) < next(i for i, line in enumerate(lines) if "server.py serve" in line)


def _load_documents(database_url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k.upper() not in {"APP_MODE", "TEST_DATABASE_URL"}}
    env.update(DATABASE_URL=database_url, LOG_LEVEL="WARNING")
    return subprocess.run(
        [sys.executable, str(ROOT / "server.py"), "load-documents", "--client", "mini-program", str(MANIFEST)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_load_documents_honours_database_url_and_fails_in_one_line(tmp_path: Path, database_url: str) -> None:
    missing = tmp_path / "nowhere.db"
    result = _load_documents(f"sqlite+aiosqlite:///{missing}", tmp_path)
    assert result.returncode == 1 and not missing.exists() and not (tmp_path / "followup.db").exists()
    assert len(result.stderr.strip().splitlines()) == 1 and "migrate" in result.stderr, result.stderr
    empty = tmp_path / "empty.db"
    empty.touch()
    result = _load_documents(f"sqlite+aiosqlite:///{empty}", tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "OperationalError" in result.stderr, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db"]
    # the migrated test database: loaded there, and nowhere else
    result = _load_documents(database_url, tmp_path)
    assert result.returncode == 0, result.stderr
    count = len(json.loads(MANIFEST.read_text(encoding="utf-8")))
    assert re.search(r"mini-program: \d+ documents added, \d+ already present", result.stdout)
    assert sum(int(n) for n in re.findall(r"(\d+) (?:documents added|already present)", result.stdout)) == count
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db"]

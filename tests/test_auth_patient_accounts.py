"""Patient accounts stay inside the mini-program's rules however they log in, and pending accounts have no
permissions (issue 22, item 6).

The rule (README, "Authentication"): a patient account may log in with a password, but every session of an
account holding the patient role runs only the mini-program's trusted documents, by hash, as a WeChat session
does; `completeProfile` gives a patient no console credentials; an account waiting for an administrator
(PENDING) has its roles withheld.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from core.db import Database
from core.security import verify_password
from models.user import User
from schema.engine.persisted import store_documents
from tests.conftest import DEMO_PASSWORD, GraphQLClient, error_codes
from tests.test_mini_program_local import MANIFEST, send

INTROSPECT = "{ __schema { queryType { fields { name } } } }"
CONSOLE_PASSWORD = "Console#Pass2026"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"wechat_app_id": "", "wechat_app_secret": ""}  # the demo WeChat stand-in


@pytest.fixture(autouse=True)
async def documents(client: GraphQLClient) -> None:
    await store_documents(client.services.db, "mini-program", json.loads(MANIFEST.read_text(encoding="utf-8")))
    await client.services.persisted.trusted.load()


async def test_a_patients_password_session_runs_only_the_trusted_documents(client: GraphQLClient) -> None:
    token = (await client.login("patient"))["accessToken"]  # a password login, as on the console
    for document in ("{ me { id } }", INTROSPECT, "{ myRecord { name phone } }"):
        result = await client.run(document, token=token)
        assert error_codes(result) == ["PERSISTED_QUERY_REQUIRED"], document
        assert "data" not in result or result["data"] is None
    me = await send(client, "Me", token=token)  # the mini-program's own document, by hash
    assert me["data"]["me"]["roles"] == [{"key": "patient", "name": me["data"]["me"]["roles"][0]["name"]}]
    record = await send(client, "MyRecord", token=token)
    assert "errors" not in record and record["data"]["myRecord"]["name"]


async def test_staff_password_sessions_run_any_document(client: GraphQLClient) -> None:
    token = (await client.login("physician"))["accessToken"]
    assert "errors" not in await client.run("{ me { id } }", token=token)
    assert (await client.run(INTROSPECT, token=token))["data"]["__schema"]["queryType"]["fields"]


async def test_complete_profile_gives_a_patient_no_console_credentials(client: GraphQLClient, db: Database) -> None:
    login = await send(client, "WechatLogin", {"code": "demo-patient"})
    token = login["data"]["wechatLogin"]["accessToken"]
    async with db.session() as session:
        before = (await session.execute(select(User).where(User.wechat_openid == "demo-patient-openid"))).scalar_one()
    ask = {"input": {"displayName": "赵患者", "consoleUsername": "zhao.console", "consolePassword": CONSOLE_PASSWORD}}
    refused = await send(client, "CompleteProfile", ask, token=token)
    assert error_codes(refused) == ["FORBIDDEN"]
    async with db.session() as session:
        after = await session.get(User, before.id)
    assert after is not None
    assert (after.username, after.password_hash, after.status, after.display_name) == (
        before.username,
        before.password_hash,
        before.status,
        before.display_name,
    )
    assert (await client.run('mutation { login(username: "zhao.console", password: "x") { accessToken } }'))["errors"]
    # the profile itself may still be completed
    done = await send(client, "CompleteProfile", {"input": {"displayName": "赵患者 Zhao"}}, token=token)
    assert done["data"]["completeProfile"]["displayName"] == "赵患者 Zhao"


async def test_a_pending_account_has_no_permissions(client: GraphQLClient, db: Database) -> None:
    # A newcomer asks for a console account: pending until an administrator assigns roles.
    login = await send(client, "WechatLogin", {"code": "demo-nurse-wang"})
    token = login["data"]["wechatLogin"]["accessToken"]
    ask = {"input": {"displayName": "王芳", "consoleUsername": "nurse.wang", "consolePassword": CONSOLE_PASSWORD}}
    assert "errors" not in await send(client, "CompleteProfile", ask, token=token)
    async with db.session() as session:
        nurse = (await session.execute(select(User).where(User.username == "nurse.wang"))).scalar_one()
    assert nurse.status == "pending" and verify_password(nurse.password_hash, CONSOLE_PASSWORD)

    # A pending account holding a role (given outside the API) still gets nothing from it, on every session.
    async with db.transaction() as session:
        physician = (await session.execute(select(User).where(User.username == "physician"))).scalar_one()
        physician.status = "pending"
        session.add(physician)
    client.forget("physician")
    for username, password in (("physician", DEMO_PASSWORD), ("nurse.wang", CONSOLE_PASSWORD)):
        console = await client.login(username, password)
        fields = (await client.run(INTROSPECT, token=console["accessToken"]))["data"]["__schema"]["queryType"]["fields"]
        names = {field["name"] for field in fields}
        assert "patients" not in names and "me" in names, username
        assert error_codes(await client.run("{ patients(first: 1) { totalCount } }", token=console["accessToken"])) == [
            "GRAPHQL_VALIDATION_FAILED"
        ]
    # Once active again (an administrator assigns roles), the role counts at once.
    async with db.transaction() as session:
        physician = (await session.execute(select(User).where(User.username == "physician"))).scalar_one()
        physician.status = "active"
        session.add(physician)
    token = (await client.login("physician"))["accessToken"]
    assert "errors" not in await client.run("{ patients(first: 1) { totalCount } }", token=token)

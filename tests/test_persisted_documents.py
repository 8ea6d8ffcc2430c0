"""Trusted documents of the mini-program: manifest, validation against the patient's schema, loading, and
the rule that a mini-program token runs only those documents."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from graphql import OperationType, parse, validate

import resolvers.auth.wechat
from cli import cmd_load_documents
from clients.build_manifest import build, render
from core.db import Database
from schema.engine.persisted import store_documents
from server import ROOT
from tests.conftest import DEMO_PASSWORD, GraphQLClient, error_codes, make_settings

CLIENT_DIR = ROOT / "clients" / "mini-program"
MANIFEST = CLIENT_DIR / "manifest.json"
# Operations the mini-program runs before it has a token (validated against the anonymous schema).
ANONYMOUS_OPERATIONS = {"WechatLogin", "Login", "RefreshToken"}


def manifest() -> dict[str, str]:
    data: dict[str, str] = json.loads(MANIFEST.read_text())
    return data


def by_name(name: str) -> tuple[str, str]:
    for digest, document in manifest().items():
        if re.match(rf"(query|mutation|subscription)\s+{name}\b", document):
            return digest, document
    raise KeyError(name)


def pq(digest: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


def test_manifest_is_up_to_date() -> None:
    assert MANIFEST.read_text() == render(build(CLIENT_DIR)), "run: python clients/build_manifest.py"
    result = subprocess.run(
        [sys.executable, "clients/build_manifest.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout
    for digest, document in manifest().items():
        assert hashlib.sha256(document.encode()).hexdigest() == digest
    names = {path.stem for path in CLIENT_DIR.glob("*.graphql")}
    assert {"wechatLogin", "login", "me", "completeProfile", "changePassword", "logout"} <= names


async def test_every_document_validates_against_the_patient_schema(client: GraphQLClient) -> None:
    registry = client.services.registry
    patient = registry.for_roles(frozenset({"authenticated", "patient"}))
    anonymous = registry.for_roles(frozenset({"anonymous"}))
    for path in sorted(CLIENT_DIR.glob("*.graphql")):
        document = parse(path.read_text())
        [operation] = document.definitions
        name = operation.name.value  # type: ignore[attr-defined]
        target = anonymous if name in ANONYMOUS_OPERATIONS else patient
        if operation.operation is OperationType.SUBSCRIPTION:  # type: ignore[attr-defined]
            target = client.services.socket_schemas.for_roles(frozenset({"authenticated", "patient"}))
        errors = validate(target._schema, document)
        assert not errors, f"{path.name}: {[error.message for error in errors]}"


def test_load_documents_command(database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = make_settings(database_url)
    cmd_load_documents(settings, "mini-program", str(MANIFEST), replace=False)
    out = capsys.readouterr().out
    assert f"{len(manifest())} documents added" in out or "already present" in out
    cmd_load_documents(settings, "mini-program", str(MANIFEST), replace=False)
    assert f"0 documents added, {len(manifest())} already present" in capsys.readouterr().out
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"0" * 64: "query X { me { id } }"}))
    with pytest.raises(SystemExit, match="does not match"):
        cmd_load_documents(settings, "mini-program", str(bad), replace=False)
    bad.write_text("[1, 2]")
    with pytest.raises(SystemExit, match="not a manifest"):
        cmd_load_documents(settings, "mini-program", str(bad), replace=False)


async def _load(database_url: str) -> None:
    db = Database(database_url)
    try:
        await store_documents(db, "mini-program", manifest())
    finally:
        await db.dispose()


@pytest.fixture
async def mini(client: GraphQLClient, database_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The manifest loaded, and a mini-program token got the mini-program's way: wechatLogin by hash."""
    await _load(database_url)

    async def fake_exchange(_settings: Any, code: str) -> str:
        assert code == "wx-code-1"
        return "demo-patient-openid"

    monkeypatch.setattr(resolvers.auth.wechat, "exchange_code", fake_exchange)
    digest, _ = by_name("WechatLogin")
    response = await client.http.post(
        "/graphql", json={"extensions": pq(digest), "variables": {"code": "wx-code-1"}, "operationName": "WechatLogin"}
    )
    body = response.json()
    assert "errors" not in body, body
    return {"Authorization": f"Bearer {body['data']['wechatLogin']['accessToken']}"}


async def test_mini_program_runs_its_documents_by_hash(client: GraphQLClient, mini: dict[str, str]) -> None:
    digest, _ = by_name("Me")
    response = await client.http.post("/graphql", json={"extensions": pq(digest)}, headers=mini)
    assert response.json()["data"]["me"]["hasWechat"] is True
    # GET too, for queries
    response = await client.http.get("/graphql", params={"extensions": json.dumps(pq(digest))}, headers=mini)
    assert response.json()["data"]["me"]["hasWechat"] is True
    # hash and query together are fine when the hash is one of its documents
    _, document = by_name("Me")
    response = await client.http.post("/graphql", json={"query": document, "extensions": pq(digest)}, headers=mini)
    assert response.json()["data"]["me"]["hasWechat"] is True


async def test_mini_program_may_not_send_other_queries(client: GraphQLClient, mini: dict[str, str]) -> None:
    response = await client.http.post("/graphql", json={"query": "{ me { id } }"}, headers=mini)
    assert error_codes(response.json()) == ["PERSISTED_QUERY_REQUIRED"]
    assert "data" not in response.json()
    query = "query Other { me { id username } }"
    digest = hashlib.sha256(query.encode()).hexdigest()
    response = await client.http.post("/graphql", json={"query": query, "extensions": pq(digest)}, headers=mini)
    assert error_codes(response.json()) == ["PERSISTED_QUERY_REQUIRED"]
    response = await client.http.post("/graphql", json={"extensions": pq(digest)}, headers=mini)
    assert error_codes(response.json()) == ["PERSISTED_QUERY_NOT_FOUND"]
    # a document someone else registered automatically is not the mini-program's either
    physician = {"Authorization": f"Bearer {await client.token('physician')}"}
    response = await client.http.post("/graphql", json={"query": query, "extensions": pq(digest)}, headers=physician)
    assert response.json()["data"]["me"]["username"] == "physician"
    response = await client.http.post("/graphql", json={"extensions": pq(digest)}, headers=mini)
    assert error_codes(response.json()) == ["PERSISTED_QUERY_NOT_FOUND"]  # not looked up among automatic ones
    assert "data" not in response.json()
    # batches are checked item by item
    response = await client.http.post("/graphql", json=[{"query": "{ me { id } }"}], headers=mini)
    assert error_codes(response.json()[0]) == ["PERSISTED_QUERY_REQUIRED"]


async def test_anyone_may_run_trusted_documents_by_hash(client: GraphQLClient, database_url: str) -> None:
    await _load(database_url)
    digest, _ = by_name("Login")
    response = await client.http.post(
        "/graphql",
        json={"extensions": pq(digest), "variables": {"username": "physician", "password": DEMO_PASSWORD}},
    )
    assert response.json()["data"]["login"]["accessToken"]
    # the console keeps sending ordinary queries
    token = await client.token("physician")
    assert (await client.data("{ me { username } }", token=token))["me"]["username"] == "physician"


async def test_mini_program_session_survives_logout_only_by_hash(client: GraphQLClient, mini: dict[str, str]) -> None:
    digest, _ = by_name("Logout")
    response = await client.http.post("/graphql", json={"extensions": pq(digest)}, headers=mini)
    assert response.json()["data"]["logout"] is True
    response = await client.http.post("/graphql", json={"extensions": pq(by_name("Me")[0])}, headers=mini)
    assert response.status_code == 401

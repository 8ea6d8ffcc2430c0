"""CORS for the configured console origins only."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import GraphQLClient

CONSOLE = "https://console.hospital.example"


def preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }


@pytest.mark.parametrize("settings_overrides", [{"cors_origins": [CONSOLE, "http://localhost:5173"]}])
async def test_console_origins_may_call_the_api(client: GraphQLClient, settings_overrides: dict[str, Any]) -> None:
    response = await client.http.options("/graphql", headers=preflight(CONSOLE))
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == CONSOLE
    assert "authorization" in response.headers["access-control-allow-headers"].lower()
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "access-control-allow-credentials" not in response.headers
    response = await client.http.post("/graphql", json={"query": "{ __typename }"}, headers={"Origin": CONSOLE})
    assert response.headers["access-control-allow-origin"] == CONSOLE
    assert "x-request-id" in response.headers["access-control-expose-headers"].lower()


@pytest.mark.parametrize("settings_overrides", [{"cors_origins": [CONSOLE]}])
async def test_other_origins_are_not_allowed(client: GraphQLClient, settings_overrides: dict[str, Any]) -> None:
    response = await client.http.options("/graphql", headers=preflight("https://evil.example"))
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers
    response = await client.http.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Origin": "https://evil.example"}
    )
    assert "access-control-allow-origin" not in response.headers


async def test_no_cors_by_default(client: GraphQLClient) -> None:
    response = await client.http.options("/graphql", headers=preflight(CONSOLE))
    assert "access-control-allow-origin" not in response.headers
    response = await client.http.post("/graphql", json={"query": "{ __typename }"}, headers={"Origin": CONSOLE})
    assert "access-control-allow-origin" not in response.headers


def test_cors_origins_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.settings import Settings

    monkeypatch.setenv("CORS_ORIGINS", f"{CONSOLE}, http://localhost:5173")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.cors_origins == [CONSOLE, "http://localhost:5173"]

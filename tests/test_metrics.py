"""/metrics: Prometheus text for an admin's token or an allowed network, refused to anyone else."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import GraphQLClient


async def test_metrics_for_admin_token_only(client: GraphQLClient) -> None:
    await client.run("{ serverInfo { name } }")
    assert (await client.http.get("/metrics")).status_code == 403
    physician = await client.token("physician")
    assert (await client.http.get("/metrics", headers={"Authorization": f"Bearer {physician}"})).status_code == 403
    admin = await client.token("admin")
    response = await client.http.get("/metrics", headers={"Authorization": f"Bearer {admin}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'followup_http_requests_total{route="/graphql",status="200"}' in response.text
    assert "followup_http_request_seconds_bucket" in response.text


@pytest.mark.parametrize("settings_overrides", [{"metrics_networks": ["127.0.0.0/8"]}])
async def test_metrics_for_an_allowed_network(client: GraphQLClient, settings_overrides: dict[str, Any]) -> None:
    response = await client.http.get("/metrics")
    assert response.status_code == 200 and "followup_role_schemas" in response.text

"""The loopback deployment of deploy/cluster.py (three Galera nodes, Redis, instances A and B, nginx), started once
for the cluster tests; they run only with RUN_CLUSTER=1 (`make cluster-test`), never in `make test`."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.cluster import DEMO_PASSWORD, Cluster

RUN = bool(os.environ.get("RUN_CLUSTER"))
LOGIN = "mutation ($u: String!, $p: String!) { login(username: $u, password: $p) { accessToken } }"
# what the instances run with in these tests, beyond deploy/cluster.py's own settings
APP_SETTINGS: dict[str, str] = {}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.cluster)
            if not RUN:
                item.add_marker(pytest.mark.skip(reason="cluster: RUN_CLUSTER=1 (make cluster-test)"))


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    # under /tmp itself: mariadbd runs as `mysql` and must reach its data directories
    state = Path(tempfile.mkdtemp(prefix="followup-cluster-test-"))
    running = Cluster(state, app_settings=APP_SETTINGS)
    try:
        running.start(log=lambda line: print(f"[cluster] {line}", flush=True))
        yield running
    finally:
        running.stop()
        if not os.environ.get("KEEP_CLUSTER_STATE"):
            shutil.rmtree(state, ignore_errors=True)


class Api:
    """GraphQL over HTTP to one address (the balancer, or one instance)."""

    def __init__(self, url: str, timeout: float = 15.0) -> None:
        self.url = url
        self.http = httpx.AsyncClient(base_url=url, timeout=timeout)

    async def post(self, query: str, variables: dict[str, Any] | None = None, token: str | None = None, **extra: Any):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        body: dict[str, Any] = {"query": query, "variables": variables or {}, **extra}
        return await self.http.post("/graphql", json=body, headers=headers)

    async def run(self, query: str, variables: dict[str, Any] | None = None, token: str | None = None) -> Any:
        return (await self.post(query, variables, token)).json()

    async def data(self, query: str, variables: dict[str, Any] | None = None, token: str | None = None) -> Any:
        result = await self.run(query, variables, token)
        assert "errors" not in result, result
        return result["data"]

    async def token(self, username: str, password: str = DEMO_PASSWORD) -> str:
        return str((await self.data(LOGIN, {"u": username, "p": password}))["login"]["accessToken"])

    async def close(self) -> None:
        await self.http.aclose()


def codes(result: dict[str, Any]) -> list[str]:
    return [error.get("extensions", {}).get("code") for error in result.get("errors", [])]

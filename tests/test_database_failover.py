"""DATABASE_URL's `failover` hosts: an instance whose own database node cannot be reached serves from the next one
(README: Configuration; the cluster deployment gives each instance the other Galera nodes)."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from core.db import Failover, split_failover
from server import create_app
from tests.conftest import GraphQLClient, make_settings, reset_database

pytestmark = pytest.mark.skipif(
    make_url(os.environ.get("TEST_DATABASE_URL", "sqlite://")).get_backend_name() != "mysql",
    reason="failover hosts are a MySQL/MariaDB setting (TEST_DATABASE_URL)",
)


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _failing_over(database_url: str) -> str:
    real = make_url(database_url)
    return (
        real.set(host="127.0.0.1", port=_closed_port())
        .update_query_dict({"failover": f"{real.host}:{real.port or 3306}"})
        .render_as_string(hide_password=False)
    )


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[Any]:
    await reset_database(database_url)
    application = create_app(make_settings(_failing_over(database_url)))
    async with application.router.lifespan_context(application):
        yield application


async def test_an_instance_whose_node_is_down_serves_from_the_next(client: GraphQLClient) -> None:
    tokens = await client.login("chief")
    assert tokens["accessToken"]
    page = await client.data("{ patients(first: 3) { edges { node { id name } } } }", as_="chief")
    assert len(page["patients"]["edges"]) == 3
    failover = next(listener for listener in _listeners(client.services.db.engine) if isinstance(listener, Failover))
    down = failover.hosts[0]
    assert failover._down_until.get(down, 0) > 0  # the dead first host is skipped for a while, not retried per connect


def _listeners(engine: Any) -> list[Any]:
    return list(engine.sync_engine.dialect.dispatch.do_connect)


def test_the_url_names_every_host_in_order() -> None:
    url, hosts = split_failover("mysql+aiomysql://u:p@node1:3307/db?charset=utf8mb4&failover=node2:3308,node3")
    assert hosts == [("node1", 3307), ("node2", 3308), ("node3", 3306)]
    assert "failover" not in url and make_url(url).query == {"charset": "utf8mb4"} and make_url(url).password == "p"
    assert split_failover("mysql+aiomysql://u@h/db") == ("mysql+aiomysql://u@h/db", [])

"""The server tunes the garbage collector for its life and restores it on shutdown (core/gctune.py)."""

from __future__ import annotations

import gc

import httpx

from server import create_app
from tests.conftest import make_settings, reset_database


async def test_the_server_freezes_start_up_objects_and_restores_on_shutdown(database_url: str) -> None:
    await reset_database(database_url)
    before_threshold, before_frozen = gc.get_threshold(), gc.get_freeze_count()
    app = create_app(make_settings(database_url, gc_freeze=True, gc_threshold0=12_345))
    async with app.router.lifespan_context(app):
        assert gc.get_threshold()[0] == 12_345
        assert gc.get_freeze_count() > before_frozen  # start-up objects are out of the collector's walks
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            response = await http.post("/graphql", json={"query": "{ __typename }"})
        assert response.json() == {"data": {"__typename": "Query"}}
    assert gc.get_threshold() == before_threshold
    assert gc.get_freeze_count() == before_frozen

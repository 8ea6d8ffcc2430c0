"""The door (schema/engine/door.py): uvicorn's protocol answers admission's refusals itself, before a request goes in.
The app served by uvicorn on a loopback port with that protocol; requests written on raw sockets, so keep-alive,
request bodies, pipelining and HTTP/1.0 are what a client sends. Under overload beyond the door's pace (or at the
ceiling) a GraphQL request is answered 503 OVERLOADED with Retry-After in the media type it accepts, nothing of it
runs, and the connection serves the next request; a browser's request (Origin) goes through the app and its CORS."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn

from schema.engine import admission as admission_module
from schema.engine.admission import Admission
from schema.engine.door import AdmissionProtocol
from schema.engine.metrics import REGISTRY
from tests.conftest import GraphQLClient

CREATE = "mutation ($n: String!) { createPosition(name: $n) { id name } }"
POSITIONS = "{ positions { name } }"
CONSOLE = "http://console.example"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"admission_queue_seconds": 30.0, "cors_origins": [CONSOLE], "metrics_networks": ["127.0.0.1/32"]}


@pytest.fixture
async def port(app: Any) -> AsyncIterator[int]:
    """The app (lifespan already running) served by uvicorn with the door's protocol, bound to its admission."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        number = int(probe.getsockname()[1])
    protocol = AdmissionProtocol.serving(app.state.services.admission)
    config = uvicorn.Config(app, host="127.0.0.1", port=number, lifespan="off", log_level="warning", http=protocol)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
        await asyncio.sleep(0.02)
    yield number
    server.should_exit = True
    await task


def overloaded(admission: Admission, *, tokens: float, monkeypatch: pytest.MonkeyPatch, full: bool = True) -> None:
    """Overload seen now, with the door's pace measured as (almost) nothing and `tokens` left in its bucket (the pace is
    not measured again during the test); `full`: every slot taken, as by requests running (a request finding a slot
    free goes in whatever the bucket holds)."""
    monkeypatch.setattr(admission_module, "DEMAND_WINDOW_SECONDS", 3600.0)
    admission.overload(time.perf_counter())
    admission._pace, admission._tokens = 1e-9, tokens
    if full:
        admission.running += admission.allowed


def passed(admission: Admission) -> None:
    """The overload over and the slots taken by `overloaded` given back."""
    admission._overloaded_until = float("-inf")
    admission.running -= admission.allowed


def request(
    body: dict[str, Any] | None,
    token: str,
    *,
    accept: str = "application/graphql-response+json",
    version: str = "1.1",
    extra: str = "",
    target: str = "/graphql",
) -> bytes:
    head = f"{'POST' if body else 'GET'} {target} HTTP/{version}\r\nHost: 127.0.0.1\r\nAccept: {accept}\r\n"
    head += f"Authorization: Bearer {token}\r\n{extra}"
    if body is None:
        return (head + "\r\n").encode()
    payload = json.dumps(body).encode()
    return (head + f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n").encode() + payload


async def response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], Any]:
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)).decode()
    status_line, *lines = head.strip().split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), timeout=10)
    json_body = headers["content-type"].startswith("application/")
    return int(status_line.split()[1]), headers, json.loads(body) if json_body else body.decode()


def sample(status: str) -> float:
    return REGISTRY.get_sample_value("followup_http_requests_total", {"route": "/graphql", "status": status}) or 0.0


async def names(client: GraphQLClient) -> set[str]:
    return {row["name"] for row in (await client.data(POSITIONS, as_="admin"))["positions"]}


async def test_beyond_the_pace_the_door_answers_503_nothing_runs_and_the_connection_goes_on(
    port: int, client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    admission = client.services.admission
    token = await client.token("admin")
    before = (admission.refused_at_door, admission.arrivals, admission.answered, sample("503"))
    overloaded(admission, tokens=0.0, monkeypatch=monkeypatch)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request({"query": CREATE, "variables": {"n": "门口拒绝"}}, token))
    status, headers, body = await response(reader)
    assert status == 503 and headers["retry-after"] == "1" and headers["cache-control"] == "no-store"
    assert headers["content-type"] == "application/graphql-response+json"
    assert body["errors"][0]["extensions"] == {"code": "OVERLOADED", "retryAfter": 1}
    assert "connection" not in headers  # kept alive
    writer.write(request({"query": POSITIONS}, token, accept="application/json"))  # same connection, plain JSON
    status, headers, body = await response(reader)
    assert status == 503 and headers["content-type"] == "application/json"
    assert body["errors"][0]["extensions"]["code"] == "OVERLOADED"
    assert admission.refused_at_door == before[0] + 2 and admission.arrivals == before[1] + 2
    assert admission.answered == before[2]  # neither ran
    assert sample("503") == before[3] + 2  # counted in /metrics as the app's 503s are
    assert (await client.http.get("/readyz")).json()["requests"] == "saturated"
    metrics = (await client.http.get("/metrics")).text  # where it shed, for the operator
    assert f'followup_requests_shed_total{{at="door"}} {float(admission.refused_at_door)}' in metrics
    assert admission.refused_at_door > admission.shed - admission.refused_at_door  # so the labels tell them apart
    assert f'followup_requests_shed_total{{at="app"}} {float(admission.shed - admission.refused_at_door)}' in metrics

    passed(admission)  # the same connection is served again
    writer.write(request({"query": CREATE, "variables": {"n": "过后"}}, token))
    status, _, body = await response(reader)
    assert status == 200 and body["data"]["createPosition"]["name"] == "过后"
    writer.close()
    assert await names(client) >= {"过后"} and "门口拒绝" not in await names(client)  # the refused write never ran


async def test_pipelined_requests_are_answered_in_order_by_the_app_and_by_the_door(
    port: int, client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two requests in one write, every slot taken: the first (a browser's) goes into the app and is shed there after
    its wait; the second, decided at the door only when the first has answered, is refused there. Their answers come
    back in order on the one connection; after the overload two pipelined writes run, in order."""
    admission = client.services.admission
    token = await client.token("admin")
    overloaded(admission, tokens=0.0, monkeypatch=monkeypatch)
    shed, at_door = admission.shed, admission.refused_at_door
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    browser = request({"query": CREATE, "variables": {"n": "浏览器"}}, token, extra=f"Origin: {CONSOLE}\r\n")
    writer.write(browser + request({"query": CREATE, "variables": {"n": "后到"}}, token))
    first = await response(reader)
    second = await response(reader)
    assert first[0] == second[0] == 503
    assert first[1]["access-control-allow-origin"] == CONSOLE and "access-control-allow-origin" not in second[1]
    assert first[2]["errors"][0]["extensions"]["code"] == second[2]["errors"][0]["extensions"]["code"] == "OVERLOADED"
    assert admission.shed == shed + 2 and admission.refused_at_door == at_door + 1
    metrics = (
        await client.http.get("/metrics")
    ).text  # the browser's shed counted as the app's, the other's at the door
    app_shed, door_shed = admission.shed - admission.refused_at_door, admission.refused_at_door
    assert f'followup_requests_shed_total{{at="app"}} {float(app_shed)}' in metrics
    assert f'followup_requests_shed_total{{at="door"}} {float(door_shed)}' in metrics
    passed(admission)
    one, two = (request({"query": CREATE, "variables": {"n": name}}, token) for name in ("先到", "再到"))
    writer.write(one + two)
    assert [(await response(reader))[2]["data"]["createPosition"]["name"] for _ in range(2)] == ["先到", "再到"]
    writer.close()
    found = await names(client)
    assert {"先到", "再到"} <= found and not {"浏览器", "后到"} & found


async def test_http_1_0_is_refused_with_connection_close(
    port: int, client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = await client.token("admin")
    overloaded(client.services.admission, tokens=0.0, monkeypatch=monkeypatch)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request({"query": POSITIONS}, token, version="1.0"))
    status, headers, _ = await response(reader)
    assert status == 503 and headers["connection"] == "close"
    assert await asyncio.wait_for(reader.read(), timeout=10) == b""  # the server closed the connection
    writer.close()


@pytest.mark.parametrize("case", ["browser", "no pace", "free slot"])
async def test_under_overload_the_app_decides_for_a_browser_without_a_pace_and_with_a_slot_free(
    case: str, port: int, client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The door does not answer a request with an Origin (its 503 would lack CORS headers, hiding it from the
    console), nor any with ADMISSION_DOOR_PACE=0, nor one that finds a slot free (after a flood, the pace measured
    before its end would refuse a lone client): the app's admission decides. Every slot taken, it sheds them after
    their wait (and CORS adds its header to the browser's 503); with a slot free, the request runs."""
    admission = client.services.admission
    token = await client.token("admin")
    overloaded(admission, tokens=0.0, monkeypatch=monkeypatch, full=case != "free slot")
    if case == "no pace":
        monkeypatch.setattr(admission, "door_pace", 0.0)
    refused = admission.refused_at_door
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    origin = f"Origin: {CONSOLE}\r\n" if case == "browser" else ""
    writer.write(request({"query": POSITIONS}, token, extra=origin))
    status, headers, body = await response(reader)
    if case == "free slot":
        assert status == 200 and "positions" in body["data"]
    else:
        assert status == 503 and body["errors"][0]["extensions"]["code"] == "OVERLOADED"
    assert headers.get("access-control-allow-origin") == (CONSOLE if case == "browser" else None)
    assert admission.refused_at_door == refused
    writer.close()
    if case != "free slot":
        passed(admission)


async def test_at_the_ceiling_the_door_refuses_graphql_and_passes_other_paths(
    port: int, client: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    admission = client.services.admission
    token = await client.token("admin")
    monkeypatch.setattr(admission, "limit", 0)  # every slot taken (MAX_REQUESTS_IN_FLIGHT reached)
    assert not admission.overloaded(time.perf_counter())
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request({"query": POSITIONS}, token))
    status, _, body = await response(reader)
    assert status == 503 and body["errors"][0]["extensions"]["code"] == "OVERLOADED"
    assert admission.overloaded(time.perf_counter())  # a shed at the ceiling is overload, as in the app
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")  # not a guarded path: the app answers
    status, _, body = await response(reader)
    assert status == 200 and body == "ok"
    writer.close()


async def test_the_served_app_hands_its_admission_to_the_protocol(app: Any) -> None:
    """`server.py serve` runs the lifespan: its state (which uvicorn gives the protocol) holds the admission."""
    assert app.state.lifespan == {"admission": app.state.services.admission}

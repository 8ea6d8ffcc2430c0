"""Subscriptions: one message fanned out to 1,000 open `messageAdded` subscriptions, ours beside a bare broadcaster.

    python bench/wl_subscriptions.py [--subscribers 1000] [--messages 5]

Ours (`server.py serve`, one worker, on the workloads' database, bench/wl_common.py): N websockets
(graphql-transport-ws), each authenticated in `connection_init` with the chief's token and subscribed to
`messageAdded` of the demo conversation the chief takes part in (MAX_SOCKETS_PER_USER raised to N for the run:
one account holds every socket; the default is 8 per account). Each message is sent by the chief
(`sendMessage` over HTTP); every subscriber's delivery is a full one: the session and scope re-checked, the
message loaded through the viewer's access rules and the read recorded in the audit trail. The floor
(bench/ws_floor.py): the same N sockets on a minimal `websockets` server that sends the same payload bytes (ours'
delivered payload, captured) to every subscription, no token, no database. Per message the clock starts when the
send leaves the client; per delivery the latency is its arrival. Reported: p50/p99 delivery latency, deliveries per
second (N x messages / the sum of the fan-out windows, send to last arrival), and the count: nothing may be lost.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import time
from collections import defaultdict
from typing import Any

import httpx
import orjson
from common import BENCH, PYTHON, encode_id  # type: ignore[import-not-found]
from live import process_cpu  # type: ignore[import-not-found]
from websockets.asyncio.client import ClientConnection, connect
from wl_common import WORK, Proc, free_port, load_average, log, login, prepare  # type: ignore[import-not-found]

SUBSCRIPTION = "subscription($c: ID!) { messageAdded(conversationId: $c) { id kind text sentAt } }"
SEND = "mutation($c: ID!, $t: String) { sendMessage(conversationId: $c, text: $t) { id } }"
CONVERSATION = encode_id("Conversation", 1)  # the demo conversation: a patient of Colorectal Surgery and the chief


class Fanout:
    """N subscriber sockets and when each delivery arrived, by message id."""

    def __init__(self) -> None:
        self.sockets: list[ClientConnection] = []
        self.readers: list[asyncio.Task[None]] = []
        self.arrivals: dict[str, list[float]] = defaultdict(list)
        self.payload: Any = None
        self.errors: list[str] = []

    async def _read(self, socket: ClientConnection) -> None:
        async for raw in socket:
            message = orjson.loads(raw)
            if message.get("type") == "next":
                data = (message.get("payload") or {}).get("data") or {}
                added = data.get("messageAdded")
                if added is None:
                    self.errors.append(str(message)[:200])
                    continue
                self.arrivals[added["id"]].append(time.perf_counter())
                self.payload = message["payload"]
            elif message.get("type") in ("error", "complete"):
                self.errors.append(str(message)[:200])

    async def _open_one(self, url: str, token: str) -> None:
        socket = await connect(url, subprotocols=["graphql-transport-ws"], max_queue=None, open_timeout=60)  # type: ignore[list-item]
        init = {"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}
        await socket.send(orjson.dumps(init).decode())
        ack = orjson.loads(await asyncio.wait_for(socket.recv(), 60))
        if ack.get("type") != "connection_ack":
            raise SystemExit(f"no connection_ack: {ack}")
        subscribe = {"query": SUBSCRIPTION, "variables": {"c": CONVERSATION}}
        await socket.send(orjson.dumps({"id": "1", "type": "subscribe", "payload": subscribe}).decode())
        self.sockets.append(socket)
        self.readers.append(asyncio.create_task(self._read(socket)))

    async def open(self, url: str, token: str, count: int, at_once: int = 50) -> None:
        for low in range(0, count, at_once):
            await asyncio.gather(*(self._open_one(url, token) for _ in range(min(at_once, count - low))))

    async def wait_for(self, key: str, count: int, seconds: float) -> list[float]:
        deadline = time.perf_counter() + seconds
        while len(self.arrivals.get(key, ())) < count and time.perf_counter() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        return self.arrivals.get(key, [])

    async def close(self) -> None:
        for task in self.readers:
            task.cancel()
        await asyncio.gather(*(socket.close() for socket in self.sockets), return_exceptions=True)


def summary(latencies: list[float], windows: list[float], expected: int) -> dict[str, Any]:
    ordered = sorted(latencies)
    pick = lambda share: round(1000 * ordered[min(len(ordered) - 1, int(len(ordered) * share))], 1)  # noqa: E731
    return {
        "delivered": len(ordered),
        "expected": expected,
        "lost": expected - len(ordered),
        "p50_ms": pick(0.5) if ordered else None,
        "p99_ms": pick(0.99) if ordered else None,
        "max_ms": round(1000 * ordered[-1], 1) if ordered else None,
        "mean_window_ms": round(1000 * sum(windows) / max(1, len(windows)), 1),
        "deliveries_per_second": round(len(ordered) / max(sum(windows), 1e-9)),
    }


async def measure_ours(url: str, token: str, subscribers: int, messages: int) -> tuple[dict[str, Any], Any]:
    fanout = Fanout()
    ws_url = url.replace("http://", "ws://") + "/graphql"
    await fanout.open(ws_url, token, subscribers)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120) as http:

        async def send(text: str) -> tuple[str, float]:
            started = time.perf_counter()
            response = await http.post("/graphql", json={"query": SEND, "variables": {"c": CONVERSATION, "t": text}})
            return response.json()["data"]["sendMessage"]["id"], started

        key, _ = await send("warm-up: every subscription is live once this arrives everywhere")
        live = len(await fanout.wait_for(key, subscribers, 300))
        latencies, windows = [], []
        for number in range(messages):
            key, started = await send(f"bench notice {number}")
            arrived = await fanout.wait_for(key, live, 300)
            latencies += [moment - started for moment in arrived]
            windows.append(max(arrived, default=started) - started)
    payload = fanout.payload
    errors = fanout.errors[:5]
    await fanout.close()
    result = summary(latencies, windows, live * messages)
    result.update(subscribed=live, errors=errors)
    return result, payload


async def measure_floor(port: int, payload: Any, subscribers: int, messages: int) -> dict[str, Any]:
    fanout = Fanout()
    ws_url = f"ws://127.0.0.1:{port}/"
    await fanout.open(ws_url, "none", subscribers)
    control = await connect(ws_url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]

    async def send(key: str) -> float:
        body = {**payload, "data": {"messageAdded": {**payload["data"]["messageAdded"], "id": key}}}
        started = time.perf_counter()
        await control.send(orjson.dumps({"type": "publish", "payload": body}).decode())
        await control.recv()
        return started

    await send("warm-up")
    live = len(await fanout.wait_for("warm-up", subscribers, 60))
    latencies, windows = [], []
    for number in range(messages):
        key = f"floor-{number}"
        started = await send(key)
        arrived = await fanout.wait_for(key, live, 60)
        latencies += [moment - started for moment in arrived]
        windows.append(max(arrived, default=started) - started)
    await control.close()
    await fanout.close()
    result = summary(latencies, windows, live * messages)
    result.update(subscribed=live, errors=fanout.errors[:5])
    return result


def run(subscribers: int = 1000, messages: int = 5) -> dict[str, Any]:
    prepare()
    results: dict[str, Any] = {"subscribers": subscribers, "messages": messages, "load_average_before": load_average()}
    with Proc("ours", MAX_SOCKETS_PER_USER=str(subscribers + 10)) as ours:
        token = login(ours.url)
        cpu = ours.cpu_seconds()
        results["ours"], payload = asyncio.run(measure_ours(ours.url, token, subscribers, messages))
        results["ours"]["server_cpu_seconds"] = round(ours.cpu_seconds() - cpu, 2)
        results["ours"]["peak_rss_mb"] = round(ours.memory_mb()[1], 1)
    log(f"subscriptions ours: {results['ours']}")
    if payload is None:
        raise SystemExit("ours delivered nothing: no payload for the floor")
    results["payload_bytes"] = len(orjson.dumps({"id": "1", "type": "next", "payload": payload}))
    port = free_port()
    handle = (WORK / "workloads-ws-floor.log").open("wb")
    floor = subprocess.Popen(  # noqa: S603
        [PYTHON, str(BENCH / "ws_floor.py"), "--port", str(port)], stdout=handle, stderr=subprocess.STDOUT
    )
    try:
        time.sleep(1.5)
        cpu = process_cpu(floor.pid)
        results["floor"] = asyncio.run(measure_floor(port, payload, subscribers, messages))
        results["floor"]["server_cpu_seconds"] = round(process_cpu(floor.pid) - cpu, 2)
    finally:
        floor.terminate()
        try:
            floor.wait(10)
        except subprocess.TimeoutExpired:
            floor.kill()
            floor.wait()
    log(f"subscriptions floor: {results['floor']}")
    results["floor_over_ours_deliveries_per_second"] = round(
        results["floor"]["deliveries_per_second"] / max(results["ours"]["deliveries_per_second"], 1), 1
    )
    results["ok"] = results["ours"]["lost"] == 0 and results["floor"]["lost"] == 0
    results["ok"] = results["ok"] and results["ours"]["subscribed"] == subscribers
    results["load_average_after"] = load_average()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=5)
    args = parser.parse_args()
    print(orjson.dumps(run(args.subscribers, args.messages), option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()

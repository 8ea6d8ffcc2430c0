"""The subscription fan-out's floor: a minimal `websockets` broadcaster speaking enough graphql-transport-ws.

    python bench/ws_floor.py --port 8741

Subscribers open a socket (subprotocol graphql-transport-ws), send `connection_init` (answered `connection_ack`,
no token check, no database) and `subscribe` (registered). A control socket sends `{"type": "publish",
"payload": ...}`: the server sends `{"id": <the subscription's id>, "type": "next", "payload": ...}` to every
registered subscription, one frame each (websockets.broadcast when all share one id, as the benchmark's do).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import orjson
import websockets
from websockets.asyncio.server import ServerConnection, broadcast, serve

SUBSCRIBERS: dict[ServerConnection, str] = {}


async def handler(socket: ServerConnection) -> None:
    try:
        async for raw in socket:
            message: dict[str, Any] = orjson.loads(raw)
            kind = message.get("type")
            if kind == "connection_init":
                await socket.send(b'{"type":"connection_ack"}', text=True)
            elif kind == "subscribe":
                SUBSCRIBERS[socket] = str(message["id"])
            elif kind == "ping":
                await socket.send(b'{"type":"pong"}', text=True)
            elif kind == "publish":
                by_id: dict[str, list[ServerConnection]] = {}
                for subscriber, sub_id in list(SUBSCRIBERS.items()):
                    by_id.setdefault(sub_id, []).append(subscriber)
                for sub_id, sockets in by_id.items():
                    frame = orjson.dumps({"id": sub_id, "type": "next", "payload": message["payload"]}).decode()
                    broadcast(sockets, frame)
                await socket.send(orjson.dumps({"type": "published", "to": len(SUBSCRIBERS)}), text=True)
    except websockets.ConnectionClosed:
        pass
    finally:
        SUBSCRIBERS.pop(socket, None)


async def main(port: int) -> None:
    async with serve(handler, "127.0.0.1", port, subprotocols=["graphql-transport-ws"], max_queue=None) as server:  # type: ignore[list-item]
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8741)
    asyncio.run(main(parser.parse_args().port))

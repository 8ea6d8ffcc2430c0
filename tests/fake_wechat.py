"""A tiny real HTTP server standing in for WeChat's `jscode2session`, on 127.0.0.1 and a free port.

Codes: `good-<x>` -> openid `openid-<x>`; `bad` -> errcode 40029; `busy` -> errcode 45011;
`slow` -> answers only after `slow_seconds` (longer than the client's timeout); anything else -> errcode -1.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

APP_ID = "wx-test-app"
APP_SECRET = "wx-test-secret"


class FakeWeChat(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, slow_seconds: float = 2.0) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.slow_seconds = slow_seconds
        self.requests: list[dict[str, str]] = []
        self.stopping = threading.Event()

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeWeChat

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path != "/sns/jscode2session":
            self._send(404, {"errcode": 404, "errmsg": "not found"})
            return
        params = {key: values[0] for key, values in parse_qs(url.query).items()}
        self.server.requests.append(params)
        if params.get("appid") != APP_ID or params.get("secret") != APP_SECRET:
            self._send(200, {"errcode": 40013, "errmsg": "invalid appid"})
            return
        if params.get("grant_type") != "authorization_code":
            self._send(200, {"errcode": 40002, "errmsg": "invalid grant_type"})
            return
        code = params.get("js_code", "")
        if code.startswith("good-"):
            self._send(200, {"openid": "openid-" + code[5:], "session_key": "c2Vzc2lvbi1rZXk="})
        elif code == "bad":
            self._send(200, {"errcode": 40029, "errmsg": "invalid code"})
        elif code == "busy":
            self._send(200, {"errcode": 45011, "errmsg": "api minute-quota reach limit"})
        elif code == "slow":
            self.server.stopping.wait(self.server.slow_seconds)
            self._send(200, {"openid": "openid-slow", "session_key": "c2Vzc2lvbi1rZXk="})
        else:
            self._send(200, {"errcode": -1, "errmsg": "system error"})

    def _send(self, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")  # WeChat answers JSON as text/plain
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (the slow case)


@contextmanager
def running(slow_seconds: float = 2.0) -> Iterator[FakeWeChat]:
    server = FakeWeChat(slow_seconds)
    thread = threading.Thread(target=server.serve_forever, name="fake-wechat", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

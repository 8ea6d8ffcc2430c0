"""The door: uvicorn's HTTP/1.1 protocol (httptools), writing admission's refusals itself (engine/admission.py).

Under overload most requests are shed: at 4x what the process serves, three in four. A request that reaches the app
costs uvicorn 120-200 us of CPU even when the app answers it 503 at once (its scope, its receive and send, its task,
the middleware), on the one core the accepted requests run on: 15-25 % of the event loop at 1,200 sheds a second.
Here the answer is written as soon as the request's head is parsed, when `Admission.door` says so (at the ceiling,
or under overload beyond the pace of its token bucket): the same 503 OVERLOADED, `Retry-After` and media type as the
app's, nothing of the request run, its body (if any) read and dropped by the parser, and the connection kept alive
for the client's next request as after any answer.

Only GraphQL and FHIR requests (GET and POST) from clients that send no `Origin` are refused here; a browser's goes
through the app, whose CORS middleware puts its headers on the 503. Everything else (websocket upgrades, other paths
and methods) is uvicorn's as before. uvicorn serves with this protocol (`server.py serve`: cli.py); the app's
lifespan gives it the admission (its state, `admission`).

This leans on uvicorn's protocol internals (`_start_asgi_task`, the request cycle's flags): uvicorn is pinned, and
tests/test_production_door.py drives them over real sockets (keep-alive, bodies, pipelining, HTTP/1.0).
"""

from __future__ import annotations

import time
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from schema.engine.admission import Admission, accepted, guarded, overloaded_answer
from schema.engine.metrics import observe_request, route_of

STATUS_LINE = b"HTTP/1.1 503 Service Unavailable\r\n"
METHODS = ("GET", "POST")


class AdmissionProtocol(HttpToolsProtocol):
    """HttpToolsProtocol whose requests the admission may refuse before they go in."""

    admission: Admission | None = None  # bound to one (tests); else the one in the app's lifespan state

    @classmethod
    def serving(cls, admission: Admission) -> type[AdmissionProtocol]:
        """This protocol for an app whose lifespan uvicorn does not run (tests serving an app already started)."""
        return type("BoundAdmissionProtocol", (cls,), {"admission": admission})

    def on_message_begin(self) -> None:
        # A request refused here completes its answer while its bytes are still being parsed: the keep-alive timer it
        # armed is disarmed by the next request in the same bytes, as the next read would have done.
        self._unset_keepalive_if_required()
        super().on_message_begin()

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        if self.transport.is_closing():  # a request after one refused with `Connection: close` (HTTP/1.0)
            return
        admission = self.admission or self.app_state.get("admission")
        scope = cycle.scope
        if (
            admission is not None
            and guarded(scope["path"])
            and scope["method"] in METHODS
            and not _has_origin(scope["headers"])
            and admission.door(time.perf_counter())
        ):
            self._refuse(cycle)
            return
        super()._start_asgi_task(cycle, app)

    def _refuse(self, cycle: RequestResponseCycle) -> None:
        """Write the 503 OVERLOADED answer as uvicorn writes one from the app, and complete the request's cycle."""
        started = time.perf_counter()
        headers, body = overloaded_answer(accepted(cycle.scope["headers"]))
        head = [STATUS_LINE]
        for name, value in (*cycle.default_headers, *headers):
            head.extend((name, b": ", value, b"\r\n"))
        if not cycle.keep_alive:
            head.append(b"connection: close\r\n")
        head.extend((b"\r\n", body))
        cycle.response_started = cycle.response_complete = True  # its body, if still coming, is dropped
        cycle.waiting_for_100_continue = False
        self.transport.write(b"".join(head))
        cycle.message_event.set()
        if not cycle.keep_alive:
            self.transport.close()
        observe_request(route_of(cycle.scope["path"]), 503, time.perf_counter() - started)
        self.on_response_complete()


def _has_origin(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(name == b"origin" for name, _ in headers)

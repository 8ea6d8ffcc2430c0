"""FHIR Bulk Data Access over HTTP (the routes; the work is resolvers/fhir/export.py and the job it starts).

    GET    /fhir/Group/{departmentId}/$export   kick-off: a department's patients (and its sub-departments')
    GET    /fhir/Patient/$export                kick-off: every patient in the caller's reach (capability)
    GET    /fhir/$export-status/{id}            202 + X-Progress while it runs, 200 + the manifest when done
    DELETE /fhir/$export-status/{id}            cancel (or delete a finished export's files): 202
    GET    /fhir/$export-file/{id}/{Type}.ndjson (and {Type}.2.ndjson ... for a type split over several files)

Every request carries the bearer token the API takes (the same session, roles, data scope and masking); an export
and its files are its requester's. Kick-off asks for `Prefer: respond-async` and accepts `application/fhir+json`;
`_type`, `_since` and `_outputFormat` are the parameters. Errors are OperationOutcome resources with the API's
error code in `issue[0].details.coding`.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from core.errors import AppError, ErrorCode, bad_input
from core.ids import decode_id
from models.fhir import ExportLevel, ExportStatus
from policies.access import Principal
from resolvers.data.context import Context, Services
from resolvers.data.principal import principal_from_token
from resolvers.fhir import export as exports
from schema.engine.endpoint import client_ip

log = logging.getLogger("followup.fhir")

FHIR_JSON = "application/fhir+json"
NDJSON = "application/fhir+ndjson"
RETRY_SECONDS = 2
_STATUS = {
    ErrorCode.UNAUTHENTICATED: (401, "login"),
    ErrorCode.FORBIDDEN: (403, "forbidden"),
    ErrorCode.NOT_FOUND: (404, "not-found"),
    ErrorCode.BAD_USER_INPUT: (400, "invalid"),
    ErrorCode.CONFLICT: (409, "conflict"),
    ErrorCode.RATE_LIMITED: (429, "throttled"),
}


def outcome(code: ErrorCode | str, message: str, *, status: int | None = None, **headers: str) -> Response:
    http, issue = _STATUS.get(ErrorCode(code), (500, "exception"))
    body = {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": issue,
                "details": {"coding": [{"code": str(code)}]},
                "diagnostics": message,
            }
        ],
    }
    return _json(body, status or http, media_type=FHIR_JSON, **headers)


def _json(body: Any, status: int, *, media_type: str = FHIR_JSON, **headers: str) -> Response:
    response = Response(orjson.dumps(body), status_code=status, media_type=media_type)
    response.headers["Cache-Control"] = "no-store"
    response.headers.update(headers)
    return response


def _accepts(request: Request, *media_types: str) -> bool:
    accept = request.headers.get("accept", "").strip()
    if not accept:
        return True
    offered = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    return any(kind in offered for kind in (*media_types, "application/*", "*/*"))


def _department(raw: str) -> int:
    """A department's API id (opaque), or its number (as the command line takes it)."""
    if raw.isascii() and raw.isdigit() and len(raw) < 19:
        return int(raw)
    return decode_id("Department", raw)


class BulkExport:
    def __init__(self, services: Services) -> None:
        self.services = services

    async def _context(self, request: Request) -> Context:
        context = Context(
            services=self.services,
            principal=await self._principal(request),
            ip=client_ip(request, self.services),
            user_agent=request.headers.get("user-agent", "")[:255],
        )
        limiter = self.services.ratelimiter
        if limiter is not None and context.principal.user_id is not None:
            settings = self.services.settings
            retry = await limiter.hit("user", str(context.principal.user_id), settings.rate_limit_per_user)
            if retry:
                raise AppError(
                    ErrorCode.RATE_LIMITED, f"Too many requests; try again in {retry} seconds", retryAfter=retry
                )
        return context

    async def _principal(self, request: Request) -> Principal:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AppError(ErrorCode.UNAUTHENTICATED, "Send 'Authorization: Bearer <token>' (the API's access token)")
        return await principal_from_token(self.services, token.strip())

    async def handle(self, request: Request) -> Response:
        try:
            return await self._dispatch(request)
        except AppError as error:
            headers = {"WWW-Authenticate": "Bearer"} if error.code == ErrorCode.UNAUTHENTICATED else {}
            retry = (error.extensions or {}).get("retryAfter")
            if retry:
                headers["Retry-After"] = str(retry)
            return outcome(error.code, error.message, **headers)
        except Exception:
            log.exception("FHIR bulk data request failed")
            return outcome("INTERNAL", "The server could not answer this request", status=500)

    async def _dispatch(self, request: Request) -> Response:
        if "export_id" not in request.path_params:
            return await self._kick_off(request)
        if "name" not in request.path_params:
            return await self._status(request)
        return await self._file(request)

    async def _kick_off(self, request: Request) -> Response:
        ctx = await self._context(request)
        if not _accepts(request, FHIR_JSON, "application/json"):
            return outcome(ErrorCode.BAD_USER_INPUT, "Accept: application/fhir+json", status=406)
        if "respond-async" not in request.headers.get("prefer", "").lower():
            raise bad_input("Bulk data export runs asynchronously: send 'Prefer: respond-async'", "Prefer")
        raw = request.path_params.get("department_id")
        params = request.query_params
        export = await exports.kick_off(
            ctx,
            exports.ExportRequest(
                level=ExportLevel.GROUP if raw is not None else ExportLevel.PATIENT,
                department_id=_department(raw) if raw is not None else None,
                types=params.get("_type"),
                since=params.get("_since"),
                output_format=params.get("_outputFormat"),
                request_url=str(request.url),
            ),
        )
        location = str(request.url_for("fhir-export-status", export_id=export.id))
        return Response(status_code=202, headers={"Content-Location": location, "Cache-Control": "no-store"})

    async def _status(self, request: Request) -> Response:
        ctx = await self._context(request)
        export_id = request.path_params["export_id"]
        if request.method == "DELETE":
            await exports.cancel(ctx, export_id)
            return Response(status_code=202, headers={"Cache-Control": "no-store"})
        export = await exports.my_export(ctx, export_id)
        if export.status == ExportStatus.COMPLETED.value:
            files = str(request.url_for("fhir-export-status", export_id=export.id)).replace(
                "/$export-status/", "/$export-file/"
            )
            expires = export.expires_at
            headers = {"Expires": _http_date(expires.timestamp())} if expires is not None else {}
            return _json(exports.manifest(export, files), 200, media_type="application/json", **headers)
        if export.status == ExportStatus.FAILED.value:
            return outcome("INTERNAL", export.message or "The export failed", status=500)
        headers = {
            "X-Progress": exports.progress(export),
            "Retry-After": str(RETRY_SECONDS),
            "Cache-Control": "no-store",
        }
        return Response(status_code=202, headers=headers)

    async def _file(self, request: Request) -> Response:
        if not _accepts(request, NDJSON, "application/ndjson", "application/x-ndjson"):
            return outcome(ErrorCode.BAD_USER_INPUT, "Accept: application/fhir+ndjson", status=406)
        ctx = await self._context(request)
        path = await exports.export_file(ctx, request.path_params["export_id"], request.path_params["name"])
        response = FileResponse(path, media_type=NDJSON)
        response.headers["Cache-Control"] = "no-store"
        return response


def _http_date(timestamp: float) -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(timestamp))


def fhir_routes(services: Services) -> list[Route]:
    bulk = BulkExport(services)
    return [
        Route("/fhir/Group/{department_id}/$export", bulk.handle, methods=["GET"], name="fhir-group-export"),
        Route("/fhir/Patient/$export", bulk.handle, methods=["GET"], name="fhir-patient-export"),
        Route("/fhir/$export-status/{export_id}", bulk.handle, methods=["GET", "DELETE"], name="fhir-export-status"),
        Route("/fhir/$export-file/{export_id}/{name}", bulk.handle, methods=["GET"], name="fhir-export-file"),
    ]

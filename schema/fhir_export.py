"""FHIR bulk data exports through the API (the console's page): start one, follow one's progress, download its
files over HTTP, cancel. The same domain code as the Bulk Data Access endpoints (schema/engine/fhir.py): the same
capability, scope, audit and files; an export started here is the same export its status URL answers for."""

from __future__ import annotations

from datetime import datetime

import strawberry

from core.ids import decode_optional_id, encode_id
from models.base import enum_member
from models.fhir import ExportLevel, ExportStatus, FhirExport
from resolvers.data.context import Info
from resolvers.fhir import export as exports
from schema.engine.connection import Connection, connection

FhirExportLevelEnum = strawberry.enum(ExportLevel, name="FhirExportLevel")
FhirExportStatusEnum = strawberry.enum(ExportStatus, name="FhirExportStatus")


@strawberry.type(name="FhirExportFile")
class FhirExportFileType:
    type: str
    url: str
    count: int | None


@strawberry.type(name="FhirExport")
class FhirExportType:
    _row: strawberry.Private[FhirExport]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(self._row.id)

    @strawberry.field
    def level(self) -> FhirExportLevelEnum:  # type: ignore[valid-type]
        return enum_member(ExportLevel, self._row.level)

    @strawberry.field
    def status(self) -> FhirExportStatusEnum:  # type: ignore[valid-type]
        return enum_member(ExportStatus, self._row.status)

    @strawberry.field
    def department_id(self) -> strawberry.ID | None:
        department = self._row.department_id
        return strawberry.ID(encode_id("Department", department)) if department is not None else None

    @strawberry.field
    async def department_name(self, info: Info) -> str | None:
        return await info.context.loaders.department_name(self._row.department_id)

    @strawberry.field
    def types(self) -> list[str]:
        return [name for name in self._row.types.split(",") if name]

    @strawberry.field
    def since(self) -> datetime | None:
        return self._row.since

    @strawberry.field
    def progress(self) -> str:
        return exports.progress(self._row)

    @strawberry.field
    def total_patients(self) -> int:
        return self._row.total_patients

    @strawberry.field
    def done_patients(self) -> int:
        return self._row.done_patients

    @strawberry.field
    def message(self) -> str | None:
        return self._row.message

    @strawberry.field
    def created_at(self) -> datetime:
        return self._row.created_at

    @strawberry.field
    def finished_at(self) -> datetime | None:
        return self._row.finished_at

    @strawberry.field
    def expires_at(self) -> datetime | None:
        return self._row.expires_at

    @strawberry.field
    def status_url(self) -> str:
        return f"/fhir/$export-status/{self._row.id}"

    @strawberry.field
    def files(self) -> list[FhirExportFileType]:
        if self._row.status != ExportStatus.COMPLETED.value:
            return []
        manifest = exports.manifest(self._row, f"/fhir/$export-file/{self._row.id}")
        return [
            FhirExportFileType(type=entry["type"], url=entry["url"], count=entry.get("count"))
            for entry in [*manifest["output"], *manifest["error"]]
        ]


@strawberry.type
class FhirExportQuery:
    @strawberry.field(description="Your FHIR bulk exports, newest first (those you cancelled are gone).")
    async def my_fhir_exports(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> Connection[FhirExportType]:
        page = await exports.my_exports(info.context, first=first, after=after)
        return connection(page, lambda row: FhirExportType(_row=row))


@strawberry.type
class FhirExportMutation:
    @strawberry.mutation(
        description="Start a FHIR bulk export (NDJSON files) of a department and those below it, or with no"
        " department of every patient in your reach; the same as the Bulk Data Access kick-off."
    )
    async def start_fhir_export(
        self,
        info: Info,
        department_id: strawberry.ID | None = None,
        types: list[str] | None = None,
        since: datetime | None = None,
    ) -> FhirExportType:
        department = decode_optional_id("Department", department_id)
        type_list = ",".join(types) if types else None
        since_text = since.isoformat() if since is not None else None
        request = exports.ExportRequest(
            level=ExportLevel.GROUP if department is not None else ExportLevel.PATIENT,
            department_id=department,
            types=type_list,
            since=since_text,
            output_format=None,
            request_url=exports.kick_off_url(department, type_list, since_text),
        )
        return FhirExportType(_row=await exports.kick_off(info.context, request))

    @strawberry.mutation(description="Cancel a running export of yours, or delete a finished one's files now.")
    async def cancel_fhir_export(self, info: Info, export_id: str) -> bool:
        await exports.cancel(info.context, export_id)
        return True

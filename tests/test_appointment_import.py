"""Schedule plans over the API: the template, importSchedules by the GraphQL multipart request convention (dry
run, per-row report, all or nothing, idempotent, capacity below bookings refused), exportSchedules in the same
format (a round trip, formulas escaped), and every kind of bad file refused with nothing written."""

from __future__ import annotations

import base64
import csv
import io
import zipfile
from datetime import timedelta
from typing import Any

import openpyxl
import orjson
from sqlalchemy import func, select, update

from core.db import Database
from models.appointment import Schedule
from tests.appointment_helpers import gid, today
from tests.clinical_helpers import user_id
from tests.conftest import GraphQLClient, error_codes

IMPORT = """mutation ($file: Upload!, $dryRun: Boolean) { importSchedules(file: $file, dryRun: $dryRun) {
  dryRun written rows created updated unchanged problemCount problems { row column message } } }"""
TEMPLATE = "query ($f: SchedulePlanFormat, $l: SchedulePlanLanguage) { scheduleImportTemplate(format: $f, language: $l) { filename contentType contentBase64 rows } }"
EXPORT = """query ($filter: ScheduleExportFilter, $f: SchedulePlanFormat) { exportSchedules(filter: $filter, format: $f) {
  filename contentType contentBase64 rows } }"""
HEADER = ["日期/Date", "时段/Session", "开始时间/Start", "结束时间/End", "医生账号/Physician", "科室编码/Department",
          "号源数/Capacity", "每号分钟/Slot minutes", "诊室/Location"]  # fmt: skip


def day(offset: int) -> str:
    return (today() + timedelta(days=offset)).isoformat()


def plan_csv(rows: list[list[Any]], header: list[str] | None = None) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(header or HEADER)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def plan_xlsx(rows: list[list[Any]], header: list[str] | None = None) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(header or HEADER)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


GOOD = [
    [day(20), "上午", "", "", "physician", "", 12, 15, "门诊楼 3 层 305"],
    [day(20), "afternoon", "", "", "chief", "CRS", 10, 20, "301"],
    [day(21), "custom", "18:00", "20:30", "physician", "CRS", 6, 15, ""],
]


async def upload(
    client: GraphQLClient,
    data: bytes,
    *,
    as_: str = "chief",
    filename: str = "plan.csv",
    dry_run: bool = False,
    authorization: bool = True,
) -> Any:
    operations = {"query": IMPORT, "variables": {"file": None, "dryRun": dry_run}}
    headers = {"Authorization": f"Bearer {await client.token(as_)}"} if authorization else {}
    response = await client.http.post(
        "/graphql",
        data={"operations": orjson.dumps(operations).decode(), "map": orjson.dumps({"0": ["variables.file"]}).decode()},
        files={"0": (filename, data, "application/octet-stream")},
        headers=headers,
    )
    return response


async def imported(client: GraphQLClient, data: bytes, **options: Any) -> dict[str, Any]:
    response = await upload(client, data, **options)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    report: dict[str, Any] = body["data"]["importSchedules"]
    return report


async def schedule_count(db: Database) -> int:
    async with db.session() as session:
        return int((await session.execute(select(func.count()).select_from(Schedule))).scalar_one())


async def test_template_in_both_formats_and_languages(client: GraphQLClient) -> None:
    xlsx = (await client.data(TEMPLATE, {}, as_="chief"))["scheduleImportTemplate"]
    assert xlsx["filename"].endswith(".xlsx") and xlsx["rows"] == 2
    book = openpyxl.load_workbook(io.BytesIO(base64.b64decode(xlsx["contentBase64"])), read_only=True)
    first = next(iter(book.worksheets[0].iter_rows(values_only=True)))
    assert list(first) == HEADER
    zh = (await client.data(TEMPLATE, {"f": "CSV", "l": "ZH"}, as_="admin"))["scheduleImportTemplate"]
    text = base64.b64decode(zh["contentBase64"]).decode("utf-8-sig")
    assert text.splitlines()[0] == "日期,时段,开始时间,结束时间,医生账号,科室编码,号源数,每号分钟,诊室"
    en = (await client.data(TEMPLATE, {"f": "CSV", "l": "EN"}, as_="admin"))["scheduleImportTemplate"]
    assert base64.b64decode(en["contentBase64"]).decode("utf-8-sig").startswith("Date,Session,Start,End,Physician")
    for who in ("physician", "patient"):
        assert set(error_codes(await client.run(TEMPLATE, {}, as_=who))) == {"GRAPHQL_VALIDATION_FAILED"}


async def test_import_dry_run_then_write_then_idempotent_then_round_trip(client: GraphQLClient, db: Database) -> None:
    before = await schedule_count(db)
    data = plan_csv(GOOD)
    dry = await imported(client, data, dry_run=True)
    assert dry == {
        "dryRun": True, "written": False, "rows": 3, "created": 3, "updated": 0, "unchanged": 0,
        "problemCount": 0, "problems": [],
    }  # fmt: skip
    assert await schedule_count(db) == before
    done = await imported(client, data)
    assert done["written"] and done["created"] == 3 and done["problemCount"] == 0
    assert await schedule_count(db) == before + 3
    async with db.session() as session:
        rows = (
            (
                await session.execute(
                    select(Schedule).where(Schedule.day == today() + timedelta(days=20)).order_by(Schedule.start_time)
                )
            )
            .scalars()
            .all()
        )
    physician = await user_id(db, "physician")
    morning = next(row for row in rows if row.physician_id == physician and row.period == "morning")
    assert morning.capacity == 12 and morning.location == "门诊楼 3 层 305" and str(morning.start_time) == "08:00:00"
    again = await imported(client, data)
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 3)
    assert await schedule_count(db) == before + 3
    # a changed capacity updates the session
    changed = [list(row) for row in GOOD]
    changed[0][6] = 14
    update_report = await imported(client, plan_csv(changed))
    assert (update_report["created"], update_report["updated"], update_report["unchanged"]) == (0, 1, 2)
    # export in the same format: imported back, it changes nothing
    window = {"from": day(20), "to": day(21)}
    for file_format, name in (("CSV", "export.csv"), ("XLSX", "export.xlsx")):
        exported = (await client.data(EXPORT, {"filter": window, "f": file_format}, as_="chief"))["exportSchedules"]
        assert exported["rows"] >= 3
        back = await imported(client, base64.b64decode(exported["contentBase64"]), filename=name)
        assert back["problemCount"] == 0 and back["created"] == back["updated"] == 0, back
        assert back["unchanged"] == exported["rows"]
    assert await schedule_count(db) == before + 3
    # a physician has no import; nor a patient
    response = await upload(client, data, as_="physician")
    assert set(error_codes(response.json())) == {"GRAPHQL_VALIDATION_FAILED"}


async def test_every_row_problem_is_reported_and_nothing_is_written(client: GraphQLClient, db: Database) -> None:
    before = await schedule_count(db)
    rows = [
        GOOD[0],
        [day(20), "morning", "", "", "nobody", "", 5, 15, ""],  # 3 unknown physician
        ["2026-13-45", "morning", "", "", "physician", "", 5, 15, ""],  # 4 bad date
        [day(22), "custom", "25:00", "26:00", "physician", "", 5, 15, ""],  # 5 bad time
        [day(20), "custom", "10:00", "11:00", "physician", "", 5, 15, ""],  # 6 overlaps row 2
        [day(23), "evening", "", "", "physician", "", 0, 15, ""],  # 7 capacity not positive
        [day(23), "morning", "", "", "physician2", "", 5, 15, ""],  # 8 outside the chief's scope
        [day(-3), "morning", "", "", "physician", "", 5, 15, ""],  # 9 in the past
        GOOD[0],  # 10 duplicate of row 2
        [day(24), "", "", "", "physician", "", 5, 15, ""],  # 11 no session nor hours
    ]
    report = await imported(client, plan_csv(rows))
    found = {(p["row"], p["column"]) for p in report["problems"]}
    assert {(3, "Physician"), (4, "Date"), (5, "Start"), (6, "Start"), (7, "Capacity"), (8, "Physician"),
            (9, "Date"), (10, None), (11, "Session")} <= found, report["problems"]  # fmt: skip
    assert (2, None) not in found and not report["written"] and report["created"] == 0
    assert await schedule_count(db) == before
    # the admin reaches every department: the same Gastroenterology row is fine for them
    assert (await imported(client, plan_csv([rows[6]]), as_="admin"))["created"] == 1


async def test_capacity_below_the_places_booked_is_refused_for_that_row(client: GraphQLClient, db: Database) -> None:
    await imported(client, plan_csv(GOOD))
    async with db.transaction() as session:
        await session.execute(
            update(Schedule)
            .where(Schedule.physician_id == await user_id(db, "chief"), Schedule.day == today() + timedelta(days=20))
            .values(booked=8)
        )
    lower = [list(row) for row in GOOD]
    lower[1][6] = 5  # the chief's session, 8 places booked
    lower[2][6] = 9  # another change in the same plan: not written either
    report = await imported(client, plan_csv(lower))
    assert [(p["row"], p["column"]) for p in report["problems"]] == [(3, "Capacity")]
    assert "8 places" in report["problems"][0]["message"] and not report["written"]
    async with db.session() as session:
        capacities = sorted(
            (
                await session.execute(select(Schedule.capacity).where(Schedule.day >= today() + timedelta(days=20)))
            ).scalars()
        )
    assert 5 not in capacities and 9 not in capacities


def _bomb() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"<row>" + b"0" * 30_000_000 + b"</row>")
    return out.getvalue()


def _entities() -> bytes:
    """An XLSX whose workbook declares entities (billion laughs): defusedxml refuses it."""
    good = plan_xlsx([GOOD[0]])
    source = zipfile.ZipFile(io.BytesIO(good))
    out = io.BytesIO()
    laughs = b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            content = source.read(info.filename)
            if info.filename == "xl/workbook.xml":
                content = laughs + (content.split(b"?>", 1)[1] if content.startswith(b"<?xml") else content)
            archive.writestr(info.filename, content)
    return out.getvalue()


async def test_bad_files_are_refused_with_a_clear_error_and_nothing_written(
    client: GraphQLClient, db: Database
) -> None:
    before = await schedule_count(db)
    formula_xlsx = plan_xlsx([[day(20), "morning", "", "", "physician", "", "=2*6", 15, ""]])
    cases: list[tuple[str, bytes, str, tuple[int, str | None]]] = [
        ("malformed CSV", plan_csv([GOOD[0]]) + b'"unclosed,quote\n', "plan.csv", (3, None)),
        ("wrong columns", plan_csv([GOOD[0]], header=[*HEADER[:8], "Colour"]), "plan.csv", (1, "Colour")),
        ("missing columns", plan_csv([[day(20), "morning"]], header=HEADER[:2]), "plan.csv", (1, "Physician")),
        ("not a spreadsheet", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "photo.png", (1, None)),
        ("a zip that is no workbook", _zip_only(), "plan.xlsx", (1, None)),
        ("an XLSX bomb", _bomb(), "plan.xlsx", (1, None)),
        ("XML entities", _entities(), "plan.xlsx", (1, None)),
        ("a formula cell", formula_xlsx, "plan.xlsx", (2, "Capacity")),
        ("a formula in a CSV", plan_csv([[*GOOD[0][:8], '=HYPERLINK("http://x")']]), "plan.csv", (2, "Location")),
    ]
    for what, data, name, expected in cases:
        report = await imported(client, data, filename=name)
        assert not report["written"] and report["problemCount"] >= 1, (what, report)
        assert (report["problems"][0]["row"], report["problems"][0]["column"]) == expected, (what, report["problems"])
    assert await schedule_count(db) == before
    # an oversized file: the field is named; a body past the limit is refused before parsing
    limit = client.services.settings.schedule_import_max_bytes
    oversized = (await upload(client, plan_csv(GOOD) + b" " * limit)).json()
    assert error_codes(oversized) == ["BAD_USER_INPUT"] and oversized["errors"][0]["extensions"]["field"] == "file"
    too_large = await upload(client, b"x" * (limit + 200_000))
    assert too_large.status_code == 413
    # a multipart request without an Authorization header (what a cross-site form could send) is refused
    refused = await upload(client, plan_csv(GOOD), authorization=False)
    assert refused.status_code == 400 and "Authorization" in refused.text
    assert await schedule_count(db) == before


def _zip_only() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("readme.txt", "not a workbook")
    return out.getvalue()


async def test_export_escapes_formula_like_text_and_imports_it_back(client: GraphQLClient, db: Database) -> None:
    await imported(client, plan_csv(GOOD))
    async with db.transaction() as session:
        await session.execute(
            update(Schedule).where(Schedule.day == today() + timedelta(days=21)).values(location="=cmd|' /C calc'!A0")
        )
    window = {"from": day(21), "to": day(21)}
    exported = (await client.data(EXPORT, {"filter": window, "f": "XLSX"}, as_="chief"))["exportSchedules"]
    book = openpyxl.load_workbook(io.BytesIO(base64.b64decode(exported["contentBase64"])))
    cell = book.worksheets[0]["I2"]
    assert cell.data_type == "s" and cell.value == "'=cmd|' /C calc'!A0"
    as_csv = (await client.data(EXPORT, {"filter": window, "f": "CSV"}, as_="chief"))["exportSchedules"]
    assert "'=cmd" in base64.b64decode(as_csv["contentBase64"]).decode("utf-8-sig")
    back = await imported(client, base64.b64decode(exported["contentBase64"]), filename="export.xlsx")
    assert back["unchanged"] == exported["rows"] and back["problemCount"] == 0
    # a physician out of the export's reach: NOT_FOUND for a filter naming them? no: names are everyone's; a
    # department admin exports only what they manage
    gi = await client.data(
        EXPORT, {"filter": {"physicianId": gid("User", await user_id(db, "physician2"))}}, as_="chief"
    )
    assert gi["exportSchedules"]["rows"] == 0


async def test_a_named_account_without_a_physician_role_is_refused_per_row(client: GraphQLClient, db: Database) -> None:
    """The plan names accounts: one that holds no physician role (the patient's, or a staff account with no role)
    cannot hold a session; a chief physician does (the role inherits the physician's)."""
    from models.organisation import Department
    from models.user import User

    async with db.transaction() as session:
        crs = (await session.execute(select(Department.id).where(Department.code == "CRS"))).scalar_one()
        session.add(User(username="clerk", display_name="前台 Clerk", department_id=crs))
    before = await schedule_count(db)
    rows = [
        [day(30), "morning", "", "", "patient", "CRS", 5, 15, ""],  # 2 the patient's account
        [day(30), "morning", "", "", "clerk", "", 5, 15, ""],  # 3 no role at all
        [day(30), "afternoon", "", "", "chief", "", 5, 15, ""],  # 4 a chief physician: fine
    ]
    for role in ("chief", "admin"):
        report = await imported(client, plan_csv(rows), as_=role, dry_run=True)
        assert [(p["row"], p["column"]) for p in report["problems"]] == [(2, "Physician"), (3, "Physician")]
        assert all("no physician role" in p["message"] for p in report["problems"]), report["problems"]
        assert not report["written"]
    assert await schedule_count(db) == before
    assert (await imported(client, plan_csv(rows[2:]), as_="chief"))["created"] == 1
    # a physician has no importSchedules at all
    response = await upload(client, plan_csv(rows[2:]), as_="physician")
    assert set(error_codes(response.json())) == {"GRAPHQL_VALIDATION_FAILED"}

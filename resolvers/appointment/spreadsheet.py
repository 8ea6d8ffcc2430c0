"""Schedule plans as files: reading a CSV or XLSX plan into rows, writing rows back (export, template).

No database here. Reading refuses what is not a plan before looking at any row: not a spreadsheet, a zip that
inflates past a limit (an XLSX bomb: the compressed size says nothing), XML with entities (defusedxml, which
openpyxl uses once installed), unknown or missing columns, more rows than allowed, a malformed CSV. Cells that
a spreadsheet would run as a formula are refused on import and escaped (a leading ') on export, and that escape
is taken off again on import, so an export imports back unchanged.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

import openpyxl
from defusedxml.common import DefusedXmlException

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_TYPE = "text/csv"
MAX_INFLATED_BYTES = 100_000_000  # an XLSX's parts, uncompressed, all together
MAX_RATIO = 200  # uncompressed to compressed, per part
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Column:
    key: str
    zh: str
    en: str
    required: bool = False

    @property
    def header(self) -> str:
        return f"{self.zh}/{self.en}"


COLUMNS: tuple[Column, ...] = (
    Column("date", "日期", "Date", required=True),
    Column("session", "时段", "Session"),
    Column("start", "开始时间", "Start"),
    Column("end", "结束时间", "End"),
    Column("physician", "医生账号", "Physician", required=True),
    Column("department", "科室编码", "Department"),
    Column("capacity", "号源数", "Capacity", required=True),
    Column("slot_minutes", "每号分钟", "Slot minutes"),
    Column("location", "诊室", "Location"),
)
REQUIRED = {column.key for column in COLUMNS if column.required}
_BY_NAME = {name.casefold(): column for column in COLUMNS for name in (column.zh, column.en, column.key)}


@dataclass
class Problem:
    row: int  # 1 is the header
    column: str | None
    message: str


class PlanError(Exception):
    """The file as a whole is not a schedule plan."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(problems[0].message)
        self.problems = problems


@dataclass
class PlanRow:
    number: int  # the row's number in the file (the header is 1)
    cells: dict[str, Any] = field(default_factory=dict)


def _column_of(header: Any) -> Column | None:
    name = "" if header is None else str(header).strip()
    for part in [name, *name.split("/")]:
        found = _BY_NAME.get(part.strip().casefold())
        if found is not None:
            return found
    return None


def _header(cells: Sequence[Any]) -> list[Column | None]:
    problems = []
    columns: list[Column | None] = []
    for index, cell in enumerate(cells, start=1):
        if cell is None or str(cell).strip() == "":
            columns.append(None)
            continue
        column = _column_of(cell)
        if column is None:
            problems.append(Problem(1, str(cell)[:40], f"Unknown column in position {index}"))
        elif column in columns:
            problems.append(Problem(1, column.en, "Column given twice"))
        columns.append(column)
    present = {column.key for column in columns if column is not None}
    for column in COLUMNS:
        if column.required and column.key not in present:
            problems.append(Problem(1, column.en, f"Missing column {column.header}"))
    if problems:
        raise PlanError(problems)
    return columns


def _rows(records: Iterator[Sequence[Any]], max_rows: int) -> list[PlanRow]:
    first = next(records, None)
    if first is None:
        raise PlanError([Problem(1, None, "The file is empty")])
    columns = _header(first)
    rows: list[PlanRow] = []
    for number, record in enumerate(records, start=2):
        if all(cell is None or str(cell).strip() == "" for cell in record):
            continue  # blank lines between blocks of a plan
        if len(rows) >= max_rows:
            raise PlanError([Problem(number, None, f"More than {max_rows} rows: split the plan")])
        extra = [cell for cell in record[len(columns) :] if cell is not None and str(cell).strip() != ""]
        if extra:
            raise PlanError([Problem(number, None, "More cells than columns: the file is malformed")])
        row = PlanRow(number)
        for column, cell in zip(columns, record, strict=False):
            if column is not None:
                row.cells[column.key] = cell
        rows.append(row)
    return rows


def read_plan(data: bytes, filename: str, max_rows: int) -> list[PlanRow]:
    """The plan's rows (cells by column key), or PlanError."""
    if data.startswith(b"PK\x03\x04"):
        return _read_xlsx(data, max_rows)
    if filename.lower().endswith((".xlsx", ".xlsm", ".xls")):
        raise PlanError([Problem(1, None, "The file is not a spreadsheet (XLSX) nor a CSV")])
    return _read_csv(data, max_rows)


def _read_csv(data: bytes, max_rows: int) -> list[PlanRow]:
    if b"\x00" in data[:4096]:
        raise PlanError([Problem(1, None, "The file is not a spreadsheet (XLSX) nor a CSV")])
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            content = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes every byte string
        raise PlanError([Problem(1, None, "The CSV is neither UTF-8 nor GB18030 text")])
    reader = csv.reader(io.StringIO(content, newline=""), strict=True)
    try:
        return _rows(iter(reader), max_rows)
    except csv.Error as error:
        raise PlanError([Problem(reader.line_num, None, f"Malformed CSV: {error}")]) from None


def _check_zip(data: bytes) -> None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise PlanError([Problem(1, None, "The file is not a spreadsheet (a damaged XLSX)")]) from None
    with archive:
        total = 0
        for info in archive.infolist():
            total += info.file_size
            if info.file_size > MAX_RATIO * max(info.compress_size, 1) and info.file_size > 1_000_000:
                raise PlanError([Problem(1, None, "The XLSX inflates far beyond its size (a zip bomb): refused")])
        if total > MAX_INFLATED_BYTES:
            raise PlanError([Problem(1, None, "The XLSX inflates past the size limit: refused")])
        if "xl/workbook.xml" not in archive.namelist():
            raise PlanError([Problem(1, None, "The file is a zip but not an XLSX workbook")])


def _read_xlsx(data: bytes, max_rows: int) -> list[PlanRow]:
    _check_zip(data)
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except DefusedXmlException:
        raise PlanError([Problem(1, None, "The XLSX holds forbidden XML (entities): refused")]) from None
    except Exception:  # openpyxl raises many kinds for a damaged workbook
        raise PlanError([Problem(1, None, "The file is not a readable XLSX workbook")]) from None
    try:
        sheet = book.worksheets[0] if book.worksheets else None
        if sheet is None:
            raise PlanError([Problem(1, None, "The workbook has no sheet")])
        try:
            return _rows(_xlsx_records(sheet), max_rows)
        except DefusedXmlException:
            raise PlanError([Problem(1, None, "The XLSX holds forbidden XML (entities): refused")]) from None
    finally:
        book.close()


def _xlsx_records(sheet: Any) -> Iterator[Sequence[Any]]:
    """The sheet's rows as values. Read with data_only=False, a formula cell's value is its formula text ("=...")
    whatever it computes, so is_formula() catches it like formula-like text in a CSV."""
    yield from sheet.iter_rows(values_only=True)


# ---- cells -------------------------------------------------------------------------------------


def is_formula(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(FORMULA_START)


def text_cell(value: Any) -> str:
    """A text cell as written, without the escape an export put before formula-like text."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    found = str(value).strip()
    if found.startswith("'") and found[1:].startswith(FORMULA_START):
        return found[1:]
    return found


def date_cell(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    found = text_cell(value)
    for pattern in ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d"):
        try:
            return datetime.strptime(found, pattern).date()
        except ValueError:
            continue
    return None


def time_cell(value: Any) -> time | None:
    if isinstance(value, datetime):
        return value.time()
    if isinstance(value, time):
        return value
    found = text_cell(value)
    for pattern in ("%H:%M", "%H:%M:%S"):
        try:
            return datetime.strptime(found, pattern).time()
        except ValueError:
            continue
    return None


def int_cell(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    found = text_cell(value)
    return int(found) if found.isascii() and found.lstrip("-").isdigit() and len(found) < 9 else None


# ---- writing -----------------------------------------------------------------------------------


def escape(value: Any) -> Any:
    """A cell that a spreadsheet would run as a formula, kept as text (a leading ')."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def headers(language: str) -> list[str]:
    if language == "zh":
        return [column.zh for column in COLUMNS]
    if language == "en":
        return [column.en for column in COLUMNS]
    return [column.header for column in COLUMNS]


def write_csv(rows: Sequence[Sequence[Any]], language: str) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(headers(language))
    for row in rows:
        writer.writerow(["" if cell is None else escape(str(cell)) for cell in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")  # the BOM makes Excel read UTF-8


def write_xlsx(rows: Sequence[Sequence[Any]], language: str) -> bytes:
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("schedules")
    sheet.append(headers(language))
    for row in rows:
        sheet.append([None if cell is None else escape(cell) for cell in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()

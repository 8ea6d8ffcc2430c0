"""Benchmark of importSchedules: a 10,000-row schedule plan (CSV and XLSX) through the real API, as an admin.

    .venv/bin/python bench/import_schedules.py                      # SQLite in a temporary directory
    .venv/bin/python bench/import_schedules.py --mysql               # MariaDB (database followup_bench_import)
    .venv/bin/python bench/import_schedules.py --rows 10000 --physicians 50

Runs on its own, with nothing else of the benchmark harness: it makes a fresh database (migrations, built-in
roles, the demo accounts without patients, and `--physicians` physicians), starts the app in process, and sends
the plan as a GraphQL multipart upload (httpx, ASGI transport: no network in the figure). Per format it times a
dry run (every row checked, nothing written), the import (every session created in one write unit) and the same
plan again (every row found unchanged), each as rows per second; results go to bench/results/import.json and
import.md.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import platform
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(ROOT) not in sys.path:  # the app runs from the repository root; its packages are never installed
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import import_floor  # type: ignore[import-not-found]  # noqa: E402
import openpyxl  # noqa: E402
import orjson  # noqa: E402
from sqlalchemy import select  # noqa: E402

import models  # noqa: E402, F401
from cli import run_migrations  # noqa: E402
from core.db import Database  # noqa: E402
from core.security import hash_password  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.timeutil import clinic_today  # noqa: E402
from models.organisation import Department  # noqa: E402
from models.role import Role, UserRole  # noqa: E402
from models.user import User  # noqa: E402
from policies.bootstrap import ensure_builtin  # noqa: E402
from resolvers.demo.seed import seed_demo  # noqa: E402
from server import create_app  # noqa: E402

PASSWORD = "Bench#Import2026"
IMPORT = """mutation ($file: Upload!, $dryRun: Boolean) { importSchedules(file: $file, dryRun: $dryRun) {
  written rows created updated unchanged problemCount problems { row column message } } }"""
HEADER = ["日期/Date", "时段/Session", "开始时间/Start", "结束时间/End", "医生账号/Physician", "科室编码/Department",
          "号源数/Capacity", "每号分钟/Slot minutes", "诊室/Location"]  # fmt: skip


def plan_rows(physicians: list[str], rows: int, start: date) -> list[list[Any]]:
    """Two sessions a day per physician, physician by physician, day after day, until `rows`."""
    found: list[list[Any]] = []
    offset = 0
    while len(found) < rows:
        day = (start + timedelta(days=offset)).isoformat()
        for username in physicians:
            for session in ("morning", "afternoon"):
                if len(found) < rows:
                    found.append([day, session, "", "", username, "CRS", 20, 15, f"门诊楼 {offset % 5 + 1} 层"])
        offset += 1
    return found


def as_csv(rows: list[list[Any]]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(HEADER)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def as_xlsx(rows: list[list[Any]]) -> bytes:
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("plan")
    sheet.append(HEADER)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def prepare(url: str, physicians: int) -> list[str]:
    db = Database(url)
    try:
        await ensure_builtin(db)
        await seed_demo(db, password=PASSWORD, patients=0)
        names = [f"bench_doc_{index:03d}" for index in range(physicians)]
        async with db.transaction() as session:
            crs = (await session.execute(select(Department.id).where(Department.code == "CRS"))).scalar_one()
            role = (await session.execute(select(Role.id).where(Role.key == "physician"))).scalar_one()
            known = set((await session.execute(select(User.username))).scalars())
            digest = hash_password(PASSWORD)
            for name in names:
                if name in known:
                    continue
                user = User(username=name, display_name=name, department_id=crs, password_hash=digest)
                session.add(user)
                await session.flush()
                session.add(UserRole(user_id=user.id, role_id=role))  # type: ignore[arg-type]
    finally:
        await db.dispose()
    return names


async def timed_import(http: httpx.AsyncClient, token: str, data: bytes, name: str, dry_run: bool) -> tuple[float, Any]:
    operations = {"query": IMPORT, "variables": {"file": None, "dryRun": dry_run}}
    started = time.perf_counter()
    response = await http.post(
        "/graphql",
        data={"operations": orjson.dumps(operations).decode(), "map": orjson.dumps({"0": ["variables.file"]}).decode()},
        files={"0": (name, data, "application/octet-stream")},
        headers={"Authorization": f"Bearer {token}"},
    )
    seconds = time.perf_counter() - started
    body = response.json()
    if "errors" in body or body["data"]["importSchedules"]["problemCount"]:
        raise SystemExit(f"import failed: {json.dumps(body, ensure_ascii=False)[:2000]}")
    return seconds, body["data"]["importSchedules"]


async def bench(url: str, rows: int, physicians: int) -> dict[str, Any]:
    names = await prepare(url, physicians)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=url,
        demo_password=PASSWORD,
        redis_url=None,
        rate_limit_enabled=False,
        scheduler_enabled=False,
        audit_seal_interval_seconds=0,
        gc_freeze=False,
    )
    app = create_app(settings)
    results: dict[str, Any] = {}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=600) as http:
            login = await http.post(
                "/graphql",
                json={
                    "query": 'mutation ($p: String!) { login(username: "admin", password: $p) { accessToken } }',
                    "variables": {"p": PASSWORD},
                },
            )
            token = login.json()["data"]["login"]["accessToken"]
            today = clinic_today(settings.clinic_tz)
            for file_format, builder, filename, start in (
                ("csv", as_csv, "plan.csv", today + timedelta(days=1)),
                ("xlsx", as_xlsx, "plan.xlsx", today + timedelta(days=1 + rows // (2 * physicians) + 1)),
            ):
                plan = plan_rows(names, rows, start)
                data = builder(plan)
                dry, dry_report = await timed_import(http, token, data, filename, True)
                wet, wet_report = await timed_import(http, token, data, filename, False)
                again, again_report = await timed_import(http, token, data, filename, False)
                assert dry_report["created"] == rows and wet_report["created"] == rows, (dry_report, wet_report)
                assert again_report["unchanged"] == rows and again_report["created"] == 0, again_report
                if file_format == "csv":  # the floor: the same rows, one multi-row INSERT per batch
                    results["floor"] = import_floor.run(url, data)
                    assert results["floor"]["same_rows_as_the_import"], results["floor"]
                results[file_format] = {
                    "bytes": len(data),
                    "dry_run_seconds": round(dry, 3),
                    "import_seconds": round(wet, 3),
                    "reimport_seconds": round(again, 3),
                    "dry_run_rows_per_second": round(rows / dry),
                    "import_rows_per_second": round(rows / wet),
                    "reimport_rows_per_second": round(rows / again),
                }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--physicians", type=int, default=50)
    parser.add_argument("--mysql", action="store_true", help="MariaDB at 127.0.0.1:3306 as root")
    parser.add_argument("--out", default=str(BENCH / "results"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        if args.mysql:
            import pymysql

            connection = pymysql.connect(host="127.0.0.1", port=3306, user="root", charset="utf8mb4")
            with connection.cursor() as cursor:
                cursor.execute("DROP DATABASE IF EXISTS followup_bench_import")
                cursor.execute("CREATE DATABASE followup_bench_import CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
            connection.close()
            url, database = "mysql+aiomysql://root@127.0.0.1:3306/followup_bench_import", "mariadb"
        else:
            url, database = f"sqlite+aiosqlite:///{folder}/import.db", "sqlite"
        run_migrations(url)  # Alembic runs its own event loop
        results = asyncio.run(bench(url, args.rows, args.physicians))
    record = {
        "database": database,
        "rows": args.rows,
        "physicians": args.physicians,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {platform.system()}",
        "results": results,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    existing = json.loads((out / "import.json").read_text()) if (out / "import.json").exists() else {}
    existing[database] = record
    (out / "import.json").write_text(json.dumps(existing, indent=2, ensure_ascii=False) + "\n")
    lines = [
        "# importSchedules: a 10,000-row plan through the API (bench/import_schedules.py)",
        "",
        "Rows per second of the whole request (multipart upload, parsing, every row checked, the write unit with its",
        "audit event), in process (ASGI transport), one client. Re-import: the same plan again, every row unchanged.",
        "",
        "| database | format | bytes | dry run rows/s | import rows/s (s) | re-import rows/s |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, entry in sorted(existing.items()):
        for file_format, figures in entry["results"].items():
            if file_format == "floor":
                continue
            lines.append(
                f"| {name} | {file_format} | {figures['bytes']:,} | {figures['dry_run_rows_per_second']:,} | "
                f"{figures['import_rows_per_second']:,} ({figures['import_seconds']}) | "
                f"{figures['reimport_rows_per_second']:,} |"
            )
    floors = [
        (name, entry["results"]["floor"]) for name, entry in sorted(existing.items()) if "floor" in entry["results"]
    ]
    if floors:
        lines += [
            "",
            "Beside it, the floor (bench/import_floor.py): the same CSV parsed with the csv module, the physicians and",
            f"departments looked up once, the same rows inserted by one multi-row INSERT per {import_floor.BATCH} rows",
            "in one transaction with an event (no check against existing sessions); its rows equal the import's.",
            "",
            "| database | import rows/s (CSV) | floor rows/s | floor/import |",
            "|---|---:|---:|---:|",
        ]
        for name, floor in floors:
            ours = existing[name]["results"]["csv"]["import_rows_per_second"]
            lines.append(
                f"| {name} | {ours:,} | {floor['rows_per_second']:,} | {floor['rows_per_second'] / ours:.1f} |"
            )
    (out / "import.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

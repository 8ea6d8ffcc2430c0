# ruff: noqa: S603, S608  (benchmark tooling: SQL from constants, local commands)
"""A fixed-seed benchmark data set in its own MariaDB database, valid for the app.

    python bench/generate.py --patients 100000 [--force]

Migrates the database with `server.py migrate`, seeds the demo departments and accounts (no demo
patients), then writes per patient 4 visits (1-2 diagnoses each, 1.25 on average) and 10 follow-ups
(3 or 2 per visit, from the visit's protocol), with multi-row INSERTs over aiomysql. Identity and phone
numbers are Fernet-encrypted with the app's cipher (core.crypto) and carry their keyed hashes.
A `bench_meta` row records the seed and counts; an existing complete data set is kept unless --force.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aiomysql
import pymysql
from common import (  # type: ignore[import-not-found]
    BENCH_PASSWORD,
    DB_USER_PASSWORD,
    DB_USERS,
    PYTHON,
    ROOT,
    database_name,
    database_url,
    mysql_kwargs,
)

SEED = 2026
REFERENCE_DAY = date(2026, 11, 1)  # fixed, so the data set does not depend on the day it was made
VISITS_PER_PATIENT = 4
BATCH = 4000


def _sql_value(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        return "'" + value.strftime("%Y-%m-%d %H:%M:%S.%f") + "'"
    if isinstance(value, date):
        return "'" + value.isoformat() + "'"
    return "'" + pymysql.converters.escape_string(str(value)) + "'"


class Writer:
    """Buffers rows per table and flushes them as multi-row INSERTs."""

    def __init__(self, conn: aiomysql.Connection, columns: dict[str, list[str]]) -> None:
        self.conn = conn
        self.columns = columns
        self.rows: dict[str, list[str]] = {table: [] for table in columns}
        self.count: dict[str, int] = dict.fromkeys(columns, 0)

    async def add(self, table: str, values: tuple[Any, ...]) -> None:
        rows = self.rows[table]
        rows.append("(" + ",".join(_sql_value(v) for v in values) + ")")
        if len(rows) >= BATCH:
            await self.flush(table)

    async def flush(self, table: str | None = None) -> None:
        for name in [table] if table else list(self.rows):
            rows = self.rows[name]
            if not rows:
                continue
            statement = f"INSERT INTO {name} ({','.join(self.columns[name])}) VALUES " + ",".join(rows)
            async with self.conn.cursor() as cursor:
                await cursor.execute(statement)
            self.count[name] += len(rows)
            rows.clear()


COLUMNS = {
    "patient": [
        "id", "name", "name_initials", "gender", "birth_date", "id_type", "id_number", "id_number_hash",
        "phone", "phone_hash", "address", "allergies", "past_history", "department_id",
        "attending_physician_id", "consent_scope", "consent_version", "consent_at", "created_by_id",
        "created_at", "updated_at", "version",
    ],
    "visit": [
        "id", "patient_id", "physician_id", "department_id", "visit_date", "visit_type", "chief_complaint",
        "examination_findings", "notes", "created_at",
    ],
    "diagnosis": [
        "id", "visit_id", "patient_id", "icd10_code", "icd10_name", "is_primary", "tcm_syndrome", "created_at",
    ],
    "follow_up": [
        "id", "patient_id", "visit_id", "protocol_id", "offset_days", "due_date", "status", "method",
        "outcome_text", "pain_score", "bleeding", "wexner_score", "recurrence", "satisfaction",
        "recorded_by_id", "recorded_at", "created_at", "version",
    ],
}  # fmt: skip


def admin_connect(db: str | None = None) -> pymysql.Connection:
    kwargs = mysql_kwargs(None)
    if db:
        kwargs["database"] = db
    return pymysql.connect(**kwargs, autocommit=True)  # type: ignore[arg-type]


def existing_meta(patients: int) -> dict[str, Any] | None:
    conn = admin_connect()
    try:
        with conn.cursor() as cursor:
            cursor.execute("SHOW DATABASES LIKE %s", (database_name(patients),))
            if not cursor.fetchone():
                return None
            cursor.execute(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema=%s AND table_name='bench_meta'",
                (database_name(patients),),
            )
            if not cursor.fetchone()[0]:
                return None
            cursor.execute(
                "SELECT seed, patients, visits, diagnoses, follow_ups, seconds, rows_per_second "
                f"FROM {database_name(patients)}.bench_meta"
            )
            row = cursor.fetchone()
    finally:
        conn.close()
    if not row:
        return None
    keys = ["seed", "patients", "visits", "diagnoses", "follow_ups", "seconds", "rows_per_second"]
    return dict(zip(keys, row, strict=True))


def create_database(patients: int) -> None:
    name = database_name(patients)
    conn = admin_connect()
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name}")
            cursor.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
            create_accounts(cursor)
    finally:
        conn.close()


def migrate_and_seed(patients: int) -> None:
    env = dict(os.environ, DATABASE_URL=database_url(patients), DEMO_PASSWORD=BENCH_PASSWORD, APP_MODE="demo")
    subprocess.run([PYTHON, "server.py", "migrate"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)

    async def seed() -> None:
        from core.db import Database
        from resolvers.demo.seed import seed_demo

        db = Database(database_url(patients))
        try:
            await seed_demo(db, password=BENCH_PASSWORD, patients=0, today=REFERENCE_DAY)
        finally:
            await db.dispose()

    asyncio.run(seed())


async def fill(patients: int, seed: int) -> dict[str, int]:
    from core.crypto import cipher
    from core.validation import initials
    from resolvers.clinical import icd10
    from resolvers.demo.clinical import COMPLAINTS, GIVEN, PROTOCOLS, SURNAMES, TCM, _resident_id

    rng = random.Random(seed)  # noqa: S311 (deterministic data, not security)
    crypt = cipher()
    conn = await aiomysql.connect(**mysql_kwargs(patients), autocommit=False)  # type: ignore[arg-type]
    try:
        async with conn.cursor() as cursor:
            await cursor.execute("SET foreign_key_checks=0, unique_checks=0")
            await cursor.execute("SELECT code, id FROM department")
            departments = dict(await cursor.fetchall())
            await cursor.execute("SELECT username, id FROM app_user")
            users = dict(await cursor.fetchall())
            await cursor.execute("SELECT name, id, offsets FROM follow_up_protocol")
            protocol_rows = {name: (pid, offsets) for name, pid, offsets in await cursor.fetchall()}
            for table in COLUMNS:  # a re-run after a crash starts clean
                await cursor.execute(f"DELETE FROM {table}")
        protocols = [protocol_rows[name] for name, _o, _d in PROTOCOLS]
        # protocol index -> diagnosis codes (as in the demo data set)
        codes_of = {
            0: ["K64.1", "K64.2", "K64.3", "K64.5"],
            1: ["K60.3", "K60.5"],
            2: ["K61.0", "K61.2", "K61.3"],
            3: ["C18.7", "C19", "C20", "C18.2"],
            4: ["K60.0", "K60.1"],
        }
        three = [i for i, (_pid, offsets) in enumerate(protocols) if offsets.count(",") == 2]
        two = [i for i, (_pid, offsets) in enumerate(protocols) if offsets.count(",") == 1]
        code_names = {code: icd10.lookup(code).name_zh for codes in codes_of.values() for code in codes}
        char_initial = {ch: initials(ch) for ch in SURNAMES + GIVEN}
        writer = Writer(conn, COLUMNS)
        visit_id = diagnosis_id = follow_up_id = 0
        chief, physician, physician2 = users["chief"], users["physician"], users["physician2"]
        base = datetime(2023, 1, 1, 8, 0, tzinfo=UTC).replace(tzinfo=None)
        for pid in range(1, patients + 1):
            bucket = pid % 10
            if bucket < 3:
                department, doctor = departments["GI"], physician2
            elif bucket < 5:
                department, doctor = departments["CRS-ANO"], physician if bucket == 3 else chief
            else:
                department, doctor = departments["CRS"], chief if bucket in (5, 6) else physician
            male = rng.random() < 0.55
            age = rng.randint(22, 85)
            birth = date(REFERENCE_DAY.year - age, rng.randint(1, 12), rng.randint(1, 28))
            name = rng.choice(SURNAMES) + rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.6 else "")
            id_number = _resident_id(rng, birth, male)
            phone = f"1{rng.choice('3578')}{rng.randrange(10**9):09d}"
            created = base + timedelta(minutes=pid * 7)
            await writer.add(
                "patient",
                (
                    pid, name, "".join(char_initial[ch] for ch in name), "male" if male else "female", birth,
                    "resident_id", crypt.encrypt(id_number), crypt.digest(id_number), crypt.encrypt(phone),
                    crypt.digest(phone), f"北京市朝阳区{rng.randint(1, 300)}号", rng.choice(["无", "青霉素过敏"]),
                    rng.choice(["高血压", "无特殊", "便秘多年"]), department, doctor, "treatment,follow-up", "2026.1",
                    created, doctor, created, created, 1,
                ),
            )  # fmt: skip
            for v in range(VISITS_PER_PATIENT):
                visit_id += 1
                protocol_index = rng.choice(three if v % 2 == 0 else two)
                protocol_pk, offsets = protocols[protocol_index]
                day = REFERENCE_DAY - timedelta(days=rng.randint(1, 1000))
                code = rng.choice(codes_of[protocol_index])
                prefix = code[:3] if code[0] == "K" else code[:2]
                at = datetime.combine(day, datetime.min.time()) + timedelta(hours=9)
                await writer.add(
                    "visit",
                    (
                        visit_id, pid, doctor, department, day,
                        rng.choice(["outpatient", "outpatient", "inpatient", "surgery"]),
                        rng.choice(COMPLAINTS.get(prefix, ["肛门不适"])), "截石位视诊及指诊检查", "建议规律排便", at,
                    ),
                )  # fmt: skip
                for d in range(1 if rng.random() < 0.75 else 2):
                    diagnosis_id += 1
                    this = code if d == 0 else rng.choice(codes_of[protocol_index])
                    await writer.add(
                        "diagnosis",
                        (diagnosis_id, visit_id, pid, this, code_names[this], d == 0, rng.choice(TCM), at),
                    )
                for offset in (int(o) for o in offsets.split(",")):
                    follow_up_id += 1
                    due = day + timedelta(days=offset)
                    status, outcome = "scheduled", (None,) * 8
                    if due < REFERENCE_DAY and rng.random() < 0.85:
                        status = "completed" if rng.random() < 0.92 else "missed"
                        if status == "completed":
                            outcome = (
                                "恢复良好", rng.randint(0, 5), rng.random() < 0.1, rng.randint(0, 6),
                                rng.random() < 0.06, rng.randint(3, 5), doctor,
                                datetime.combine(due, datetime.min.time()) + timedelta(hours=10),
                            )  # fmt: skip
                    await writer.add(
                        "follow_up",
                        (
                            follow_up_id, pid, visit_id, protocol_pk, offset, due, status,
                            rng.choice(["phone", "wechat", "clinic"]), *outcome, at, 1,
                        ),
                    )  # fmt: skip
        await writer.flush()
        await conn.commit()
        return writer.count
    finally:
        conn.close()


def write_meta(patients: int, seed: int, counts: dict[str, int], seconds: float) -> dict[str, Any]:
    rows = sum(counts.values())
    meta = {
        "seed": seed,
        "patients": counts["patient"],
        "visits": counts["visit"],
        "diagnoses": counts["diagnosis"],
        "follow_ups": counts["follow_up"],
        "seconds": round(seconds, 1),
        "rows_per_second": int(rows / seconds),
    }
    conn = admin_connect(database_name(patients))
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                "CREATE TABLE bench_meta (seed INT, patients INT, visits INT, diagnoses INT, follow_ups INT, "
                "seconds DOUBLE, rows_per_second INT)"
            )
            cursor.execute("INSERT INTO bench_meta VALUES (%s,%s,%s,%s,%s,%s,%s)", tuple(meta.values()))
            cursor.execute("ANALYZE TABLE patient, visit, diagnosis, follow_up")
    finally:
        conn.close()
    return meta


def create_accounts(cursor: Any) -> None:
    """Each server's own MariaDB account (statements are counted per account); kept data sets get new ones too."""
    for user in DB_USERS.values():
        if user == mysql_kwargs(None)["user"]:
            continue
        cursor.execute(f"CREATE USER IF NOT EXISTS '{user}'@'%' IDENTIFIED BY '{DB_USER_PASSWORD}'")
        cursor.execute(f"CREATE USER IF NOT EXISTS '{user}'@'localhost' IDENTIFIED BY '{DB_USER_PASSWORD}'")
        cursor.execute(f"GRANT ALL PRIVILEGES ON `followup\\_bench\\_%`.* TO '{user}'@'%'")
        cursor.execute(f"GRANT ALL PRIVILEGES ON `followup\\_bench\\_%`.* TO '{user}'@'localhost'")


def ensure_accounts() -> None:
    conn = admin_connect()
    try:
        with conn.cursor() as cursor:
            create_accounts(cursor)
    finally:
        conn.close()


def generate(patients: int, *, seed: int = SEED, force: bool = False) -> dict[str, Any]:
    if not force:
        meta = existing_meta(patients)
        if meta and meta["patients"] == patients and meta["seed"] == seed:
            print(f"{database_name(patients)}: data set present ({meta['patients']} patients); kept", flush=True)
            env = dict(os.environ, DATABASE_URL=database_url(patients), APP_MODE="demo")
            # the code may have moved on since the data was made: its migrations first
            done = subprocess.run([PYTHON, "server.py", "migrate"], cwd=ROOT, env=env, capture_output=True, text=True)
            if done.returncode:
                print("warning: migrate failed on the kept data set: " + done.stderr.strip()[-200:], flush=True)
            return meta | {"reused": True}
    started = time.perf_counter()
    create_database(patients)
    migrate_and_seed(patients)
    print(f"{database_name(patients)}: migrated and seeded in {time.perf_counter() - started:.1f} s", flush=True)
    fill_started = time.perf_counter()
    counts = asyncio.run(fill(patients, seed))
    seconds = time.perf_counter() - fill_started
    meta = write_meta(patients, seed, counts, seconds)
    print(
        f"{database_name(patients)}: {sum(counts.values())} rows {counts} in {seconds:.1f} s "
        f"({meta['rows_per_second']} rows/s)",
        flush=True,
    )
    return meta | {"reused": False}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--force", action="store_true", help="regenerate even when the data set is present")
    args = parser.parse_args()
    generate(args.patients, seed=args.seed, force=args.force)


if __name__ == "__main__":
    main()

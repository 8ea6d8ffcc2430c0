"""`server.py backup` while the API takes writes, `server.py restore` into a second, empty database: checksums
checked, every table compared, the audit chain verified there; a non-empty database and a damaged backup refused.
On SQLite (the online backup API) and on MariaDB (mariadb-dump --single-transaction; the copy goes into
`<database>_restore`, created and dropped here)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest
import sqlalchemy
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

import models  # noqa: F401
from tests.conftest import GraphQLClient

ROOT = Path(__file__).resolve().parents[1]
CREATE = "mutation ($n: String!) { createPosition(name: $n) { id name } }"
# Rows the running server changes after they are written (the seal state, sessions' last use, request figures):
# compared by presence only. Every other row in the copy must be the source's row, value for value.
CHANGING = {"audit_seal_state", "audit_seal_gap", "auth_session", "request_minute", "app_user"}


def command(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}
    return subprocess.run(
        [sys.executable, "server.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )


@pytest.fixture
def second_database(database_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of the same kind: a new SQLite file, or `<name>_restore` on the same MariaDB."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'restored.db'}"
        return
    name = f"{url.database}_restore"
    server = pymysql.connect(
        host=url.host or "127.0.0.1", port=url.port or 3306, user=url.username, password=url.password or "",
        autocommit=True,
    )  # fmt: skip
    cursor = server.cursor()
    cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
    cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        server.close()


def rows_by_key(database_url: str) -> dict[str, dict[tuple[Any, ...], dict[str, Any]]]:
    url = make_url(database_url)
    sync = url.set(drivername="sqlite" if url.get_backend_name() == "sqlite" else "mysql+pymysql")
    engine = sqlalchemy.create_engine(sync)
    tables: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {}
    try:
        with engine.connect() as connection:
            for table in SQLModel.metadata.sorted_tables:
                keys = [column.name for column in table.primary_key.columns]
                rows = connection.execute(table.select()).mappings().all()
                tables[table.name] = {tuple(row[key] for key in keys): dict(row) for row in rows}
            version = connection.execute(sqlalchemy.text("SELECT version_num FROM alembic_version")).scalar()
            tables["alembic_version"] = {(version,): {"version_num": version}}
    finally:
        engine.dispose()
    return tables


async def test_a_backup_taken_under_writes_restores_whole(
    client: GraphQLClient, database_url: str, second_database: str, tmp_path: Path
) -> None:
    await client.token("admin")
    acknowledged: list[tuple[str, float]] = []
    stop = asyncio.Event()

    async def writer(number: int) -> None:
        count = 0
        while not stop.is_set():
            name = f"Shift {number}-{count}"
            result = await client.run(CREATE, {"n": name}, as_="admin")
            assert "errors" not in result, result
            acknowledged.append((name, time.monotonic()))
            count += 1

    writers = [asyncio.create_task(writer(number)) for number in range(3)]
    await asyncio.sleep(0.5)  # writes are flowing
    folder = tmp_path / "backup"
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "server.py", "backup", "--out", str(folder), cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output = (await process.communicate())[0].decode()
    finished = time.monotonic()
    await asyncio.sleep(0.3)
    stop.set()
    await asyncio.gather(*writers)
    assert process.returncode == 0, output
    assert "backup of the" in output and "sha256" in output
    during = [name for name, at in acknowledged if started < at < finished]
    assert during, "no write was answered while the backup ran: not a backup under load"
    before = {name for name, at in acknowledged if at < started}

    restored = command(second_database, "restore", "--from", str(folder))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "checksums ok" in restored.stdout

    source, copy = rows_by_key(database_url), rows_by_key(second_database)
    assert copy.keys() == source.keys()
    for table, rows in copy.items():
        assert rows.keys() <= source[table].keys(), f"{table}: rows the source never had"
        if table not in CHANGING:
            different = [key for key, row in rows.items() if source[table][key] != row]
            assert different == [], f"{table}: rows that differ from the source: {different[:3]}"
    assert copy["alembic_version"] == source["alembic_version"]
    missing = {table for table, rows in source.items() if rows.keys() - copy[table].keys()}
    assert missing <= {"position", "event", "event_seal", *CHANGING}, missing  # only what came after the snapshot
    positions = {row["name"] for row in copy["position"].values()}
    assert before <= positions  # every write answered before the backup began is in it
    shifts = {str(key[0]) for key, row in copy["position"].items() if row["name"].startswith("Shift")}
    created = {row["entity_id"] for row in copy["event"].values() if row["operation"] == "createPosition"}
    assert created == shifts  # a write and its audit event are in the snapshot together, or neither is

    verified = command(second_database, "verify-audit")
    assert verified.returncode == 0 and verified.stdout.strip().splitlines()[-1].startswith("ok:"), verified.stdout

    again = command(second_database, "restore", "--from", str(folder))
    assert again.returncode != 0 and "not empty" in again.stderr, again.stderr


def test_a_damaged_backup_is_refused(database_url: str, tmp_path: Path) -> None:
    from resolvers.data.backup import DATA_FILES, BackupError, backup, restore

    folder = tmp_path / "backup"
    backup(database_url, folder)
    kind = make_url(database_url).get_backend_name()
    data = folder / DATA_FILES[kind]
    with data.open("r+b") as handle:  # one byte changed in the middle
        handle.seek(data.stat().st_size // 2)
        byte = handle.read(1)
        handle.seek(-1, 1)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(BackupError, match="checksum mismatch"):
        restore(f"sqlite+aiosqlite:///{tmp_path / 'never.db'}" if kind == "sqlite" else database_url, folder)
    with pytest.raises(BackupError, match="not empty"):
        backup(database_url, folder)  # never over an earlier backup

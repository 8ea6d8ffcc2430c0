"""Backups an operator can trust and restore: `server.py backup --out DIR` and `server.py restore --from DIR`.

A backup is a directory of three files:
- the data: `database.sql` (MariaDB/MySQL: `mariadb-dump --single-transaction`, one consistent snapshot taken
  while the server keeps serving; InnoDB tables only, so nothing is locked) or `database.sqlite` (SQLite: the
  online backup API, copied in one step under one read transaction: a consistent snapshot, writers not held);
- `manifest.json`: format, when, from which database (no password), the migration revision, the tool, the data
  file's size and sha256;
- `SHA256SUMS`: the sha256 of both (checkable by hand: `sha256sum -c SHA256SUMS`).

`restore` checks every checksum first, refuses a database that is not empty (any table at all) and a backup of
the other kind of database, then loads the data (`mariadb` client / a copy through the backup API). The audit
chain travels with the data; `verify-audit` on the restored database proves it whole.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy
from sqlalchemy.engine import URL, make_url

from core.db import split_failover

FORMAT = "followup-backup/1"
MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
DATA_FILES = {"mysql": "database.sql", "sqlite": "database.sqlite"}
_DEFINER = re.compile(rb"/\*!50017 DEFINER=`[^`]*`@`[^`]*`\*/ ?")
_CHUNK = 1 << 20


class BackupError(RuntimeError):
    """A backup or restore refused, with a message for the operator."""


@dataclass
class Outcome:
    folder: Path
    kind: str
    data_bytes: int
    sha256: str
    revision: str | None


def _kind(url: URL) -> str:
    backend = url.get_backend_name()
    if backend not in DATA_FILES:
        raise BackupError(f"backups cover SQLite and MySQL/MariaDB, not {backend}")
    return backend


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _sync_url(url: URL) -> URL:
    """The same database through a synchronous driver (the checks here run outside the event loop)."""
    return url.set(drivername="sqlite" if url.get_backend_name() == "sqlite" else "mysql+pymysql")


def _url(database_url: str) -> URL:
    """The URL's own host (a backup reads one node; the `failover` hosts are the server's, not the tools')."""
    return make_url(split_failover(database_url)[0])


def _tables(url: URL) -> list[str]:
    engine = sqlalchemy.create_engine(_sync_url(url))
    try:
        return sorted(sqlalchemy.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _revision(url: URL) -> str | None:
    engine = sqlalchemy.create_engine(_sync_url(url))
    try:
        with engine.connect() as connection:
            return connection.execute(sqlalchemy.text("SELECT version_num FROM alembic_version")).scalar()
    except sqlalchemy.exc.SQLAlchemyError:
        return None
    finally:
        engine.dispose()


def _client_env(url: URL) -> dict[str, str]:
    env = dict(os.environ)
    if url.password:
        env["MYSQL_PWD"] = str(url.password)  # not on the command line, where `ps` would show it
    return env


def _client_args(url: URL) -> list[str]:
    args = [f"--host={url.host or '127.0.0.1'}", f"--port={url.port or 3306}"]
    if url.username:
        args.append(f"--user={url.username}")
    return args


def _tool(name: str) -> str:
    for candidate in (name, name.replace("mariadb", "mysql")):
        found = shutil.which(candidate)
        if found:
            return found
    raise BackupError(f"{name} is not installed (Debian: apt-get install mariadb-client)")


# ---- backup ---------------------------------------------------------------------------------------


def backup(database_url: str, out: Path) -> Outcome:
    url = _url(database_url)
    kind = _kind(url)
    if out.exists() and any(out.iterdir()):
        raise BackupError(f"{out} is not empty: a backup goes into a new or empty directory")
    out.mkdir(parents=True, exist_ok=True)
    data = out / DATA_FILES[kind]
    revision = _revision(url)
    if revision is None:
        raise BackupError(f"{url.render_as_string(hide_password=True)} holds no migrated database")
    tool = _dump_mysql(url, data) if kind == "mysql" else _copy_sqlite(Path(str(url.database)), data)
    digest = _sha256(data)
    manifest = {
        "format": FORMAT,
        "createdAt": datetime.now(UTC).isoformat(timespec="seconds"),
        "database": kind,
        "source": url.render_as_string(hide_password=True),
        "migrationRevision": revision,
        "tool": tool,
        "data": {"file": data.name, "bytes": data.stat().st_size, "sha256": digest},
    }
    (out / MANIFEST).write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    sums = f"{_sha256(out / MANIFEST)}  {MANIFEST}\n{digest}  {data.name}\n"
    (out / SUMS).write_text(sums, encoding="utf-8")
    return Outcome(out, kind, data.stat().st_size, digest, revision)


def _dump_mysql(url: URL, data: Path) -> str:
    dump = _tool("mariadb-dump")
    command = [
        dump,
        *_client_args(url),
        "--single-transaction",  # one consistent snapshot (InnoDB), no table locked: the server keeps serving
        "--quick",
        "--triggers",  # the audit tables' append-only triggers
        "--hex-blob",
        "--default-character-set=utf8mb4",
        "--no-tablespaces",
        "--skip-comments",
        "--no-create-db",
        str(url.database),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_client_env(url))  # noqa: S603
    assert process.stdout is not None
    with data.open("wb") as handle:
        for line in process.stdout:  # triggers carry no DEFINER: they belong to whoever restores them
            handle.write(_DEFINER.sub(b"", line))
    error = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if process.wait() != 0:
        raise BackupError(f"mariadb-dump failed: {error.strip()[-500:]}")
    version = subprocess.run([dump, "--version"], capture_output=True, text=True, check=False).stdout.strip()  # noqa: S603
    return f"{version} --single-transaction"


def _copy_sqlite(source: Path, data: Path) -> str:
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(data)
    try:
        src.backup(dst, pages=-1)  # every page in one step, under one read transaction: one consistent snapshot
    finally:
        dst.close()
        src.close()
    return f"sqlite3 online backup API (SQLite {sqlite3.sqlite_version})"


# ---- restore --------------------------------------------------------------------------------------


def read_manifest(folder: Path) -> dict[str, Any]:
    """The backup's manifest, after every checksum in SHA256SUMS matched."""
    sums = folder / SUMS
    if not sums.exists() or not (folder / MANIFEST).exists():
        raise BackupError(f"{folder} is not a backup (no {MANIFEST} and {SUMS})")
    listed: dict[str, str] = {}
    for line in sums.read_text(encoding="utf-8").splitlines():
        digest, _, name = line.partition("  ")
        listed[name.strip()] = digest.strip()
    for name, digest in listed.items():
        path = folder / name
        if not path.exists() or _sha256(path) != digest:
            raise BackupError(f"checksum mismatch: {name} is not the file the backup wrote (damaged or changed)")
    manifest: dict[str, Any] = orjson.loads((folder / MANIFEST).read_bytes())
    data = manifest.get("data", {})
    if manifest.get("format") != FORMAT or listed.get(data.get("file", "")) != data.get("sha256"):
        raise BackupError(f"{folder}: unknown backup format or a manifest that does not match {SUMS}")
    return manifest


def restore(database_url: str, folder: Path) -> Outcome:
    manifest = read_manifest(folder)
    url = _url(database_url)
    kind = _kind(url)
    if manifest["database"] != kind:
        raise BackupError(f"this is a {manifest['database']} backup; DATABASE_URL names a {kind} database")
    where = url.render_as_string(hide_password=True)
    data = folder / manifest["data"]["file"]
    if kind == "sqlite":
        target = Path(str(url.database))
        if target.exists() and _tables(url):
            raise BackupError(f"{where} is not empty: restore loads into an empty database (a new file)")
        _load_sqlite(data, target)
    else:
        found = _tables(url)
        if found:
            raise BackupError(
                f"{where} is not empty ({len(found)} tables: {', '.join(found[:5])}...): restore loads into an "
                "empty database; create a new one (CREATE DATABASE ... utf8mb4) or drop these tables first"
            )
        _load_mysql(url, data)
    revision = _revision(url)
    if revision != manifest["migrationRevision"]:
        raise BackupError(f"restored, but the migration revision is {revision}, not {manifest['migrationRevision']}")
    return Outcome(folder, kind, data.stat().st_size, manifest["data"]["sha256"], revision)


def _load_mysql(url: URL, data: Path) -> None:
    client = _tool("mariadb")
    command = [client, *_client_args(url), "--default-character-set=utf8mb4", str(url.database)]
    with data.open("rb") as handle:
        result = subprocess.run(command, stdin=handle, capture_output=True, env=_client_env(url), check=False)  # noqa: S603
    if result.returncode != 0:
        raise BackupError(f"loading the dump failed: {result.stderr.decode(errors='replace').strip()[-500:]}")


def _load_sqlite(data: Path, target: Path) -> None:
    src = sqlite3.connect(f"file:{data}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst, pages=-1)
    finally:
        dst.close()
        src.close()


def table_counts(database_url: str) -> dict[str, int]:
    """Rows per table (the operator's summary after a restore)."""
    engine = sqlalchemy.create_engine(_sync_url(_url(database_url)))
    try:
        with engine.connect() as connection:
            names = sorted(sqlalchemy.inspect(connection).get_table_names())
            counts = {}
            for name in names:
                statement = sqlalchemy.select(sqlalchemy.func.count()).select_from(sqlalchemy.table(name))
                counts[name] = int(connection.execute(statement).scalar() or 0)
            return counts
    finally:
        engine.dispose()

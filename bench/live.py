# ruff: noqa: S603  (benchmark tooling: SQL from constants, local commands)
"""Our server as the audit sealer's benchmarks run it (seal_backlog.py, seal_latency.py): the demo data on SQLite
or MariaDB, `server.py serve` with the production defaults (or an override), wrk, the unsealed backlog.

    SQLite:  bench/results/.work/seal.db (made on first use: migrate + seed-demo)
    MariaDB: database `followup_bench_seal` (BENCH_SEAL_MYSQL_DB), same MariaDB as the other benchmarks
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pymysql
from common import BENCH, PYTHON, ROOT, port_free, pymysql_kwargs  # type: ignore[import-not-found]

WORK = BENCH / "results" / ".work"  # as bench/run.py's
PASSWORD = "Bench#Seal2026"
PATIENTS_QUERY = "{ patients(first: 20) { edges { node { id name gender } } } }"
MYSQL_DB = os.environ.get("BENCH_SEAL_MYSQL_DB", "followup_bench_seal")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def database_url(kind: str) -> str:
    if kind == "sqlite":
        return f"sqlite+aiosqlite:///{WORK / 'seal.db'}"
    mysql = pymysql_kwargs(None)
    auth = f"{mysql['user']}:{mysql['password']}" if mysql["password"] else str(mysql["user"])
    driver = os.environ.get("BENCH_DRIVER", "asyncmy")  # as bench/run.py: the driver the README recommends
    return f"mysql+{driver}://{auth}@{mysql['host']}:{mysql['port']}/{MYSQL_DB}"


def server_env(kind: str, **overrides: str) -> dict[str, str]:
    """Production defaults (periodic sealing on, AUDIT_SEAL_INTERVAL_SECONDS=2) but for what a one-account load
    test needs: no rate limit, a long token, quiet logs, demo mode (the demo accounts)."""
    env = dict(
        os.environ,
        DATABASE_URL=database_url(kind),
        DEMO_PASSWORD=PASSWORD,
        APP_MODE="demo",
        RATE_LIMIT_ENABLED="false",
        ACCESS_TOKEN_MINUTES="600",
        LOG_LEVEL="WARNING",
    )
    env.update(overrides)
    return env


def prepare(kind: str) -> None:
    """The demo data set, made once (migrate + seed-demo) and kept."""
    WORK.mkdir(parents=True, exist_ok=True)
    if kind == "mysql":
        conn = pymysql.connect(**pymysql_kwargs(None), autocommit=True)  # type: ignore[arg-type]
        try:
            with conn.cursor() as cursor:
                cursor.execute(
                    f"CREATE DATABASE IF NOT EXISTS {MYSQL_DB} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                )
        finally:
            conn.close()
    env = server_env(kind)
    for command in ("migrate", "seed-demo"):
        subprocess.run([PYTHON, "server.py", command], cwd=ROOT, env=env, check=True, capture_output=True)


def seal_all(kind: str) -> None:
    """Seal what earlier runs left, with no server running (so each measurement starts with no backlog)."""
    script = (
        "import asyncio, sys; sys.path.insert(0, '.')\n"
        "from core.db import Database\nfrom resolvers.audit.chain import seal_pending\n"
        "async def main():\n    db = Database(sys.argv[1])\n    await seal_pending(db)\n    await db.dispose()\n"
        "asyncio.run(main())\n"
    )
    subprocess.run([PYTHON, "-c", script, database_url(kind)], cwd=ROOT, check=True)


def backlog(kind: str) -> dict[str, int]:
    """Unsealed events now: those above the highest sealed id and those that came late into a gap the sealer
    watches (every other id up to the highest sealed one is sealed), and the newest event id; range scans on
    primary keys, never over what was sealed."""
    sql = (
        "SELECT s.last_seq, (SELECT COUNT(*) FROM event WHERE id > s.max_sealed_event_id), "
        "(SELECT COUNT(*) FROM audit_seal_gap g JOIN event e ON e.id BETWEEN g.first_id AND g.last_id), "
        "(SELECT MAX(id) FROM event) FROM audit_seal_state s WHERE s.id = 1"
    )
    if kind == "sqlite":
        conn: Any = sqlite3.connect(WORK / "seal.db", timeout=30)
    else:
        conn = pymysql.connect(**{**pymysql_kwargs(None), "database": MYSQL_DB}, autocommit=True)  # type: ignore[arg-type]
    try:
        cursor = conn.cursor()
        cursor.execute(sql)
        last_seq, above, late, max_id = cursor.fetchone()
    finally:
        conn.close()
    return {"unsealed": int(above) + int(late), "last_seq": int(last_seq), "max_event_id": int(max_id or 0)}


def process_cpu(pid: int) -> float:
    """utime + stime of a process (seconds); 0 when it has ended."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def children(pid: int) -> list[int]:
    """The live child processes of a process (ours: the audit sealer's)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


class Ours:
    """`python server.py serve --workers 1` on a port, with server_env()."""

    def __init__(self, kind: str, port: int, **overrides: str) -> None:
        self.kind, self.port, self.overrides = kind, port, overrides
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = WORK / f"seal-{kind}-{port}.log"

    def __enter__(self) -> Ours:
        if not port_free(self.port):  # never time another process that happens to listen there
            raise SystemExit(f"port {self.port} is taken by another process; not starting")
        env = server_env(self.kind, **self.overrides)
        command = [PYTHON, "server.py", "serve", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
        handle = self.log_path.open("wb")
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"the server exited at start; see {self.log_path}")
            try:
                httpx.get(self.url + "/healthz", timeout=2)
            except httpx.HTTPError:
                time.sleep(0.3)
                continue
            time.sleep(0.3)  # a server that failed to bind exits: the answer came from someone else
            if self.process.poll() is not None:
                raise SystemExit(f"the server exited at start (port {self.port} taken?); see {self.log_path}")
            return self
        raise SystemExit(f"the server did not start; see {self.log_path}")

    def __exit__(self, *_: object) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # a clean stop: the sealer seals what is left
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def cpu(self) -> dict[str, float]:
        """CPU seconds of the server and of its sealer process (its one child)."""
        kids = children(self.pid)
        return {"server": process_cpu(self.pid), "sealer": sum(process_cpu(kid) for kid in kids)}

    def token(self) -> str:
        response = httpx.post(
            self.url + "/graphql",
            json={
                "query": "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { accessToken } }",
                "variables": {"u": "chief", "p": PASSWORD},
            },
            timeout=30,
        )
        return str(response.json()["data"]["login"]["accessToken"])


def bodies(query: str) -> Path:
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / "seal-bodies.jsonl"
    path.write_bytes(orjson.dumps({"query": query}) + b"\n")
    return path


def wrk(url: str, token: str, concurrency: int, seconds: float, query: str = PATIENTS_QUERY) -> dict[str, Any]:
    """wrk with bench/load.lua: requests, p50/p90/p99/max in microseconds, errors."""
    env = dict(os.environ, BENCH_BODIES=str(bodies(query)), BENCH_TOKEN=token)
    command = ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--timeout", "30s"]
    command += ["-s", str(BENCH / "load.lua"), url]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.startswith("BENCH_JSON "):
            result: dict[str, Any] = orjson.loads(line[len("BENCH_JSON ") :])
            return result
    raise RuntimeError(f"wrk printed no summary: {out}")


__all__ = ["PATIENTS_QUERY", "Ours", "backlog", "database_url", "log", "prepare", "seal_all", "wrk"]

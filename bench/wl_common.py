# ruff: noqa: S603, S608  (benchmark tooling: SQL from constants, local commands)
"""Shared by the workload benchmarks (bench/workloads.py): their database, servers on free ports, the load noted.

The booking rush and the subscription fan-out run on `followup_bench_workloads` (MariaDB): the demo data (300
patients, 250 of them in the chief's reach), made once by `server.py migrate` + `seed-demo` and kept. Servers:
ours (`server.py serve`, one worker, production defaults but for a one-account load test's needs: no rate limit,
a long token) and the floor (bench/floor.py) on that database, each on a port the OS says is free.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pymysql
from common import (  # type: ignore[import-not-found]
    BENCH,
    BENCH_PASSWORD,
    DB_USER_PASSWORD,
    DB_USERS,
    MYSQL_HOST,
    MYSQL_PORT,
    PYTHON,
    ROOT,
    pymysql_kwargs,
)
from live import children, process_cpu  # type: ignore[import-not-found]

DATABASE = os.environ.get("BENCH_WORKLOADS_DB", "followup_bench_workloads")
WORK = BENCH / "results" / ".work"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def url_of(who: str = "gen", driver: str = "aiomysql", database: str = DATABASE) -> str:
    kwargs = pymysql_kwargs(None, who)
    auth = f"{kwargs['user']}:{kwargs['password']}" if kwargs["password"] else str(kwargs["user"])
    return f"mysql+{driver}://{auth}@{MYSQL_HOST}:{MYSQL_PORT}/{database}"


def connect(database: str = DATABASE) -> Any:
    return pymysql.connect(**{**pymysql_kwargs(None), "database": database}, autocommit=True)  # type: ignore[arg-type]


def prepare() -> None:
    """The workloads' database with the demo data, made once; the servers' MariaDB accounts."""
    conn = pymysql.connect(**pymysql_kwargs(None), autocommit=True)  # type: ignore[arg-type]
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE IF NOT EXISTS {DATABASE} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
            for user in (DB_USERS["ours"], DB_USERS["floor"]):
                for host in ("%", "localhost"):
                    cursor.execute(f"CREATE USER IF NOT EXISTS '{user}'@'{host}' IDENTIFIED BY '{DB_USER_PASSWORD}'")
                    cursor.execute(f"GRANT ALL PRIVILEGES ON `followup\\_bench\\_%`.* TO '{user}'@'{host}'")
            cursor.execute(
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = 'app_user'",
                (DATABASE,),
            )
            ready = cursor.fetchone()[0]
            if ready:
                cursor.execute(f"SELECT COUNT(*) FROM {DATABASE}.app_user WHERE username = 'chief'")
                ready = cursor.fetchone()[0]
    finally:
        conn.close()
    if ready:
        return
    log(f"making {DATABASE}: migrate + seed-demo (once)")
    env = dict(os.environ, DATABASE_URL=url_of(), DEMO_PASSWORD=BENCH_PASSWORD, APP_MODE="demo", LOG_LEVEL="WARNING")
    for command in ("migrate", "seed-demo"):
        subprocess.run([PYTHON, "server.py", command], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)


class Proc:
    """A server under test: ours or the floor, on a free port, on the workloads' database."""

    def __init__(self, name: str, **env: str) -> None:
        self.name, self.port = name, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = WORK / f"workloads-{name}.log"

    def __enter__(self) -> Proc:
        WORK.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, LOG_LEVEL="WARNING", APP_MODE="demo", DEMO_PASSWORD=BENCH_PASSWORD, **self.env)
        if self.name == "ours":
            env.update(DATABASE_URL=url_of("ours", "asyncmy"), RATE_LIMIT_ENABLED="false", ACCESS_TOKEN_MINUTES="600")
            env.setdefault("CONCURRENCY_ADAPTIVE", "false")  # fixed concurrency measured (overload.py: shedding)
            command = [PYTHON, "server.py", "serve", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
            cwd = ROOT
        else:
            command = [PYTHON, str(BENCH / "floor.py"), "--database", DATABASE, "--port", str(self.port)]
            cwd = BENCH
        handle = self.log_path.open("wb")
        self.process = subprocess.Popen(command, cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT)
        deadline = time.time() + 90
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name} exited at start; see {self.log_path}")
            try:
                httpx.post(self.url + "/graphql", json={"query": "{ __typename }"}, timeout=2)
            except httpx.HTTPError:
                time.sleep(0.3)
                continue
            self._settle()
            return self
        raise SystemExit(f"{self.name} did not start; see {self.log_path}")

    def _settle(self, seconds: float = 60.0) -> None:
        """Ours: wait until the audit sealer's process has finished starting. It is spawned at start-up and imports
        the application (about 2 s of CPU) while the server already answers; measured from then, that import was
        counted in the first workload's CPU per request."""
        deadline = time.time() + seconds
        while self.name == "ours" and time.time() < deadline:
            before = self.children_cpu_seconds()
            time.sleep(0.5)
            if self.children_cpu_seconds() - before < 0.01:
                return

    def __exit__(self, *_: object) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def cpu_seconds(self) -> float:
        assert self.process is not None
        pid = self.process.pid
        return process_cpu(pid) + sum(process_cpu(child) for child in children(pid))

    def children_cpu_seconds(self) -> float:
        """Ours: the audit sealer's process."""
        assert self.process is not None
        return sum(process_cpu(child) for child in children(self.process.pid))

    def memory_mb(self) -> tuple[float, float]:
        """Resident memory now and at its peak (VmRSS, VmHWM), as bench/run.py's servers report it."""
        assert self.process is not None
        status = dict(
            row.split(":", 1) for row in Path(f"/proc/{self.process.pid}/status").read_text().splitlines() if ":" in row
        )
        return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


def login(url: str, username: str = "chief") -> str:
    response = httpx.post(
        url + "/graphql",
        json={
            "query": "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { accessToken } }",
            "variables": {"u": username, "p": BENCH_PASSWORD},
        },
        timeout=30,
    )
    return str(response.json()["data"]["login"]["accessToken"])

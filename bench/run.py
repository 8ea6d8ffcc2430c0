# ruff: noqa: S603, S607, S608  (benchmark tooling: SQL from constants, local commands)
"""Run the benchmark: generate the data set once, start the three servers, check, time, report.

    python bench/run.py --scale small            # 10k patients, 5 s per cell
    python bench/run.py --scale full             # 100k patients (and the 10k set for the scale check)

Servers: ours (`server.py serve`, one worker), the floor (bench/floor.py), the tutorial-style peer
(bench/tutorial_peer.py), the competent peer (bench/competent_peer.py), each on its own MariaDB account, and
PostGraphile 4 (bench/postgraphile/, on a PostgreSQL copy of the data: bench/pg_peer.py). Each gets a free
loopback port (BENCH_PORTS=ours=8711,... pins them; a taken one stops the run with its number). Before
anything is timed, every other server's JSON must equal our GraphQL `data` for Q1-Q4 (first and deep pages).
Load comes from wrk (Debian package) with bench/load.lua on loopback, one thread, at concurrency
1, 10 and 50; per cell: requests/s, p50/p99, statements per request (the server's own MariaDB
account in information_schema.USER_STATISTICS, and the global `Questions` counter), server CPU ms
per request (/proc/<pid>/stat) and resident memory (VmRSS now, VmHWM peak).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pymysql
from common import (  # type: ignore[import-not-found]
    BENCH,
    BENCH_PASSWORD,
    DB_USERS,
    DOCUMENTS,
    PYTHON,
    ROOT,
    SCALES,
    body,
    database_name,
    database_url,
    encode_cursor,
    encode_id,
    free_ports,
    port_free,
    pymysql_kwargs,
    sha256_hex,
)
from generate import ensure_accounts, generate  # type: ignore[import-not-found]
from live import children, process_cpu  # type: ignore[import-not-found]

SERVERS = ("ours", "floor", "peer", "competent", "postgraphile")
OTHERS = SERVERS[1:]  # checked equal to ours before timing
POSTGRAPHILE = BENCH / "postgraphile"


def ours_driver() -> str:
    """Our server's MySQL driver, read at each start (bench/ab.py varies it): asyncmy, as the README recommends."""
    return os.environ.get("BENCH_DRIVER", "asyncmy")


def seal_interval() -> str | None:
    """AUDIT_SEAL_INTERVAL_SECONDS for ours: None is the production default (bench/README.md)."""
    return os.environ.get("BENCH_AUDIT_SEAL_INTERVAL") or None


QUERIES = {"ours": ["Q0", "Q1", "Q2", "Q3", "Q4", "Q5", "Q6"], "floor": ["Q0", "Q1", "Q2", "Q3", "Q4"]}
QUERIES["peer"] = QUERIES["competent"] = QUERIES["postgraphile"] = QUERIES["floor"]
QUERIES["floor"] = [*QUERIES["floor"], "Q5"]  # the floor's write (bench/floor_writes.py); the peers have none
CLK_TCK = os.sysconf("SC_CLK_TCK")
WORK = BENCH / "results" / ".work"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---- servers ------------------------------------------------------------------------------------


class Server:
    def __init__(self, name: str, patients: int, port: int) -> None:
        self.name, self.patients, self.port = name, patients, port
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = WORK / f"{name}-{patients // 1000}k.log"

    def start(self) -> None:
        if not port_free(self.port):  # never time another process that happens to listen there
            raise SystemExit(f"port {self.port} for {self.name} is taken by another process; not starting")
        env = dict(
            os.environ,
            DATABASE_URL=database_url(self.patients, "ours", driver=ours_driver()),
            RATE_LIMIT_ENABLED="false",  # one client hammering one account is the point here
            CONCURRENCY_ADAPTIVE="false",  # throughput at a fixed concurrency, queueing included, not shedding
            ACCESS_TOKEN_MINUTES="600",  # one token for the whole run
            LOG_LEVEL="WARNING",
            APP_MODE="demo",
        )
        # Ours runs with its production defaults: the background sealer links read events every 2 s (in its own
        # process). BENCH_AUDIT_SEAL_INTERVAL=3600 gives the sealing-off reference (read events wait for a write).
        if seal_interval() is not None:
            env["AUDIT_SEAL_INTERVAL_SECONDS"] = str(seal_interval())
        if self.name == "ours":
            command = [PYTHON, "server.py", "serve", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
            cwd = ROOT
        elif self.name == "postgraphile":
            from pg_peer import READER, pg_url  # type: ignore[import-not-found]

            from core.settings import DEMO_JWT_SECRET

            if not (POSTGRAPHILE / "node_modules" / "postgraphile").is_dir():
                raise SystemExit("PostGraphile is not installed: `make bench` runs npm ci in bench/postgraphile")
            env.update(
                PORT=str(self.port),
                PG_URL=pg_url(self.patients),
                PG_ROLE=READER,
                JWT_SECRET=os.environ.get("JWT_SECRET", DEMO_JWT_SECRET),
                NODE_ENV="production",
            )
            command, cwd = ["node", str(POSTGRAPHILE / "server.js")], POSTGRAPHILE
        else:
            script = {"floor": "floor.py", "peer": "tutorial_peer.py", "competent": "competent_peer.py"}[self.name]
            command = [PYTHON, str(BENCH / script), "--patients", str(self.patients), "--port", str(self.port)]
            cwd = BENCH
        WORK.mkdir(parents=True, exist_ok=True)
        handle = self.log_path.open("wb")
        self.process = subprocess.Popen(command, cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name} exited at start; see {self.log_path}")
            try:
                httpx.post(self.url + "/graphql", json={"query": "{ __typename }"}, timeout=2)
            except httpx.HTTPError:
                time.sleep(0.3)
                continue
            time.sleep(0.3)  # a server that failed to bind exits: the answer came from someone else
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name} exited at start (port {self.port} taken?); see {self.log_path}")
            return
        raise SystemExit(f"{self.name} did not start; see {self.log_path}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def cpu_seconds(self) -> float:
        """The server's CPU and its child processes' (ours: the audit sealer's process)."""
        return process_cpu(self.pid) + sum(process_cpu(child) for child in children(self.pid))

    def memory_mb(self) -> tuple[float, float]:
        status = dict(
            line.split(":", 1) for line in Path(f"/proc/{self.pid}/status").read_text().splitlines() if ":" in line
        )
        return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


# ---- database counters --------------------------------------------------------------------------


class Counters:
    def __init__(self) -> None:
        self.conn = pymysql.connect(**pymysql_kwargs(None), autocommit=True)  # type: ignore[arg-type]
        with self.conn.cursor() as cursor:
            cursor.execute("SELECT @@userstat")
            self.userstat_before = cursor.fetchone()[0]
            try:
                cursor.execute("SET GLOBAL userstat = 1")
                self.per_user = True
            except pymysql.MySQLError:
                self.per_user = False

    def close(self) -> None:
        if self.per_user and not self.userstat_before:
            with self.conn.cursor() as cursor:
                cursor.execute("SET GLOBAL userstat = 0")
        self.conn.close()

    def snapshot(self, who: str, patients: int = 0) -> dict[str, float]:
        if who == "postgraphile":  # PostgreSQL: its database's transactions and rows (pg_stat_database)
            from pg_peer import counters  # type: ignore[import-not-found]

            return counters(patients)
        with self.conn.cursor() as cursor:
            cursor.execute("SHOW GLOBAL STATUS LIKE 'Questions'")
            snap = {"questions": float(cursor.fetchone()[1])}
            if self.per_user:
                cursor.execute(
                    "SELECT SELECT_COMMANDS + UPDATE_COMMANDS + OTHER_COMMANDS, SELECT_COMMANDS, UPDATE_COMMANDS, "
                    "OTHER_COMMANDS, BUSY_TIME, CPU_TIME, ROWS_READ FROM information_schema.USER_STATISTICS "
                    "WHERE USER = %s",
                    (DB_USERS[who],),
                )
                row = cursor.fetchone() or (0, 0, 0, 0, 0, 0, 0)
                keys = ["statements", "selects", "updates", "others", "db_busy_s", "db_cpu_s", "rows_read"]
                snap.update({key: float(value) for key, value in zip(keys, row, strict=True)})
        return snap


def delta(before: dict[str, float], after: dict[str, float], requests: int) -> dict[str, float]:
    n = max(requests, 1)
    if "pg_transactions" in before:
        return {
            "questions_per_request": 0.0,
            "pg_transactions_per_request": round((after["pg_transactions"] - before["pg_transactions"]) / n, 2),
            "pg_rows_returned_per_request": round((after["pg_rows_returned"] - before["pg_rows_returned"]) / n, 1),
        }
    out = {"questions_per_request": round((after["questions"] - before["questions"] - 2) / n, 2)}
    if "statements" in before:
        out.update(
            statements_per_request=round((after["statements"] - before["statements"]) / n, 2),
            selects_per_request=round((after["selects"] - before["selects"]) / n, 2),
            writes_per_request=round((after["updates"] - before["updates"]) / n, 2),
            other_per_request=round((after["others"] - before["others"]) / n, 2),
            db_busy_ms_per_request=round((after["db_busy_s"] - before["db_busy_s"]) * 1000 / n, 3),
            db_rows_read_per_request=round((after["rows_read"] - before["rows_read"]) / n, 1),
        )
    return out


# ---- bodies --------------------------------------------------------------------------------------


def login(url: str) -> str:
    response = httpx.post(
        url + "/graphql",
        json={
            "query": "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { accessToken } }",
            "variables": {"u": "chief", "p": BENCH_PASSWORD},
        },
        timeout=30,
    )
    answer = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    token = ((answer or {}).get("data") or {}).get("login") or {}
    if "accessToken" not in token:
        raise SystemExit(f"login as chief at {url} failed ({response.status_code}): {response.text[:300]}")
    return str(token["accessToken"])


def scope_ids(patients: int) -> dict[str, Any]:
    """Patients and scheduled follow-ups in the chief's scope (Colorectal Surgery and below)."""
    conn = pymysql.connect(**pymysql_kwargs(patients))  # type: ignore[arg-type]
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT id FROM department WHERE code IN ('CRS', 'CRS-ANO')")
            departments = [row[0] for row in cursor.fetchall()]
            marks = ",".join(["%s"] * len(departments))
            cursor.execute(
                f"SELECT id FROM patient WHERE department_id IN ({marks}) AND voided_at IS NULL ORDER BY id",
                departments,
            )
            in_scope = [row[0] for row in cursor.fetchall()]
            cursor.execute(
                f"SELECT f.id FROM follow_up f JOIN patient p ON p.id = f.patient_id WHERE f.status = 'scheduled' "
                f"AND p.department_id IN ({marks}) ORDER BY f.id LIMIT 60000",
                departments,
            )
            scheduled = [row[0] for row in cursor.fetchall()]
            cursor.execute("TRUNCATE TABLE event")  # each run starts from the same audit table
    finally:
        conn.close()
    step = max(1, len(in_scope) // 2000)
    return {
        "q1_ids": in_scope[::step][:2000],
        "deep_after": in_scope[int(len(in_scope) * 0.9)],
        "scheduled": scheduled,
    }


def bodies_for(name: str, ids: dict[str, Any], *, first: int | None = None, after: int | None = None) -> list[dict]:
    from common import PAGE_SIZES  # type: ignore[import-not-found]

    if name == "Q1":
        return [body("Q1", {"id": encode_id("Patient", pk)}) for pk in ids["q1_ids"]]
    if name == "Q5":
        return [body("Q5", {"id": encode_id("FollowUp", pk)}) for pk in ids["scheduled"]]
    if name in PAGE_SIZES:
        variables: dict[str, Any] = {"first": first or PAGE_SIZES[name]}
        if after is not None:
            variables["after"] = encode_cursor([after])
        return [body(name, variables, persisted=name == "Q6")]
    return [body(name)]


def write_bodies(tag: str, payloads: list[dict]) -> Path:
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / f"{tag}.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(p) for p in payloads) + b"\n")
    return path


def persisted_available(url: str, token: str) -> tuple[bool, str]:
    """Register Q6 (hash + query) once; then the hash alone must run it."""
    headers = {"Authorization": f"Bearer {token}"}
    digest = sha256_hex(DOCUMENTS["Q6"])
    extensions = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
    first = httpx.post(url + "/graphql", json={"extensions": extensions}, headers=headers, timeout=30)
    text = first.text
    if "PERSISTED_QUERY_NOT_FOUND" not in text and "PersistedQueryNotFound" not in text:
        return False, f"hash-only request before registration answered {first.status_code}: {text[:160]}"
    register = httpx.post(
        url + "/graphql",
        json={"query": DOCUMENTS["Q6"], "extensions": extensions, "variables": {"first": 20}},
        headers=headers,
        timeout=30,
    )
    again = httpx.post(
        url + "/graphql", json={"extensions": extensions, "variables": {"first": 20}}, headers=headers, timeout=30
    )
    if register.status_code != 200 or again.status_code != 200 or "errors" in again.json():
        return False, f"registration answered {register.status_code}, hash-only {again.status_code}: {again.text[:160]}"
    return True, "registered once with hash + query; timed requests send the hash only"


# ---- checks --------------------------------------------------------------------------------------


from pg_peer import normalise, translate  # type: ignore[import-not-found]  # noqa: E402


def check_equal(servers: dict[str, Server], token: str, ids: dict[str, Any]) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"}
    checks = []
    cases = [("Q1", {"id": encode_id("Patient", ids["q1_ids"][len(ids["q1_ids"]) // 2])})]
    for name in ("Q2", "Q3", "Q4"):
        cases.append((name, {"first": {"Q2": 50}.get(name, 20)}))
        cases.append((name, {"first": {"Q2": 50}.get(name, 20), "after": encode_cursor([ids["deep_after"]])}))
    with httpx.Client(timeout=60) as client:
        for name, variables in cases:
            ours = client.post(servers["ours"].url + "/graphql", json=body(name, variables), headers=headers).json()
            if "errors" in ours or not ours.get("data"):
                raise SystemExit(f"ours failed {name}: {str(ours)[:300]}")
            for other in [n for n in OTHERS if n in servers]:
                payload = body(name, variables)
                if other == "postgraphile":
                    payload = translate(payload)
                theirs = client.post(servers[other].url + "/graphql", json=payload, headers=headers)
                data = theirs.json().get("data")
                if other == "postgraphile":
                    data = normalise(data)
                equal = data == ours["data"]
                checks.append({"query": name, "server": other, "variables": variables, "equal": equal})
                if not equal:
                    raise SystemExit(f"{other} differs from ours on {name} {variables}: {theirs.text[:300]}")
    others = ", ".join(n for n in OTHERS if n in servers)
    log(f"checked: {others} JSON equal ours on {len(cases)} cases (Q1-Q4, first and deep pages)")
    return checks


# ---- timing ------------------------------------------------------------------------------------


def wrk(url: str, bodies: Path, token: str, concurrency: int, seconds: float) -> dict[str, Any]:
    env = dict(os.environ, BENCH_BODIES=str(bodies), BENCH_TOKEN=token)
    command = [
        "wrk",
        "-t1",
        f"-c{concurrency}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "30s",
        "-s",
        str(BENCH / "load.lua"),
        url,
    ]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.startswith("BENCH_JSON "):
            return orjson.loads(line[len("BENCH_JSON ") :])
    raise RuntimeError(f"wrk printed no summary: {out}")


def settle(server: Server, limit: float = 20.0) -> None:
    """Wait until the server has finished requests still queued from the last cell (CPU idle)."""
    deadline = time.time() + limit
    while time.time() < deadline:
        before = server.cpu_seconds()
        time.sleep(0.3)
        if server.cpu_seconds() - before < 0.03:
            return


def cell(
    server: Server, counters: Counters, bodies: Path, token: str, concurrency: int, seconds: float, warmup: float
) -> dict[str, Any]:
    settle(server)
    if warmup:
        wrk(server.url, bodies, token, concurrency, warmup)
        settle(server)
    load, patients = os.getloadavg()[0], getattr(server, "patients", 0)  # (bench/wl_*.py pass servers of their own)
    before, cpu_before = counters.snapshot(server.name, patients), server.cpu_seconds()
    result = wrk(server.url, bodies, token, concurrency, seconds)
    cpu_after, after = server.cpu_seconds(), counters.snapshot(server.name, patients)
    requests = result["requests"]
    rss, peak = server.memory_mb()
    return {
        "requests": requests,
        "rps": round(requests / (result["duration_us"] / 1e6), 1),
        "p50_ms": round(result["p50_us"] / 1000, 2),
        "p90_ms": round(result["p90_us"] / 1000, 2),
        "p99_ms": round(result["p99_us"] / 1000, 2),
        "errors": result["socket_errors"] + result["http_errors"] + result["graphql_errors"],
        "cpu_ms_per_request": round((cpu_after - cpu_before) * 1000 / max(requests, 1), 3),
        "rss_mb": round(rss, 1),
        "peak_rss_mb": round(peak, 1),
        "load_1m_before": round(load, 2),
        **delta(before, after, requests),
    }


def statements_once(
    server: Server, counters: Counters, token: str, payload: dict, repeat: int = 20, tries: int = 3
) -> dict[str, Any]:
    """Sequential requests, no concurrency: statements (and DB time) per request for one document.

    Ours runs with its production defaults, so its audit sealer (a child process on the same database account)
    may seal in the middle of a measurement and add its statements to the account's count. Its passes only ever
    add, so the measurement is taken `tries` times and the one with the fewest statements is kept."""
    headers = {"Authorization": f"Bearer {token}"}
    best: dict[str, Any] | None = None
    for _ in range(tries):
        settle(server)
        with httpx.Client(timeout=60) as client:
            client.post(server.url + "/graphql", json=payload, headers=headers)
            before = counters.snapshot(server.name)
            started = time.perf_counter()
            for _ in range(repeat):
                response = client.post(server.url + "/graphql", json=payload, headers=headers)
                if response.status_code != 200 or "errors" in response.json():
                    return {"error": response.text[:200]}
            elapsed = time.perf_counter() - started
            after = counters.snapshot(server.name)
        measured = {"sequential_ms": round(elapsed * 1000 / repeat, 2), **delta(before, after, repeat)}
        if best is None or measured.get("statements_per_request", 0) < best.get("statements_per_request", 0):
            best = measured
    assert best is not None
    return best


# ---- the run -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--seconds", type=float, help="timed seconds per cell (default: 5 small, 10 full)")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--concurrency", default="1,10,50")
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--queries", default="Q0,Q1,Q2,Q3,Q4,Q5,Q6")
    parser.add_argument("--skip-scale-check", action="store_true")
    parser.add_argument(
        "--rounds", type=int, default=1, help="cells per server, alternating servers; the report takes medians"
    )
    parser.add_argument("--label", help="results/<label>.* instead of results/<scale>.*")
    args = parser.parse_args()
    if subprocess.run(["which", "wrk"], capture_output=True).returncode != 0:
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    patients = SCALES[args.scale]
    seconds = args.seconds or (5.0 if args.scale == "small" else 10.0)
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    wanted = set(args.queries.split(","))
    names = [n for n in args.servers.split(",") if n]
    ports = free_ports(names)  # before anything else: a pinned port that is taken stops the run here
    started = time.time()

    data_sets = {patients: generate(patients)}
    if args.scale == "full" and not args.skip_scale_check:
        data_sets[SCALES["small"]] = generate(SCALES["small"])
    results: dict[str, Any] = {
        "scale": args.scale,
        "patients": patients,
        "database": database_name(patients),
        "data_sets": {str(k): v for k, v in data_sets.items()},
        "seconds_per_cell": seconds,
        "warmup_seconds": args.warmup,
        "concurrency": concurrencies,
        "audit_seal_interval_seconds": seal_interval() or "default (2)",
        "machine": {"cores": os.cpu_count(), "load_average_at_start": os.getloadavg()},
        "notes": [
            "Audit: ours and the floor write the same event rows; ours also links them into a hash chain. "
            + (
                "Ours runs with its production defaults: the background sealer (its own process) links read events"
                " every 2 s, so every cell includes sealing."
                if seal_interval() is None
                else f"REFERENCE RUN, not the production defaults: AUDIT_SEAL_INTERVAL_SECONDS={seal_interval()}"
                " (periodic sealing off: read events are linked only when a write, Q5, wakes the sealer)."
            )
            + " The chain's cost per event is also measured apart (see 'Audit sealing').",
            "One default is switched off for ours: the adaptive concurrency limit (CONCURRENCY_ADAPTIVE=false; the"
            " fixed ceiling MAX_REQUESTS_IN_FLIGHT stays). wrk's closed loop sends a shed request again at once,"
            " without its Retry-After, so with the default on a c=50 cell measures shedding, not the query; c=1 and"
            " c=10 shed nothing either way. The default's figures at c=5/10/50 are in bench/results/adaptive.md,"
            " its overload behaviour in bench/results/overload-sqlite.md and overload-mariadb.md.",
            f"Ours connects through {ours_driver()} (README: DATABASE_URL), the floor through raw aiomysql and the"
            " peers through aiomysql; bench/results/extra.md has ours on both drivers.",
            "Per request, ours, the floor and both Python peers verify the token, look the session, user and roles up"
            " in the database, apply the chief's data scope, write one audit row per patient read and decrypt the"
            " phone number (Q1). PostGraphile verifies the token's signature and expiry only (no session look-up,"
            " no account status), applies the scope by row-level security (policies/scope.py's condition, the"
            " department subtree from the caller's roles in SQL), decrypts the phone in PostgreSQL (pgcrypto) and"
            " writes no audit row: one transaction per request (set_config of role and claims, one compiled SELECT).",
        ],
        "cells": [],
        "rounds": args.rounds,
    }
    if args.label:
        results["label"] = args.label
    ids = scope_ids(patients)
    ensure_accounts()
    if "postgraphile" in names:
        names = prepare_postgraphile(patients, names, results)
    counters = Counters()
    if not counters.per_user:
        results["notes"].append("userstat unavailable: statements per request from the global Questions counter only")
    results["ports"] = {name: ports[name] for name in names}
    servers = {name: Server(name, patients, ports[name]) for name in names}
    try:
        for server in servers.values():
            server.start()
        log(f"servers up: {', '.join(f'{s.name} pid {s.pid}' for s in servers.values())}")
        token = login(servers["ours"].url)
        if set(OTHERS) & set(servers):
            results["checks"] = check_equal(servers, token, ids)
        q6_ok, q6_note = persisted_available(servers["ours"].url, token)
        results["q6"] = {"available": q6_ok, "note": q6_note}
        log(f"Q6 persisted query: {'available' if q6_ok else 'NOT available'} ({q6_note})")

        for query in [q for q in ("Q0", "Q1", "Q2", "Q3", "Q4", "Q5", "Q6") if q in wanted]:
            if query == "Q6" and not q6_ok:
                continue
            payloads = bodies_for(query, ids)
            paths = {name: write_bodies(query, payloads) for name in servers if name != "postgraphile"}
            if "postgraphile" in servers and query in QUERIES["postgraphile"]:
                paths["postgraphile"] = write_bodies(f"{query}-pg", [translate(p) for p in payloads])
            for concurrency, round_ in [(c, r) for c in concurrencies for r in range(args.rounds)]:
                order = list(servers.items())
                order = order[round_ % len(order) :] + order[: round_ % len(order)]  # each round starts elsewhere
                for name, server in order:
                    if query not in QUERIES[name]:
                        continue
                    row = cell(server, counters, paths[name], token, concurrency, seconds, args.warmup)
                    row.update(server=name, query=query, concurrency=concurrency, round=round_)
                    results["cells"].append(row)
                    (WORK / f"partial-{args.scale}.json").write_bytes(orjson.dumps(results))
                    log(
                        f"{query} c={concurrency:<3} {name:<12} {row['rps']:>8.1f} rps  p50 {row['p50_ms']:>7.2f} ms  "
                        f"p99 {row['p99_ms']:>7.2f} ms  cpu {row['cpu_ms_per_request']:>6.2f} ms/req  "
                        f"stmts {row.get('statements_per_request', row.get('pg_transactions_per_request'))}  "
                        f"errors {row['errors']}"
                    )

        if args.rounds > 1:
            results["round_cells"], results["cells"] = results["cells"], medians(results["cells"])
        if not args.skip_scale_check:
            results["page_size"] = page_size_check(servers, counters, token)
            results["scale_check"] = scale_check(servers, counters, token, ids, patients, seconds, args.warmup)
        for name, server in servers.items():
            results.setdefault("peak_rss_mb", {})[name] = round(server.memory_mb()[1], 1)
    finally:
        for server in servers.values():
            server.stop()
        counters.close()

    from report import write_report  # type: ignore[import-not-found]

    if "ours" in servers:
        results["sealing"] = sealing_cost(patients)
        log(f"audit sealing: {results['sealing']}")
    results["elapsed_seconds"] = round(time.time() - started, 1)
    results["machine"]["load_average_at_end"] = os.getloadavg()
    write_report(results)  # before the second data set, so a failure there loses nothing
    if args.scale == "full" and not args.skip_scale_check and "ours" in servers:
        try:
            results["scale_check"] += scale_check_other(SCALES["small"], seconds=seconds, warmup=args.warmup)
        except (Exception, SystemExit) as error:
            results["notes"].append(f"scale check on {SCALES['small']:,} patients failed: {error}")
    results["elapsed_seconds"] = round(time.time() - started, 1)
    results["machine"]["load_average_at_end"] = os.getloadavg()
    paths = write_report(results)
    log("results: " + ", ".join(str(p.relative_to(ROOT)) for p in paths))


def medians(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One cell per server, query and concurrency: the median of each number over the rounds."""
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for row in cells:
        groups.setdefault((row["server"], row["query"], row["concurrency"]), []).append(row)
    out = []
    for (server, query, concurrency), rows in groups.items():
        merged: dict[str, Any] = {"server": server, "query": query, "concurrency": concurrency, "rounds": len(rows)}
        for key, value in rows[0].items():
            if key not in merged and key != "round" and isinstance(value, int | float):
                merged[key] = round(statistics.median(r[key] for r in rows if key in r), 3)
        out.append(merged)
    return out


def prepare_postgraphile(patients: int, names: list[str], results: dict[str, Any]) -> list[str]:
    """The PostgreSQL copy for PostGraphile; without PostgreSQL the run goes on without it, and says so."""
    from pg_peer import available, prepare  # type: ignore[import-not-found]

    why = available()
    if why is not None:
        results["notes"].append(f"PostGraphile not measured: PostgreSQL unavailable ({why[:200]})")
        log(results["notes"][-1])
        return [n for n in names if n != "postgraphile"]
    started = time.time()
    results["postgraphile"] = prepare(patients) | {"seconds": round(time.time() - started, 1)}
    log(f"PostgreSQL copy for PostGraphile: {results['postgraphile']}")
    return names


SEALING_EVENTS = 20_000

_SEAL_SCRIPT = """
import asyncio, json, sys, time
sys.path.insert(0, ".")
from core.db import Database
from resolvers.audit.chain import seal_pending

async def main() -> None:
    db = Database(sys.argv[1])
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        sealed = await seal_pending(db)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        await db.dispose()
    print(json.dumps({"events": sealed, "wall_seconds": round(wall, 3), "cpu_seconds": round(cpu, 3)}))

asyncio.run(main())
"""


def sealing_cost(patients: int) -> dict[str, Any]:
    """What the audit hash chain costs per event: copies of SEALING_EVENTS read events, sealed by the app's own
    `seal_pending` in a fresh process (the servers are stopped, so nothing else seals them)."""
    conn = pymysql.connect(**pymysql_kwargs(patients), autocommit=True)  # type: ignore[arg-type]
    try:
        with conn.cursor() as cursor:
            columns = (
                "occurred_at, actor_id, action, operation, entity_type, entity_id, patient_id, request_id, ip, outcome"
            )
            cursor.execute(
                f"INSERT INTO event ({columns}) SELECT {columns} FROM event WHERE action = 'read' "
                f"ORDER BY id DESC LIMIT {SEALING_EVENTS}"
            )
    finally:
        conn.close()
    done = subprocess.run(
        [PYTHON, "-c", _SEAL_SCRIPT, database_url(patients, "ours")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    measured: dict[str, Any] = orjson.loads(done.stdout.strip().splitlines()[-1])
    events = max(1, int(measured["events"]))
    measured["cpu_us_per_event"] = round(1e6 * measured["cpu_seconds"] / events, 1)
    measured["events_per_second"] = round(events / max(measured["wall_seconds"], 1e-9))
    return measured


def page_size_check(servers: dict[str, Server], counters: Counters, token: str) -> list[dict[str, Any]]:
    rows = []
    for name in [n for n in ("ours", "floor", "peer", "competent") if n in servers]:
        for query, sizes in (("Q2", (10, 50, 100)), ("Q3", (5, 20, 50)), ("Q4", (5, 20, 50))):
            for size in sizes:
                measured = statements_once(servers[name], counters, token, body(query, {"first": size}), repeat=10)
                rows.append({"server": name, "query": query, "first": size, **measured})
    log("page-size check: " + "; ".join(
        f"{r['server']} {r['query']} first={r['first']}: {r.get('statements_per_request', r.get('error'))}"
        for r in rows
    ))  # fmt: skip
    return rows


def scale_check(
    servers: dict[str, Server], counters: Counters, token: str, ids: dict[str, Any], patients: int, seconds: float,
    warmup: float,
) -> list[dict[str, Any]]:  # fmt: skip
    rows = []
    for name in [n for n in ("ours", "floor") if n in servers]:
        for query in ("Q2", "Q3"):
            for page, after in (("first", None), ("deep", ids["deep_after"])):
                path = write_bodies(f"{query}-{page}", bodies_for(query, ids, after=after))
                row = cell(servers[name], counters, path, token, 10, seconds, warmup)
                row.update(server=name, query=query, page=page, patients=patients, concurrency=10)
                rows.append(row)
                log(f"scale {patients} {name} {query} {page}: {row['rps']} rps p50 {row['p50_ms']} ms "
                    f"rows read/req {row.get('db_rows_read_per_request')}")  # fmt: skip
    return rows


def scale_check_other(patients: int, *, seconds: float, warmup: float) -> list[dict[str, Any]]:
    """The same Q2/Q3 first/deep cells on the other data set (10k next to the full run's 100k)."""
    ids = scope_ids(patients)
    counters = Counters()
    ports = free_ports(["ours", "floor"])
    servers = {name: Server(name, patients, ports[name]) for name in ("ours", "floor")}
    try:
        for server in servers.values():
            server.start()
        return scale_check(servers, counters, login(servers["ours"].url), ids, patients, seconds, warmup)
    finally:
        for server in servers.values():
            server.stop()
        counters.close()


if __name__ == "__main__":
    sys.exit(main())

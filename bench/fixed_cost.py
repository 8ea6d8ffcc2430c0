# ruff: noqa: S603  (benchmark tooling: local commands)
"""The fixed cost of a request: the server process's own CPU per request, load-independent enough for a busy machine.

    python bench/fixed_cost.py [--tree DIR ...] [--query Q0] [--requests 2000] [--rounds 3] [--patients 10000]

Starts `server.py serve` (one worker, the production defaults but for what bench/run.py changes too) from each
tree given (default: this checkout; pass a second worktree at main to compare builds in the same run), logs in
as the chief, sends `--requests` sequential requests from this process (one keep-alive connection) and reads the
server process's utime+stime from /proc/<pid>/stat before and after: CPU ms per request, the client's cost not
included. Trees alternate round by round so the machine's load hits every build alike.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
from common import (  # type: ignore[import-not-found]
    BENCH_PASSWORD,
    PYTHON,
    ROOT,
    body,
    database_url,
    encode_id,
    port_free,
)

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14 and 15)


def free_port(start: int) -> int:
    port = start
    while not port_free(port):
        port += 1
    return port


def start(tree: Path, patients: int, port: int) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ,
        DATABASE_URL=database_url(patients, "ours", driver=os.environ.get("BENCH_DRIVER", "asyncmy")),
        RATE_LIMIT_ENABLED="false",
        ACCESS_TOKEN_MINUTES="600",
        LOG_LEVEL="WARNING",
        APP_MODE="demo",
    )
    command = [PYTHON, "server.py", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    process = subprocess.Popen(command, cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code < 500:
                return process
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise SystemExit(f"the server from {tree} exited ({process.returncode})")
        time.sleep(0.3)
    raise SystemExit(f"the server from {tree} did not answer")


def measure(tree: Path, query: str, requests: int, patients: int, port: int, anonymous: bool = False) -> float:
    process = start(tree, patients, port)
    try:
        url = f"http://127.0.0.1:{port}/graphql"
        with httpx.Client(timeout=30) as client:
            login = client.post(
                url,
                json={
                    "query": 'mutation($p: String!) { login(username: "chief", password: $p) { accessToken } }',
                    "variables": {"p": BENCH_PASSWORD},
                },
            )
            headers = {"Authorization": f"Bearer {login.json()['data']['login']['accessToken']}"}
            if anonymous:
                headers = {}
            variables: dict[str, Any] | None = None
            if query == "Q1":
                variables = {"id": encode_id("Patient", 5)}
            payload = body(query, variables)
            for _ in range(200):  # warm up: caches, statement cache, pool
                response = client.post(url, json=payload, headers=headers)
                assert response.status_code == 200 and "errors" not in response.json(), response.text[:300]
            time.sleep(0.5)
            before = cpu_seconds(process.pid)
            for _ in range(requests):
                client.post(url, json=payload, headers=headers)
            return 1000 * (cpu_seconds(process.pid) - before) / requests
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", action="append", type=Path)
    parser.add_argument("--query", default="Q0")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--port", type=int, default=8791)
    parser.add_argument("--anonymous", action="store_true", help="no token (what the session check costs)")
    args = parser.parse_args()
    trees = args.tree or [ROOT]
    port = free_port(args.port)
    figures: dict[Path, list[float]] = {tree: [] for tree in trees}
    for round_ in range(args.rounds):
        for tree in trees if round_ % 2 == 0 else list(reversed(trees)):
            ms = measure(tree, args.query, args.requests, args.patients, port, args.anonymous)
            figures[tree].append(ms)
            print(f"round {round_ + 1} {tree}: {ms:.3f} ms CPU/request (load {os.getloadavg()[0]:.1f})", flush=True)
    for tree, values in figures.items():
        print(f"{tree}: {args.query} median {statistics.median(values):.3f} ms CPU/request over {args.rounds} rounds")


if __name__ == "__main__":
    main()

# ruff: noqa: S603  (benchmark tooling: local commands)
"""Does sealing keep up? The highest read rate for N minutes against our server (production defaults: the
background sealer on, every 2 s), the unsealed backlog sampled over time, on SQLite and on MariaDB.

    python bench/seal_backlog.py                        # 10 minutes per database, both databases
    python bench/seal_backlog.py --minutes 2 --db sqlite

Load: wrk, one thread, `patients(first: 50)` as the chief (one read event per patient listed) at concurrency 5,
the server's highest read-event rate here (it is CPU-bound from c=5 on). Every --sample seconds: the unsealed
events (bench/live.py `backlog`), the events written and sealed since the last sample, the CPU of the server and
of its sealer process. After the load, sampling goes on until the backlog is gone (at most 60 s).
Results: bench/results/seal-backlog.json (per database; a run of one database keeps the other's) and .md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from typing import Any

import orjson
from common import BENCH, RESULTS, free_ports  # type: ignore[import-not-found]
from live import Ours, backlog, bodies, log, prepare, seal_all  # type: ignore[import-not-found]

PORT = free_ports(["ours"])["ours"]  # BENCH_PORTS=ours=N pins it; a taken one stops the run
QUERY = "{ patients(first: 50) { edges { node { id name gender } } } }"


def run(kind: str, minutes: float, concurrency: int, sample: float) -> dict[str, Any]:
    prepare(kind)
    seal_all(kind)
    samples: list[dict[str, Any]] = []
    load_before = os.getloadavg()[0]
    with Ours(kind, PORT) as server:
        token = server.token()
        env = dict(os.environ, BENCH_BODIES=str(bodies(QUERY)), BENCH_TOKEN=token)
        seconds = max(1, round(minutes * 60))
        command = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "30s"]
        command += ["-s", str(BENCH / "load.lua"), server.url]
        started = time.time()
        previous = {**backlog(kind), **server.cpu(), "at": 0.0}
        load = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
        drained_at = None
        while True:
            time.sleep(sample)
            now = {**backlog(kind), **server.cpu(), "at": round(time.time() - started, 1)}
            span = now["at"] - previous["at"]
            row = {
                "t_s": now["at"],
                "unsealed": now["unsealed"],
                "events_per_s": round((now["max_event_id"] - previous["max_event_id"]) / span),
                "sealed_per_s": round((now["last_seq"] - previous["last_seq"]) / span),
                "server_cpu": round((now["server"] - previous["server"]) / span, 2),
                "sealer_cpu": round((now["sealer"] - previous["sealer"]) / span, 2),
                "load": load.poll() is None,
            }
            samples.append(row)
            log(f"{kind} {row}")
            previous = now
            if load.poll() is not None:
                if drained_at is None and row["unsealed"] <= 0:
                    drained_at = row["t_s"]
                if drained_at is not None or now["at"] > seconds + 60:
                    break
        out = load.communicate()[0]
    summary = next(orjson.loads(line[11:]) for line in out.splitlines() if line.startswith("BENCH_JSON "))
    under_load = [s for s in samples if s["load"]]
    last_minute = [s for s in under_load if s["t_s"] > seconds - 60] or under_load
    return {
        "database": kind,
        "minutes": minutes,
        "concurrency": concurrency,
        "query": QUERY,
        "requests": summary["requests"],
        "rps": round(summary["requests"] / (summary["duration_us"] / 1e6), 1),
        "errors": summary["socket_errors"] + summary["http_errors"] + summary["graphql_errors"],
        "events_per_s": round(sum(s["events_per_s"] for s in under_load) / max(1, len(under_load))),
        "sealed_per_s": round(sum(s["sealed_per_s"] for s in under_load) / max(1, len(under_load))),
        "max_unsealed": max(s["unsealed"] for s in samples),
        "max_unsealed_last_minute": max(s["unsealed"] for s in last_minute),
        "sealer_cpu": round(sum(s["sealer_cpu"] for s in under_load) / max(1, len(under_load)), 2),
        "drained_after_load_s": None if drained_at is None else round(drained_at - seconds, 1),
        "load_average": f"{load_before:.1f} at start, {os.getloadavg()[0]:.1f} at end",
        "samples": samples,
    }


def write(results: dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "seal-backlog.json").write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2) + b"\n")
    names = {"sqlite": "SQLite", "mysql": "MariaDB"}
    lines = [
        "# Audit sealing under the highest read rate: the unsealed backlog over time",
        "",
        "`python bench/seal_backlog.py` (bench/README.md): our server with its production defaults (background",
        "sealer on, AUDIT_SEAL_INTERVAL_SECONDS=2, sealing in its own process), wrk at c=5 on",
        f"`{QUERY}` as the chief (one read event per patient listed). 2 shared cores.",
        "",
        "| database | minutes | req/s | read events/s | sealed/s | max unsealed | max unsealed, last minute "
        "| sealer CPU (cores) | drained after the load | machine load average (2 cores) |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for kind, r in results.items():
        drained = "not within 60 s" if r["drained_after_load_s"] is None else f"{r['drained_after_load_s']} s"
        lines.append(
            f"| {names[kind]} | {r['minutes']:g} | {r['rps']:,} | {r['events_per_s']:,} | {r['sealed_per_s']:,} | "
            f"{r['max_unsealed']:,} | {r['max_unsealed_last_minute']:,} | {r['sealer_cpu']} | {drained} | "
            f"{r.get('load_average', 'not recorded')} |"
        )
    for kind, r in results.items():
        lines += [
            "",
            f"## {names[kind]}: samples",
            "",
            "| t (s) | unsealed | events/s | sealed/s | server CPU | sealer CPU |",
        ]
        lines.append("|--:|--:|--:|--:|--:|--:|")
        for s in r["samples"]:
            mark = "" if s["load"] else " (load over)"
            lines.append(
                f"| {s['t_s']}{mark} | {s['unsealed']:,} | {s['events_per_s']:,} | {s['sealed_per_s']:,} | "
                f"{s['server_cpu']} | {s['sealer_cpu']} |"
            )
    (RESULTS / "seal-backlog.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="load per database (default 10)")
    parser.add_argument("--db", nargs="+", choices=("sqlite", "mysql"), default=["sqlite", "mysql"])
    parser.add_argument("--concurrency", type=int, default=5)
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between samples")
    args = parser.parse_args()
    path = RESULTS / "seal-backlog.json"
    results: dict[str, Any] = orjson.loads(path.read_bytes()) if path.exists() else {}
    for kind in args.db:
        results[kind] = run(kind, args.minutes, args.concurrency, args.sample)
        write(results)
    log(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The adaptive concurrency limit (the default) against it switched off, under wrk's closed loop.

    python bench/adaptive.py                 # 8 s per cell, SQLite and MariaDB
    python bench/adaptive.py --db sqlite --seconds 5

bench/run.py times ours with CONCURRENCY_ADAPTIVE=false (labelled there): wrk sends a shed request again at
once, without waiting for its Retry-After, so with the default a saturated cell measures shedding rather than the
query. This is the default's figure beside it: the chief lists 20 patients at c=5, 10 and 50 on one worker
(`server.py serve`, bench/live.py), each setting on a fresh server; per cell the requests answered with data, the
requests shed (HTTP 503 `OVERLOADED`), and the latency of all answers. Results: bench/results/adaptive.json, .md.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import orjson
from common import RESULTS, free_ports  # type: ignore[import-not-found]
from live import Ours, log, prepare, wrk  # type: ignore[import-not-found]

SETTINGS = {"default (adaptive)": {}, "adaptive off": {"CONCURRENCY_ADAPTIVE": "false"}}
CONCURRENCY = (5, 10, 50)
NAMES = {"sqlite": "SQLite", "mysql": "MariaDB"}
# wrk stops with requests in flight, which the server still finishes: the next wrk would find them there (50 + 50
# in flight is past the ceiling of 64, shed at once)
DRAIN_SECONDS = 3.0


def measure(kinds: list[str], seconds: float) -> list[dict[str, Any]]:
    port = free_ports(["ours"])["ours"]
    rows: list[dict[str, Any]] = []
    for kind in kinds:
        prepare(kind)
        for setting, env in SETTINGS.items():
            with Ours(kind, port, **env) as server:
                token = server.token()
                for concurrency in CONCURRENCY:
                    wrk(server.url + "/graphql", token, concurrency, 2)  # warm-up
                    time.sleep(DRAIN_SECONDS)
                    result = wrk(server.url + "/graphql", token, concurrency, seconds)
                    time.sleep(DRAIN_SECONDS)
                    answered = result["requests"] - result["http_errors"]
                    row = {
                        "database": NAMES[kind],
                        "setting": setting,
                        "c": concurrency,
                        "answered_per_s": answered / (result["duration_us"] / 1e6),
                        "shed": result["http_errors"],
                        "requests": result["requests"],
                        "p50_ms": result["p50_us"] / 1000,
                        "p99_ms": result["p99_us"] / 1000,
                    }
                    log(str(row))
                    rows.append(row)
    return rows


def write(rows: list[dict[str, Any]], seconds: float) -> None:
    load = os.getloadavg()[0]
    (RESULTS / "adaptive.json").write_bytes(orjson.dumps({"seconds": seconds, "load_1m_end": load, "rows": rows}))
    lines = [
        "# The adaptive concurrency limit under a closed loop (wrk)",
        "",
        f"`python bench/adaptive.py`: the chief lists 20 patients, one worker, {seconds:g} s per cell after 2 s of"
        " warm-up; each setting on a fresh server. wrk sends a shed request again at once (it ignores Retry-After),"
        " which real clients do not; shed answers are fast, so the latency columns mix them with the answers.",
        f"Machine load average (1 min) at the end: {load:.1f}.",
        "",
        "| database | setting | c | answered with data /s | shed (503) | p50 ms (all) | p99 ms (all) |",
        "|---|---|--:|--:|--:|--:|--:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['database']} | {row['setting']} | {row['c']} | {row['answered_per_s']:.1f} | {row['shed']} |"
            f" {row['p50_ms']:.1f} | {row['p99_ms']:.1f} |"
        )
    (RESULTS / "adaptive.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--db", nargs="+", choices=sorted(NAMES), default=["sqlite", "mysql"])
    args = parser.parse_args()
    write(measure(args.db, args.seconds), args.seconds)
    log(f"results: {RESULTS / 'adaptive.md'}")


if __name__ == "__main__":
    main()

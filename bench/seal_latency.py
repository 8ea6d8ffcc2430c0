"""Latency with the audit sealer at its defaults against periodic sealing off, on SQLite and on MariaDB.

    python bench/seal_latency.py                    # 10 s per cell, 2 rounds, both databases
    python bench/seal_latency.py --seconds 5 --rounds 1 --db sqlite

The chief lists 20 patients (`{ patients(first: 20) { edges { node { id name gender } } } }`: 20 read events per
request) with wrk at c=1 and c=5 against `server.py serve` (one worker) with the production defaults (background
sealer on, AUDIT_SEAL_INTERVAL_SECONDS=2) and with periodic sealing off (AUDIT_SEAL_INTERVAL_SECONDS=3600: read
events wait for a write). Settings alternate within a round, each on a freshly started server with no backlog
(what earlier runs left is sealed first); a cell is 2 s of warm-up and --seconds measured. Per (database,
setting, c) the median over rounds of p50/p90/p99; ratios are defaults / sealing off from the same run.
Results: bench/results/seal-latency.json and .md (the target: p99 with the defaults within 1.5x).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from typing import Any

import orjson
from common import RESULTS, free_ports  # type: ignore[import-not-found]
from live import PATIENTS_QUERY, Ours, log, prepare, seal_all, wrk  # type: ignore[import-not-found]

PORT = free_ports(["ours"])["ours"]  # BENCH_PORTS=ours=N pins it; a taken one stops the run
SETTINGS = {"defaults": {}, "sealing off": {"AUDIT_SEAL_INTERVAL_SECONDS": "3600"}}
CONCURRENCY = (1, 5)
NAMES = {"sqlite": "SQLite", "mysql": "MariaDB"}


def measure(kinds: list[str], seconds: float, rounds: int) -> dict[str, Any]:
    cells: dict[str, list[dict[str, Any]]] = {}
    for kind in kinds:
        prepare(kind)
        for number in range(rounds):
            for setting, env in SETTINGS.items():
                seal_all(kind)
                with Ours(kind, PORT, **env) as server:
                    token = server.token()
                    wrk(server.url, token, 5, 3)  # warm-up: caches, the chief's schema, the sealer's first pass
                    for c in CONCURRENCY:
                        wrk(server.url, token, c, 2)
                        result = wrk(server.url, token, c, seconds)
                        row = {
                            "rps": round(result["requests"] / (result["duration_us"] / 1e6), 1),
                            **{f"{p}_ms": round(result[f"{p}_us"] / 1000, 2) for p in ("p50", "p90", "p99", "max")},
                            "errors": result["socket_errors"] + result["http_errors"] + result["graphql_errors"],
                        }
                        cells.setdefault(f"{kind}|{setting}|{c}", []).append(row)
                        log(f"{kind} round {number + 1} {setting} c={c}: {row}")
    summary: dict[str, Any] = {}
    for key, rows in cells.items():
        summary[key] = {name: statistics.median(r[name] for r in rows) for name in rows[0]}
        summary[key]["rounds"] = rows
    return summary


def write(summary: dict[str, Any], kinds: list[str], seconds: float, rounds: int) -> None:
    RESULTS.mkdir(exist_ok=True)
    load = os.getloadavg()[0]
    document = {"seconds": seconds, "rounds": rounds, "query": PATIENTS_QUERY, "load_average_at_end": load}
    document["cells"] = summary
    (RESULTS / "seal-latency.json").write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
    lines = [
        "# Latency with the audit sealer at its defaults, against periodic sealing off",
        "",
        f"`python bench/seal_latency.py` (bench/README.md): `{PATIENTS_QUERY}` as the chief, wrk on loopback, one",
        f"server worker; {seconds:g} s per cell after 2 s of warm-up, medians of {rounds} round(s), settings",
        "alternating within a round. *defaults*: the production defaults (background sealer on, every 2 s, in its own",
        "process). *sealing off* (reference): AUDIT_SEAL_INTERVAL_SECONDS=3600. 2 cores shared with other work:",
        "read the ratios (same run), not the absolute figures. Target: p99 with the defaults within 1.5x.",
        f"Machine load average (1 min) at the end of the run: {load:.1f}.",
        "",
        "| database | c | setting | req/s | p50 ms | p90 ms | p99 ms | max ms | errors |",
        "|---|--:|---|--:|--:|--:|--:|--:|--:|",
    ]
    for kind in kinds:
        for c in CONCURRENCY:
            for setting in SETTINGS:
                s = summary[f"{kind}|{setting}|{c}"]
                lines.append(
                    f"| {NAMES[kind]} | {c} | {setting} | {s['rps']:g} | {s['p50_ms']:g} | {s['p90_ms']:g} | "
                    f"{s['p99_ms']:g} | {s['max_ms']:g} | {s['errors']:g} |"
                )
    lines += ["", "Ratios, defaults / sealing off:", "", "| database | c | p50 | p90 | p99 | p99 within 1.5x |"]
    lines.append("|---|--:|--:|--:|--:|---|")
    for kind in kinds:
        for c in CONCURRENCY:
            on, off = summary[f"{kind}|defaults|{c}"], summary[f"{kind}|sealing off|{c}"]
            ratio = {p: on[f"{p}_ms"] / max(off[f"{p}_ms"], 1e-9) for p in ("p50", "p90", "p99")}
            verdict = "yes" if ratio["p99"] <= 1.5 else "NO"
            lines.append(
                f"| {NAMES[kind]} | {c} | {ratio['p50']:.2f} | {ratio['p90']:.2f} | {ratio['p99']:.2f} | {verdict} |"
            )
    (RESULTS / "seal-latency.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per cell (default 10)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--db", nargs="+", choices=("sqlite", "mysql"), default=["sqlite", "mysql"])
    args = parser.parse_args()
    summary = measure(args.db, args.seconds, args.rounds)
    write(summary, args.db, args.seconds, args.rounds)
    log(f"results: {RESULTS / 'seal-latency.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

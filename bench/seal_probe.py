"""Where requests wait on SQLite at c=5 (issue 23): busy-handler sleeps, WAL checkpoints, statement times, loop lag.

    python bench/seal_probe.py --seconds 10 --rounds 2 [--setting defaults "sealing off"] [--c 5]

Runs bench/seal_latency.py's cell (the chief's `patients(first: 20)`, wrk, `server.py serve` with the production
defaults or AUDIT_SEAL_INTERVAL_SECONDS=3600) with bench/probe/sitecustomize.py loaded in the server and in its
sealer process: it replaces SQLite's default busy handler and WAL autocheckpoint hook by ones doing the same
thing that also record each call. Counts, not wall-clock alone: they hold on a loaded machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from common import BENCH, free_ports  # type: ignore[import-not-found]
from live import Ours, log, prepare, seal_all, wrk  # type: ignore[import-not-found]

PORT = free_ports(["ours"])["ours"]
SETTINGS = {
    "defaults": {},
    "sealing off": {"AUDIT_SEAL_INTERVAL_SECONDS": "3600"},
    "defaults, no turns": {"SQLITE_PROBE_NO_TURNS": "1"},
    "sealing off, no turns": {"AUDIT_SEAL_INTERVAL_SECONDS": "3600", "SQLITE_PROBE_NO_TURNS": "1"},
}


def snapshot(directory: Path) -> dict[str, Any]:
    found = {}
    for path in directory.glob("*.json"):
        try:
            found[path.name] = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
    return found


def episodes(busy: list[list[Any]]) -> list[float]:
    """Busy waits per statement: consecutive calls on one connection from count 0; total sleep ms each."""
    totals: list[float] = []
    open_: dict[int, int] = {}
    for _t, conn, count, delay in sorted(busy):
        if count == 0 or conn not in open_:
            open_[conn] = len(totals)
            totals.append(0.0)
        totals[open_[conn]] += delay
    return totals


def analyse(before: dict[str, Any], after: dict[str, Any], start: float, end: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, doc in after.items():
        role = doc["role"]
        conns = doc["conns"]
        busy = [b for b in doc["busy"] if start <= b[0] <= end]
        eps = sorted(episodes(busy))
        ck = [c for c in doc["ckpt"] if start <= c[0] <= end]
        prior = before.get(name, {"stmt": {}})["stmt"]
        stmts = {}
        for key, (n, ns, mx) in doc["stmt"].items():
            n0, ns0, _ = prior.get(key, (0, 0, 0))
            if n - n0 > 0:
                stmts[key] = {"n": n - n0, "mean_ms": round((ns - ns0) / (n - n0) / 1e6, 3), "max_ms_ever": mx / 1e6}
        lag = [lt for t, lt in doc.get("lag", []) if start <= t <= end]
        slow = [s for s in doc["slow"] if start <= s[0] <= end]
        slow_by: dict[str, list[float]] = defaultdict(list)
        for _t, _c, ms, key in slow:
            slow_by[key].append(ms)
        entry = out.setdefault(role, {"busy_calls": 0, "episodes": [], "ckpt": [], "stmts": {}, "lag": [], "slow": {}})
        entry["busy_calls"] += len(busy)
        entry["episodes"] += eps
        entry["ckpt"] += [
            {
                "ms": round(c[3] * 1000, 1),
                "frames": c[2],
                "autocommit_conn": conns.get(str(c[1]), {}).get("autocommit"),
                "rc": c[6],
                "log": c[4],
                "done": c[5],
            }
            for c in ck
        ]
        entry["stmts"].update(stmts)
        entry["lag"] += lag
        for key, values in slow_by.items():
            entry["slow"].setdefault(key, []).extend(values)
    for entry in out.values():
        eps = sorted(entry.pop("episodes"))
        entry["busy_episodes"] = len(eps)
        entry["busy_sleep_ms_total"] = sum(eps)
        entry["busy_episode_ms_max"] = eps[-1] if eps else 0
        entry["busy_episode_ms_p99"] = eps[int(len(eps) * 0.99)] if eps else 0
        entry["busy_episodes_ge_50ms"] = sum(1 for e in eps if e >= 50)
        lag = sorted(entry.pop("lag"))
        entry["lag_ge_2ms"] = len(lag)
        entry["lag_ge_10ms"] = sum(1 for x in lag if x >= 0.010)
        entry["lag_ge_50ms"] = sum(1 for x in lag if x >= 0.050)
        entry["lag_max_ms"] = round(lag[-1] * 1000, 1) if lag else 0
        entry["slow"] = {
            k: {"n": len(v), "max_ms": round(max(v), 1), "sum_ms": round(sum(v))} for k, v in entry["slow"].items()
        }
        entry["stmts"] = {k: v for k, v in sorted(entry["stmts"].items(), key=lambda kv: -kv[1]["n"])[:8]}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--c", type=int, nargs="+", default=[5])
    parser.add_argument("--setting", nargs="+", default=list(SETTINGS))  # alternated within a round
    parser.add_argument("--out", default=str(BENCH / "results" / ".work" / "seal-probe.json"))
    parser.add_argument("--env", nargs="*", default=[], help="extra KEY=VALUE for the server")
    args = parser.parse_args()
    prepare("sqlite")
    extra = dict(item.split("=", 1) for item in args.env)
    results = []
    for number in range(args.rounds):
        for setting in args.setting:
            seal_all("sqlite")
            directory = Path(tempfile.mkdtemp(prefix="seal-probe-"))
            env = {
                **SETTINGS[setting],
                **extra,
                "PYTHONPATH": str(BENCH / "probe"),
                "SQLITE_PROBE_DIR": str(directory),
            }
            with Ours("sqlite", PORT, **env) as server:
                token = server.token()
                wrk(server.url, token, 5, 3)
                for c in args.c:
                    wrk(server.url, token, c, 2)
                    time.sleep(1.2)
                    before = snapshot(directory)
                    start = time.time()
                    result = wrk(server.url, token, c, args.seconds)
                    end = time.time()
                    time.sleep(1.2)
                    after = snapshot(directory)
                    row = {
                        "round": number + 1,
                        "setting": setting,
                        "c": c,
                        "env": extra,
                        "load": os.getloadavg()[0],
                        "rps": round(result["requests"] / (result["duration_us"] / 1e6), 1),
                        **{f"{p}_ms": round(result[f"{p}_us"] / 1000, 2) for p in ("p50", "p90", "p99", "max")},
                        "errors": result["socket_errors"] + result["http_errors"] + result["graphql_errors"],
                        "probe": analyse(before, after, start, end),
                    }
                    results.append(row)
                    log(json.dumps(row, indent=1))
    Path(args.out).write_text(json.dumps(results, indent=1))
    summary: dict[str, list[float]] = defaultdict(list)
    for row in results:
        summary[f"{row['setting']} c={row['c']}"].append(row["p99_ms"])
    for key, values in summary.items():
        log(f"{key}: p99 median {statistics.median(values)} ms ({values})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

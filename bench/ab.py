"""A/B of our server under wrk: the same cells for variants that differ by environment, run alternately.

    python bench/ab.py --patients 100000 --queries Q1,Q3 --rounds 3 A:COMPILED_COMPLETION=false B:
    python bench/ab.py --queries Q3 before:TREE=/tmp/before after:   # two source trees (git worktree add)

Each variant is `name:VAR=value,VAR=value` (empty: the defaults); TREE=path runs the server from another
checkout (same virtualenv and data). Every round starts each variant's server
afresh (one uvicorn worker, as run.py does) and times each query at the given concurrency; the table shows
the median over rounds of requests/s and server CPU ms per request, and the ratio of each variant to the
first. Alternating rounds in the same minutes is what makes a ratio mean something on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path
from typing import Any

import run  # type: ignore[import-not-found]
from common import free_ports  # type: ignore[import-not-found]
from run import Counters, Server, bodies_for, cell, login, scope_ids, write_bodies  # type: ignore[import-not-found]


class Variant(Server):
    def __init__(self, label: str, env: dict[str, str], patients: int) -> None:
        super().__init__("ours", patients, free_ports(["ours"])["ours"])  # a taken BENCH_PORTS one stops the run
        self.label, self.env = label, env

    def start(self) -> None:
        saved, root = dict(os.environ), run.ROOT
        env = dict(self.env)
        run.ROOT = Path(env.pop("TREE", root))
        os.environ.update(env)
        try:
            super().start()
        finally:
            os.environ.clear()
            os.environ.update(saved)
            run.ROOT = root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variants", nargs="+")
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--queries", default="Q1,Q2,Q3,Q4")
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    variants = []
    for spec in args.variants:
        label, _, assignments = spec.partition(":")
        env = dict(a.split("=", 1) for a in assignments.split(",") if a)
        variants.append(Variant(label, env, args.patients))
    ids = scope_ids(args.patients)
    counters = Counters()
    queries = args.queries.split(",")
    paths = {q: write_bodies(q, bodies_for(q, ids)) for q in queries}
    rows: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for round_ in range(args.rounds):
        for variant in variants:
            variant.start()
            try:
                token = login(variant.url)
                for query in queries:
                    row = cell(variant, counters, paths[query], token, args.concurrency, args.seconds, args.warmup)
                    rows.setdefault((variant.label, query), []).append(row)
                    print(
                        f"round {round_ + 1} {variant.label:<8} {query} {row['rps']:>8.1f} rps "
                        f"cpu {row['cpu_ms_per_request']:>6.2f} ms/req p99 {row['p99_ms']:>8.2f} ms "
                        f"errors {row['errors']}",
                        flush=True,
                    )
            finally:
                variant.stop()
    counters.close()
    first = variants[0].label
    print(f"\n| query | variant | rps (median) | CPU ms/req | rps / {first} | CPU / {first} |")
    print("|---|---|--:|--:|--:|--:|")
    for query in queries:
        base = rows[(first, query)]
        base_rps = statistics.median(r["rps"] for r in base)
        base_cpu = statistics.median(r["cpu_ms_per_request"] for r in base)
        for variant in variants:
            got = rows[(variant.label, query)]
            rps = statistics.median(r["rps"] for r in got)
            cpu = statistics.median(r["cpu_ms_per_request"] for r in got)
            ratios = f"{rps / base_rps:.2f} | {cpu / base_cpu:.2f}"
            print(f"| {query} | {variant.label} | {rps:.1f} | {cpu:.2f} | {ratios} |")


if __name__ == "__main__":
    main()

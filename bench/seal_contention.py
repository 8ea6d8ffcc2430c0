# ruff: noqa: S608  (benchmark tooling: SQL from constants)
"""SQLite: how long a request's read-event INSERT waits for the write lock while the sealer seals a backlog.

    python bench/seal_contention.py                     # 3 rounds, a 20,000-event backlog
    python bench/seal_contention.py --rounds 1 --backlog 10000

On SQLite the audit sealer's steps and every request's read events take the same database write lock; a writer
that finds it taken sleeps in SQLite's busy handler with a growing back-off (1, 2, 5, 10, 15, 20, 25 ms...).
This measures that alone, without a server, wrk or HTTP: a writer inserts 20 read events per statement (as
`patients(first: 20)` does, on an autocommit connection with the server's pragmas) every 2 ms, timing each
INSERT, while a sealer process (its own connections, synchronous=NORMAL as the server's sealer process) seals a
backlog of --backlog events plus what the writer adds. Settings alternate within a round on the same database:
*steps of 500, back to back* (before issue 23's pauses) and *the defaults* (resolvers/audit/seal.py:
SQLITE_STEP_EVENTS with a pause as long as each step held the lock). Per setting, the median over rounds of the
INSERTs' p50/p90/p99/max and of the sealing rate. Results: bench/results/seal-contention.json and .md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from typing import Any

import orjson
from common import PYTHON, RESULTS, ROOT  # type: ignore[import-not-found]
from sqlalchemy import text

from cli import run_migrations
from core.db import Database
from resolvers.audit.chain import seal_pending
from resolvers.audit.seal import SQLITE_STEP_EVENTS, STEP_PAUSE_RATIO

WORK = RESULTS / ".work"
PATH = WORK / "seal-contention.db"
URL = f"sqlite+aiosqlite:///{PATH}"
SETTINGS = {
    "steps of 500, back to back": (500, 0.0),
    "defaults": (SQLITE_STEP_EVENTS, STEP_PAUSE_RATIO["sqlite"]),
}
SEALER = """
import asyncio, sys, time
sys.path.insert(0, '.')
from sqlalchemy import event
from core.db import Database
from resolvers.audit.chain import seal_pending
from resolvers.audit.sealer import _commit_without_fsync

async def main():
    db = Database(sys.argv[1], pool_size=2)
    for engine in db.engines:
        event.listen(engine.sync_engine, 'connect', _commit_without_fsync)
    started = time.perf_counter()
    sealed = await seal_pending(db, batch_size=int(sys.argv[2]), pause_ratio=float(sys.argv[3]))
    print(sealed, time.perf_counter() - started)
    await db.dispose()

asyncio.run(main())
"""
COLUMNS = "occurred_at, actor_id, action, operation, entity_type, entity_id, request_id, ip, outcome"
ROW = "('2026-12-01 00:00:00.000000', 1, 'read', 'patients', 'Patient', '1', 'bench', '127.0.0.1', 'success')"
INSERT = f"INSERT INTO event ({COLUMNS}) VALUES {', '.join([ROW] * 20)}"


def add_backlog(count: int) -> None:
    import sqlite3

    connection = sqlite3.connect(PATH, timeout=30)
    with connection:
        connection.executemany(f"INSERT INTO event ({COLUMNS}) VALUES {ROW}", [()] * count)
    connection.close()


async def one(steps: int, ratio: float, backlog: int) -> dict[str, Any]:
    db = Database(URL)
    await seal_pending(db)  # what the last setting's writer left
    add_backlog(backlog)
    sealer = await asyncio.create_subprocess_exec(
        PYTHON, "-c", SEALER, URL, str(steps), str(ratio), cwd=ROOT, stdout=asyncio.subprocess.PIPE
    )
    finished = asyncio.create_task(sealer.communicate())
    waits: list[float] = []
    async with db.engine.connect() as connection:
        await connection.commit()
        while not finished.done():
            started = time.perf_counter()
            await connection.execute(text(INSERT))
            await connection.commit()
            waits.append(time.perf_counter() - started)
            await asyncio.sleep(0.002)
    out, _ = await finished
    await db.dispose()
    sealed, seconds = out.decode().split()
    waits.sort()

    def at(share: float) -> float:
        return round(1000 * waits[min(len(waits) - 1, int(share * len(waits)))], 2)

    return {
        "inserts": len(waits),
        "p50_ms": at(0.5),
        "p90_ms": at(0.9),
        "p99_ms": at(0.99),
        "max_ms": round(1000 * waits[-1], 2),
        "sealed_per_s": round(int(sealed) / float(seconds)),
        "load_1m": round(os.getloadavg()[0], 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backlog", type=int, default=20000)
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    PATH.unlink(missing_ok=True)
    run_migrations(URL)
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in SETTINGS}
    for number in range(args.rounds):
        for name, (steps, ratio) in SETTINGS.items():
            row = asyncio.run(one(steps, ratio, args.backlog))
            rounds[name].append(row)
            print(f"[{time.strftime('%H:%M:%S')}] round {number + 1} {name}: {row}", flush=True)
    summary = {
        name: {key: statistics.median(r[key] for r in rows) for key in rows[0]} | {"rounds": rows}
        for name, rows in rounds.items()
    }
    load = os.getloadavg()
    document = {"backlog": args.backlog, "rounds": args.rounds, "load_average_at_end": load, "settings": summary}
    (RESULTS / "seal-contention.json").write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
    lines = [
        "# SQLite: read-event INSERTs waiting for the sealer's write lock",
        "",
        f"`python bench/seal_contention.py` (bench/README.md): a {args.backlog:,}-event backlog sealed by a sealer",
        "process while a writer inserts 20 read events every 2 ms; medians of "
        f"{args.rounds} round(s), settings alternating. Load average at the end: {load[0]:.1f} (2 shared cores).",
        "",
        "| setting | inserts | p50 ms | p90 ms | p99 ms | max ms | sealed/s | load (1 min) |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for name, row in summary.items():
        lines.append(
            f"| {name} | {row['inserts']:g} | {row['p50_ms']} | {row['p90_ms']} | {row['p99_ms']} | "
            f"{row['max_ms']} | {row['sealed_per_s']:,.0f} | {row['load_1m']} |"
        )
    (RESULTS / "seal-contention.md").write_text("\n".join(lines) + "\n")
    print(f"results: {RESULTS / 'seal-contention.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

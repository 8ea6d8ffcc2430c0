# ruff: noqa: S603, S608  (benchmark tooling: SQL from constants, local commands)
"""Audit verification: `server.py verify-audit` over 1,000,000 sealed events, beside hashlib over the same bytes.

    python bench/wl_audit.py [--events 1000000]

A fresh SQLite database (migrated to head, in a temporary directory) gets N events written straight by sqlite3
(19 read events of patient lists for each mutation event with its detail, kept variables, user agent and
duration) and their seals: content hash, link and chain computed by the project's own functions
(resolvers/audit/records.py: `event_record`, `content_hash`, `link_hash`), the seal state row at the head. Then
`server.py verify-audit` (as an operator runs it: a sweep for unsealed events, then the walk) in its own process,
timed wall and CPU (user + system); its report must say ok with N events. The floor: the canonical JSON bytes
the chain hashes (made beforehand) and the link strings hashed with hashlib.sha256 in one loop, the physical
limit of the check. Events per second for each, and their ratio.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import sqlite3
import subprocess
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from common import PYTHON, ROOT  # type: ignore[import-not-found]
from wl_common import load_average, log  # type: ignore[import-not-found]

from cli import run_migrations
from models.audit import GENESIS_HASH
from resolvers.audit.records import canonical_json, content_hash, event_record, link_hash

CHUNK = 50_000
COLUMNS = (
    "id, occurred_at, actor_id, action, operation, entity_type, entity_id, patient_id, request_id, ip, outcome, "
    "detail, is_mutation, user_agent, duration_ms, variables"
)


def _event(event_id: int, at: datetime) -> dict[str, Any]:
    """One event as the database hands it back (aware UTC instant, JSON decoded)."""
    mutation = event_id % 20 == 0
    patient = 1 + event_id * 7919 % 100_000
    return {
        "id": event_id,
        "occurred_at": at,
        "actor_id": 3,
        "action": "update" if mutation else "read",
        "operation": "recordFollowUpOutcome" if mutation else "patients",
        "entity_type": "FollowUp" if mutation else "Patient",
        "entity_id": str(event_id // 20 if mutation else patient),
        "patient_id": patient,
        "request_id": uuid.UUID(int=event_id // 20).hex,
        "ip": "10.12.0.7",
        "outcome": "success",
        "detail": {"status": "completed"} if mutation else None,
        "is_mutation": mutation,
        "user_agent": "Mozilla/5.0 (Windows NT 10.0) console" if mutation else "",
        "duration_ms": 41 if mutation else None,
        "variables": {"followUpId": f"Rm9sbG93VXA6{event_id}", "reason": "[redacted]"} if mutation else None,
    }


def _stored(event: dict[str, Any]) -> tuple[Any, ...]:
    """The row as SQLAlchemy stores it on SQLite (naive UTC text, JSON text, booleans as 0/1)."""
    import json

    return (
        event["id"],
        event["occurred_at"].replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds"),
        event["actor_id"], event["action"], event["operation"], event["entity_type"], event["entity_id"],
        event["patient_id"], event["request_id"], event["ip"], event["outcome"],
        None if event["detail"] is None else json.dumps(event["detail"]),
        int(event["is_mutation"]), event["user_agent"], event["duration_ms"],
        None if event["variables"] is None else json.dumps(event["variables"]),
    )  # fmt: skip


def generate(path: Path, events: int) -> dict[str, Any]:
    """N events and their seals; returns the floor's timing (hashlib over the same bytes) and the head."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    sealed_at = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    prev, floor_seconds, floor_bytes = GENESIS_HASH, 0.0, 0
    started = time.perf_counter()
    for low in range(1, events + 1, CHUNK):
        chunk = [
            _event(i, start + timedelta(milliseconds=37 * i)) for i in range(low, min(events, low + CHUNK - 1) + 1)
        ]
        blobs = [canonical_json(event_record(event)).encode("utf-8") for event in chunk]
        seals = []
        # the project's content hash is sha256 of exactly these bytes (checked on each chunk's first event)
        assert content_hash(event_record(chunk[0])) == hashlib.sha256(blobs[0]).hexdigest()
        for event, blob in zip(chunk, blobs, strict=True):
            digest = hashlib.sha256(blob).hexdigest()
            chain = link_hash(prev, digest)
            seals.append((event["id"], event["id"], digest, prev, chain, sealed_at))
            prev = chain
        # the floor: the same bytes and links hashed in one loop (timed alone)
        floor_prev = seals[0][3]
        tick = time.perf_counter()
        for blob in blobs:
            floor_prev = hashlib.sha256((floor_prev + hashlib.sha256(blob).hexdigest()).encode("ascii")).hexdigest()
        floor_seconds += time.perf_counter() - tick
        floor_bytes += sum(len(blob) for blob in blobs)
        assert floor_prev == prev
        conn.executemany(f"INSERT INTO event ({COLUMNS}) VALUES ({', '.join(['?'] * 16)})", map(_stored, chunk))
        conn.executemany(
            "INSERT INTO event_seal (event_id, seq, content_hash, prev_hash, chain_hash, sealed_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            seals,
        )
        conn.commit()
    conn.execute(
        "INSERT INTO audit_seal_state (id, last_seq, last_chain_hash, max_sealed_event_id, scan_from_id, "
        "archived_seq, archived_chain_hash, updated_at) VALUES (1, ?, ?, ?, ?, 0, ?, ?) ON CONFLICT (id) DO UPDATE "
        "SET last_seq = excluded.last_seq, last_chain_hash = excluded.last_chain_hash, "
        "max_sealed_event_id = excluded.max_sealed_event_id, scan_from_id = excluded.scan_from_id",
        (events, prev, events, events, GENESIS_HASH, sealed_at),
    )
    conn.commit()
    conn.close()
    return {
        "generate_seconds": round(time.perf_counter() - started, 1),
        "head_hash": prev,
        "floor_seconds": round(floor_seconds, 3),
        "floor_events_per_second": round(events / floor_seconds),
        "bytes_hashed": floor_bytes,
    }


def verify(url: str) -> dict[str, Any]:
    env = dict(os.environ, DATABASE_URL=url, LOG_LEVEL="WARNING")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [PYTHON, "server.py", "verify-audit"], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return {
        "wall_seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "peak_rss_mb": round(after.ru_maxrss / 1024, 1),
        "exit_code": done.returncode,
        "report": (done.stdout.strip() or done.stderr.strip()[-500:]).splitlines()[-1:],
    }


def run(events: int = 1_000_000) -> dict[str, Any]:
    results: dict[str, Any] = {"events": events, "database": "sqlite", "load_average_before": load_average()}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "audit.db"
        url = f"sqlite+aiosqlite:///{path}"
        run_migrations(url)
        log(f"audit: generating {events:,} sealed events")
        results["generated"] = generate(path, events)
        log(f"audit: generated in {results['generated']['generate_seconds']} s; verify-audit")
        measured = verify(url)
    measured["events_per_second_wall"] = round(events / measured["wall_seconds"])
    measured["events_per_second_cpu"] = round(events / max(measured["cpu_seconds"], 1e-9))
    measured["ok"] = measured["exit_code"] == 0 and f"ok: {events} events verified" in " ".join(measured["report"])
    results["verify_audit"] = measured
    results["floor_over_ours"] = round(
        results["generated"]["floor_events_per_second"] / max(measured["events_per_second_wall"], 1), 1
    )
    results["load_average_after"] = load_average()
    log(f"audit: {measured}")
    return results


def main() -> None:
    import orjson

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    print(orjson.dumps(run(args.events), option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()

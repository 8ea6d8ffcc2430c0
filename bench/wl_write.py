# ruff: noqa: S608  (benchmark tooling: SQL from constants)
"""Q5, the write: `recordFollowUpOutcome` as the chief, ours beside the floor's raw-SQL write (bench/floor_writes.py).

    python bench/wl_write.py [--concurrency 10] [--seconds 10]

Both servers run on the workloads' database (bench/wl_common.py); the bodies are Q5 (bench/common.py) over every
follow-up in the chief's reach, round-robin (after the first pass each is an amendment with its reason, on both
sides alike). Before timing, one write by each on two follow-ups in the same state must answer the same and
store the same changes: the follow-up's columns, the amendment (its changed fields and reason) and the event
(operation, outcome, detail, kept variables). Cells by wrk as bench/run.py's (requests/s, p50/p99, statements and
CPU per request); floor/ours throughput at c=10 is the issue's figure (target at most 2.0).
"""

from __future__ import annotations

import argparse
from typing import Any

import httpx
import orjson
from common import body, encode_id  # type: ignore[import-not-found]
from run import Counters, cell, write_bodies  # type: ignore[import-not-found]
from wl_common import Proc, connect, load_average, log, login, prepare  # type: ignore[import-not-found]

STATE = "status, outcome_text, pain_score, bleeding, wexner_score, recurrence, satisfaction"


def follow_ups() -> list[int]:
    conn = connect()
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT f.id FROM follow_up f JOIN patient p ON p.id = f.patient_id JOIN department d "
                "ON d.id = p.department_id WHERE d.code IN ('CRS', 'CRS-ANO') AND f.status != 'cancelled' "
                "ORDER BY f.id"
            )
            return [int(row[0]) for row in cursor.fetchall()]
    finally:
        conn.close()


def twins() -> tuple[int, int]:
    """Two follow-ups of the chief's reach in the same state (so the same write changes the same fields)."""
    conn = connect()
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                f"SELECT GROUP_CONCAT(f.id ORDER BY f.id) FROM follow_up f JOIN patient p ON p.id = f.patient_id "
                f"JOIN department d ON d.id = p.department_id WHERE d.code IN ('CRS', 'CRS-ANO') "
                f"AND f.status != 'cancelled' GROUP BY {STATE}, f.recorded_by_id HAVING COUNT(*) >= 2 LIMIT 1"
            )
            first, second = cursor.fetchone()[0].split(",")[:2]
            return int(first), int(second)
    finally:
        conn.close()


def stored(follow_up_id: int) -> dict[str, Any]:
    conn = connect()
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"SELECT {STATE}, recorded_by_id, version FROM follow_up WHERE id = %s", (follow_up_id,))
            row = cursor.fetchone()
            cursor.execute(
                "SELECT changes, reason, kind FROM amendment WHERE entity_type = 'FollowUp' AND entity_id = %s "
                "ORDER BY id DESC LIMIT 1",
                (follow_up_id,),
            )
            changes, reason, kind = cursor.fetchone() or ("{}", None, None)
            cursor.execute(
                "SELECT action, operation, entity_type, outcome, detail, is_mutation, variables FROM event "
                "WHERE operation = 'recordFollowUpOutcome' AND entity_id = %s ORDER BY id DESC LIMIT 1",
                (str(follow_up_id),),
            )
            event = list(cursor.fetchone() or ())
    finally:
        conn.close()
    if event:
        variables = orjson.loads(event[-1])
        variables.pop("followUpId")
        event[4], event[-1] = orjson.loads(event[4]), variables
    return {"row": list(row), "changed": sorted(orjson.loads(changes)), "reason": reason, "kind": kind, "event": event}


def check_same(ours: Proc, floor: Proc, token: str) -> dict[str, Any]:
    first, second = twins()
    before = stored(first)["row"][-1], stored(second)["row"][-1]
    headers = {"Authorization": f"Bearer {token}"}
    answers = []
    for server, follow_up_id in ((ours, first), (floor, second)):
        response = httpx.post(
            server.url + "/graphql", json=body("Q5", {"id": encode_id("FollowUp", follow_up_id)}), headers=headers
        )
        data = response.json().get("data") or {}
        answer = data.get("recordFollowUpOutcome") or {}
        if answer.get("id") != encode_id("FollowUp", follow_up_id):
            raise SystemExit(f"{server.name} failed Q5: {response.text[:300]}")
        answers.append(answer["status"])
    mine, theirs = stored(first), stored(second)
    if answers[0] != answers[1] or mine["row"][:-1] != theirs["row"][:-1]:
        raise SystemExit(f"Q5 differs: ours {answers[0]} {mine}, floor {answers[1]} {theirs}")
    if [mine["row"][-1] - before[0], theirs["row"][-1] - before[1]] != [1, 1]:
        raise SystemExit("Q5: a version was not bumped by one")
    for key in ("changed", "reason", "kind", "event"):
        if mine[key] != theirs[key]:
            raise SystemExit(f"Q5 stores a different {key}: ours {mine[key]}, floor {theirs[key]}")
    log(f"checked: ours and the floor answer and store the same Q5 (follow-ups {first} and {second})")
    return {"follow_ups": [first, second], "changed_fields": mine["changed"], "equal": True}


def run(concurrency: list[int], seconds: float, warmup: float) -> dict[str, Any]:
    prepare()
    ids = follow_ups()
    path = write_bodies("workload-q5", [body("Q5", {"id": encode_id("FollowUp", pk)}) for pk in ids])
    results: dict[str, Any] = {"follow_ups": len(ids), "seconds_per_cell": seconds, "cells": []}
    results["load_average_before"] = load_average()
    counters = Counters()
    try:
        with Proc("ours") as ours, Proc("floor") as floor:
            token = login(ours.url)
            results["check"] = check_same(ours, floor, token)
            for level in concurrency:
                for server in (ours, floor):
                    total, sealer = server.cpu_seconds(), server.children_cpu_seconds()
                    row = cell(server, counters, path, token, level, seconds, warmup)  # type: ignore[arg-type]
                    total, sealer = server.cpu_seconds() - total, server.children_cpu_seconds() - sealer
                    # ours: the share of the CPU per request spent in the audit sealer's process (woken by each write)
                    row["sealer_cpu_ms_per_request"] = round(row["cpu_ms_per_request"] * sealer / max(total, 1e-9), 3)
                    row.update(server=server.name, concurrency=level)
                    results["cells"].append(row)
                    log(f"Q5 c={level} {server.name}: {row['rps']} rps p50 {row['p50_ms']} ms p99 {row['p99_ms']} ms "
                        f"cpu {row['cpu_ms_per_request']} ms/req stmts {row.get('statements_per_request')} "
                        f"errors {row['errors']}")  # fmt: skip
    finally:
        counters.close()
    by = {(row["server"], row["concurrency"]): row for row in results["cells"]}
    results["floor_over_ours"] = {
        str(level): round(by[("floor", level)]["rps"] / max(by[("ours", level)]["rps"], 1e-9), 2)
        for level in concurrency
    }
    results["load_average_after"] = load_average()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", default="10")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    args = parser.parse_args()
    levels = [int(level) for level in args.concurrency.split(",")]
    print(orjson.dumps(run(levels, args.seconds, args.warmup), option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()

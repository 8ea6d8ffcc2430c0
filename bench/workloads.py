# ruff: noqa: S603  (benchmark tooling: local commands)
"""The new workloads (issue 21), each beside a floor doing the same work, measured in one run.

    python bench/workloads.py                                  # all, full sizes (`make bench-workloads`)
    python bench/workloads.py --only booking,audit --small     # some, development sizes

q5 (bench/wl_write.py), booking (wl_booking.py), subscriptions (wl_subscriptions.py), import
(import_schedules.py, SQLite and MariaDB, with its floor, bench/import_floor.py) and audit (wl_audit.py).
Results: bench/results/workloads.json and workloads.md, with the machine's load average before and after each.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from typing import Any

import orjson
from common import BENCH, PYTHON, RESULTS  # type: ignore[import-not-found]
from wl_common import load_average, log  # type: ignore[import-not-found]

ORDER = ["q5", "booking", "subscriptions", "import", "audit"]
FULL = {"q5": {"seconds": 10.0}, "booking": {"clients": 200, "places": 50}, "subscriptions": {"subscribers": 1000,
        "messages": 3}, "import": {"rows": 10_000}, "audit": {"events": 1_000_000}}  # fmt: skip
SMALL = {"q5": {"seconds": 3.0}, "booking": {"clients": 40, "places": 10}, "subscriptions": {"subscribers": 50,
         "messages": 3}, "import": {"rows": 1000}, "audit": {"events": 20_000}}  # fmt: skip


def measure(name: str, size: dict[str, Any]) -> dict[str, Any]:
    if name == "q5":
        import wl_write  # type: ignore[import-not-found]

        return wl_write.run([10], size["seconds"], 2.0)
    if name == "booking":
        import wl_booking  # type: ignore[import-not-found]

        return wl_booking.run(size["clients"], size["places"])
    if name == "subscriptions":
        import wl_subscriptions  # type: ignore[import-not-found]

        return wl_subscriptions.run(size["subscribers"], size["messages"])
    if name == "audit":
        import wl_audit  # type: ignore[import-not-found]

        return wl_audit.run(size["events"])
    out = RESULTS if size["rows"] == 10_000 else RESULTS / ".work"
    for extra in ([], ["--mysql"]):
        command = [PYTHON, str(BENCH / "import_schedules.py"), "--rows", str(size["rows"]), "--out", str(out), *extra]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    found: dict[str, Any] = json.loads((out / "import.json").read_text())
    return found


def _fmt(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int | float) and not isinstance(value, bool) else str(value)


def report(results: dict[str, Any]) -> list[str]:
    lines = [
        "# New workloads, each beside a floor (bench/workloads.py, `make bench-workloads`)",
        "",
        f"Run {results['started']} UTC, {results['elapsed_seconds']} s; {os.cpu_count()} cores shared with other "
        "people's work: compare the ratios measured in one run, not the absolute figures. Load average (1/5/15 min) "
        "before and after each workload is given with it.",
        "",
    ]
    w = results["workloads"]
    if "q5" in w:
        q = w["q5"]
        cells = {row["server"]: row for row in q["cells"] if row["concurrency"] == 10}
        ours, floor = cells.get("ours", {}), cells.get("floor", {})
        ratio = q["floor_over_ours"].get("10")
        lines += [
            "## Q5, the write: `recordFollowUpOutcome` (bench/wl_write.py)",
            "",
            f"Ours beside the floor's raw-SQL write (bench/floor_writes.py) at c=10, {q['seconds_per_cell']} s, over "
            f"{q['follow_ups']:,} follow-ups of the chief's reach round-robin; both answered and stored the same "
            f"before timing (changed fields {', '.join(q['check']['changed_fields'])}). Load {q['load_average_before']}"
            f" -> {q['load_average_after']}.",
            "",
            "| server | rps | p50 ms | p99 ms | CPU ms/req | of which the sealer's | statements/req | errors |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name, row in (("ours", ours), ("floor", floor)):
            keys = ("p50_ms", "p99_ms", "cpu_ms_per_request", "sealer_cpu_ms_per_request", "statements_per_request")
            figures = [row.get(key) for key in keys]
            lines.append(f"| {name} | {_fmt(row.get('rps'))} | {' | '.join(map(str, figures))} | {row.get('errors')} |")
        verdict = "met" if ratio is not None and ratio <= 2.0 else "NOT met"
        lines += ["", f"floor/ours throughput at c=10: **{ratio}** (target at most 2.0: {verdict}).", ""]
    if "booking" in w:
        b = w["booking"]
        lines += [
            "## Booking rush (bench/wl_booking.py)",
            "",
            f"{b['clients']} clients book {b['places']} places of one session at once (`scheduleAppointment` as the "
            f"chief, each for another patient), connections opened beforehand. Load {b['load_average_before']} -> "
            f"{b['load_average_after']}.",
            "",
            "| server | wall s | bookings/s | requests/s | p50 ms | p99 ms | booked (answers / stored / places) | "
            "errors | CPU ms/req | exact |",
            "|---|---:|---:|---:|---:|---:|---|---|---:|---|",
        ]
        for name in ("ours", "floor"):
            r = b[name]
            stored = r["stored"]
            lines.append(f"| {name} | {r['wall_seconds']} | {r['bookings_per_second']} | {r['requests_per_second']} | "
                         f"{r['p50_ms']} | {r['p99_ms']} | {r['booked_answers']} / {stored['booked']} / "
                         f"{stored['distinct_places']} | {r['error_codes']} | {r['server_cpu_ms_per_request']} | "
                         f"{'yes' if r['ok'] else 'NO'} |")  # fmt: skip
        lines += ["", f"floor/ours bookings per second: **{b['floor_over_ours']}**.", ""]
    if "subscriptions" in w:
        s = w["subscriptions"]
        lines += [
            "## Subscriptions: one message to many `messageAdded` subscriptions (bench/wl_subscriptions.py)",
            "",
            f"{s['subscribers']:,} websockets (graphql-transport-ws), one subscription each, {s['messages']} messages "
            f"(plus a warm-up); the floor (bench/ws_floor.py) sends the same {s['payload_bytes']}-byte frame. Load "
            f"{s['load_average_before']} -> {s['load_average_after']}.",
            "",
            "| server | subscribed | delivered / expected | lost | p50 ms | p99 ms | fan-out window ms | deliveries/s |"
            " server CPU s |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name in ("ours", "floor"):
            r = s[name]
            lines.append(f"| {name} | {r['subscribed']} | {r['delivered']:,} / {r['expected']:,} | {r['lost']} | "
                         f"{r['p50_ms']} | {r['p99_ms']} | {r['mean_window_ms']} | {r['deliveries_per_second']:,} | "
                         f"{r['server_cpu_seconds']} |")  # fmt: skip
        lines += ["", f"floor/ours deliveries per second: **{s['floor_over_ours_deliveries_per_second']}**; "
                  f"nothing lost: {'yes' if s['ok'] else 'NO'}.", ""]  # fmt: skip
    if "import" in w:
        lines += [
            "## Schedule import (bench/import_schedules.py with bench/import_floor.py)",
            "",
            "A 10,000-row plan as CSV through `importSchedules` (admin, in process); the floor inserts the same rows "
            "(one multi-row INSERT per 1,000, one transaction), its rows checked equal to the import's. Details: "
            "results/import.md.",
            "",
            "| database | import rows/s | floor rows/s | floor/import |",
            "|---|---:|---:|---:|",
        ]
        for name, entry in sorted(w["import"].items()):
            ours_rate = entry["results"]["csv"]["import_rows_per_second"]
            floor_rate = entry["results"].get("floor", {}).get("rows_per_second")
            ratio = round(floor_rate / ours_rate, 1) if floor_rate else None
            lines.append(f"| {name} | {ours_rate:,} | {_fmt(floor_rate)} | {ratio} |")
        lines += ["", f"Load {results['load'].get('import')}.", ""]
    if "audit" in w:
        a = w["audit"]
        v, g = a["verify_audit"], a["generated"]
        lines += [
            "## Audit verification (bench/wl_audit.py)",
            "",
            f"`server.py verify-audit` over {a['events']:,} sealed events on {a['database']} (generated in "
            f"{g['generate_seconds']} s), beside hashlib.sha256 over the same {g['bytes_hashed']:,} bytes and links in "
            f"one loop. Load {a['load_average_before']} -> {a['load_average_after']}.",
            "",
            "| | events/s (wall) | events/s (CPU) | seconds | peak RSS MB | result |",
            "|---|---:|---:|---:|---:|---|",
            f"| verify-audit | {v['events_per_second_wall']:,} | {v['events_per_second_cpu']:,} | "
            f"{v['wall_seconds']} | {v['peak_rss_mb']} | {' '.join(v['report'])[:90]} |",
            f"| floor (hashlib loop) | {g['floor_events_per_second']:,} | | {g['floor_seconds']} | | |",
            "",
            f"floor/verify-audit: **{a['floor_over_ours']}**.",
            "",
        ]
    for name, error in results.get("failed", {}).items():
        lines += [f"**{name} failed**: {error}", ""]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(ORDER))
    parser.add_argument("--small", action="store_true", help="development sizes; results in results/.work/")
    args = parser.parse_args()
    sizes = SMALL if args.small else FULL
    started = time.time()
    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M", time.gmtime(started)),
        "sizes": sizes,
        "load": {},
        "workloads": {},
        "failed": {},
    }
    for name in [n for n in ORDER if n in args.only.split(",")]:
        before = load_average()
        log(f"workload {name} (load {before})")
        try:
            results["workloads"][name] = measure(name, sizes[name])
        except (Exception, SystemExit) as error:
            results["failed"][name] = str(error)[:500]
            log(f"workload {name} failed: {error}")
        results["load"][name] = [before, load_average()]
    results["elapsed_seconds"] = round(time.time() - started)
    out = RESULTS / ".work" if args.small else RESULTS
    out.mkdir(parents=True, exist_ok=True)
    (out / "workloads.json").write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2) + b"\n")
    (out / "workloads.md").write_text("\n".join(report(results)))
    log(f"results: {out / 'workloads.md'}")
    if results["failed"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

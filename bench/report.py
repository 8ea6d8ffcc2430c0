"""Results of bench/run.py to bench/results/: JSON, a Markdown table and a PNG plot.

python bench/report.py bench/results/full.json     # re-render the table and plot from a JSON file
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson
from common import DESCRIPTIONS, RESULTS  # type: ignore[import-not-found]

# The raised targets of issue 21 (the first round's, all met in bench/results/full.md of 2026-11: floor/ours <= 2
# (Q4: 3), p99 ours/floor <= 2, deep/first page <= 1.5).
TARGETS = {
    "floor_c10": {"Q1": 1.5, "Q2": 1.5, "Q3": 1.5, "Q4": 1.5, "Q5": 2.0},  # floor rps / ours rps at most this
    "peer_min": 2.0,  # ours rps / tutorial-peer rps at least this on Q2-Q4
    "competent_min": {"Q3": 2.0, "Q4": 2.0},  # ours rps / competent-peer rps at least this
    "postgraphile_min": {"Q1": 1.0, "Q2": 1.0, "Q3": 1.0, "Q4": 1.0},  # ours rps / PostGraphile rps at least this
    "p99_c50": 1.5,  # ours p99 / floor p99 at most this
    "q0_cpu_ms": 0.5,  # ours' CPU per Q0 request at c=10 at most this
    "deep_page": 1.2,  # deep-page latency / first-page latency at most this
}
OTHERS = ("floor", "peer", "competent", "postgraphile")


def _index(cells: list[dict[str, Any]]) -> dict[tuple[str, str, int], dict[str, Any]]:
    return {(c["server"], c["query"], c["concurrency"]): c for c in cells}


def _ratio(a: float | None, b: float | None) -> float | None:
    if not a or not b:
        return None
    return round(a / b, 2)


def _fmt(value: Any, suffix: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.2f}{suffix}" if value < 100 else f"{value:,.0f}{suffix}"
    return f"{value}{suffix}"


def summary(results: dict[str, Any]) -> dict[str, Any]:
    cells = _index(results["cells"])
    out: dict[str, Any] = {"rows": [], "targets": []}
    queries = sorted({c["query"] for c in results["cells"]})
    for query in queries:
        for concurrency in results["concurrency"]:
            ours = cells.get(("ours", query, concurrency))
            floor = cells.get(("floor", query, concurrency))
            peer = cells.get(("peer", query, concurrency))
            competent = cells.get(("competent", query, concurrency))
            graphile = cells.get(("postgraphile", query, concurrency))
            if not ours:
                continue
            out["rows"].append(
                {
                    "query": query,
                    "concurrency": concurrency,
                    "ours_rps": ours["rps"],
                    "floor_rps": floor and floor["rps"],
                    "peer_rps": peer and peer["rps"],
                    "competent_rps": competent and competent["rps"],
                    "postgraphile_rps": graphile and graphile["rps"],
                    "floor_over_ours": _ratio(floor and floor["rps"], ours["rps"]),
                    "ours_over_peer": _ratio(ours["rps"], peer and peer["rps"]),
                    "ours_over_competent": _ratio(ours["rps"], competent and competent["rps"]),
                    "ours_over_postgraphile": _ratio(ours["rps"], graphile and graphile["rps"]),
                    "ours_p50_ms": ours["p50_ms"],
                    "ours_p99_ms": ours["p99_ms"],
                    "floor_p99_ms": floor and floor["p99_ms"],
                    "p99_ours_over_floor": _ratio(ours["p99_ms"], floor and floor["p99_ms"]),
                    "ours_statements": ours.get("statements_per_request", ours["questions_per_request"]),
                    "floor_statements": floor and floor.get("statements_per_request", floor["questions_per_request"]),
                    "peer_statements": peer and peer.get("statements_per_request", peer["questions_per_request"]),
                    "competent_statements": competent
                    and competent.get("statements_per_request", competent["questions_per_request"]),
                    "postgraphile_transactions": graphile and graphile.get("pg_transactions_per_request"),
                    "ours_cpu_ms": ours["cpu_ms_per_request"],
                    "floor_cpu_ms": floor and floor["cpu_ms_per_request"],
                    "peer_cpu_ms": peer and peer["cpu_ms_per_request"],
                    "competent_cpu_ms": competent and competent["cpu_ms_per_request"],
                    "postgraphile_cpu_ms": graphile and graphile["cpu_ms_per_request"],
                    "errors": sum(c["errors"] for c in (ours, floor, peer, competent, graphile) if c),
                    "load_1m": ours.get("load_1m_before"),
                }
            )

    def ratio_target(other: str, query: str, limit: float, label: str) -> None:
        ours, theirs = cells.get(("ours", query, 10)), cells.get((other, query, 10))
        if ours and theirs and not theirs["requests"] and ours["requests"]:
            out["targets"].append(
                {"target": f"{query} c=10: {label} >= {limit}", "value": f"{other} completed no request", "met": True}
            )
        elif ours and theirs:
            ratio = _ratio(ours["rps"], theirs["rps"])
            out["targets"].append(
                {
                    "target": f"{query} c=10: {label} >= {limit}",
                    "value": ratio,
                    "met": ratio is not None and ratio >= limit,
                }
            )

    for query, limit in TARGETS["postgraphile_min"].items():
        ratio_target("postgraphile", query, limit, "ours/PostGraphile throughput")
    for query, limit in TARGETS["competent_min"].items():
        ratio_target("competent", query, limit, "ours/competent-peer throughput")
    q0 = cells.get(("ours", "Q0", 10))
    if q0:
        out["targets"].append(
            {
                "target": f"Q0 c=10: ours' CPU per request <= {TARGETS['q0_cpu_ms']} ms",
                "value": q0["cpu_ms_per_request"],
                "met": q0["cpu_ms_per_request"] <= TARGETS["q0_cpu_ms"],
            }
        )
    for query, limit in TARGETS["floor_c10"].items():
        ours, floor = cells.get(("ours", query, 10)), cells.get(("floor", query, 10))
        if ours and floor:
            ratio = _ratio(floor["rps"], ours["rps"])
            out["targets"].append(
                {
                    "target": f"{query} c=10: floor/ours throughput <= {limit}",
                    "value": ratio,
                    "met": ratio is not None and ratio <= limit,
                }
            )
    for query in ("Q2", "Q3", "Q4"):
        ratio_target("peer", query, TARGETS["peer_min"], "ours/tutorial-peer throughput")
    for query in ("Q1", "Q2", "Q3", "Q4"):
        ours, floor = cells.get(("ours", query, 50)), cells.get(("floor", query, 50))
        if ours and floor:
            ratio = _ratio(ours["p99_ms"], floor["p99_ms"])
            out["targets"].append(
                {
                    "target": f"{query} c=50: ours/floor p99 <= {TARGETS['p99_c50']}",
                    "value": ratio,
                    "met": ratio is not None and ratio <= TARGETS["p99_c50"],
                }
            )
    sizes: dict[str, dict[int, float]] = {}
    for row in results.get("page_size", []):
        if row["server"] == "ours" and "statements_per_request" in row:
            sizes.setdefault(row["query"], {})[row["first"]] = row["statements_per_request"]
    for query, by_size in sizes.items():
        constant = max(by_size.values()) - min(by_size.values()) < 0.5
        out["targets"].append(
            {
                "target": f"{query}: statements per request constant in page size",
                "value": ", ".join(f"first={k}: {v}" for k, v in sorted(by_size.items())),
                "met": constant,
            }
        )
    pages: dict[tuple[int, str], dict[str, dict[str, Any]]] = {}
    for row in results.get("scale_check", []):
        if row["server"] == "ours":
            pages.setdefault((row["patients"], row["query"]), {})[row["page"]] = row
    for (patients, query), by_page in sorted(pages.items()):
        if "first" in by_page and "deep" in by_page:
            ratio = _ratio(by_page["deep"]["p50_ms"], by_page["first"]["p50_ms"])
            out["targets"].append(
                {
                    "target": f"{query} at {patients // 1000}k patients: deep/first page p50 <= {TARGETS['deep_page']}",
                    "value": ratio,
                    "met": ratio is not None and ratio <= TARGETS["deep_page"],
                }
            )
    return out


def markdown(results: dict[str, Any], digest: dict[str, Any]) -> str:
    lines = [
        f"# Benchmark: {results['scale']} scale ({results['patients']:,} patients)",
        "",
        f"Database `{results['database']}`; {results['seconds_per_cell']} s per cell after "
        + (f"{results['rounds']} rounds of alternating servers (medians) of " if results.get("rounds", 1) > 1 else "")
        + f"{results['warmup_seconds']} s warm-up; wrk, one thread, loopback; one uvicorn worker each; "
        f"{results['machine']['cores']} cores shared (load average at start "
        f"{', '.join(f'{v:.1f}' for v in results['machine']['load_average_at_start'])}"
        + (
            f"; at end {', '.join(f'{v:.1f}' for v in results['machine']['load_average_at_end'])}"
            if results["machine"].get("load_average_at_end")
            else ""
        )
        + "; each cell's 1-minute load before it is in the JSON, `load_1m_before`). "
        "Caller: `chief` (scope: Colorectal Surgery and below).",
        "",
    ]
    for size, meta in results["data_sets"].items():
        lines.append(
            f"* Data set {int(size):,}: {meta['patients']:,} patients, {meta['visits']:,} visits, "
            f"{meta['diagnoses']:,} diagnoses, {meta['follow_ups']:,} follow-ups; generated at "
            f"{meta['rows_per_second']:,} rows/s ({meta['seconds']} s)" + (" (reused)" if meta.get("reused") else "")
        )
    q6 = results.get("q6", {})
    lines += [
        f"* Q6 (persisted query): {'available' if q6.get('available') else 'not available'} — {q6.get('note', '')}"
    ]
    lines += [f"* {note}" for note in results.get("notes", [])]
    lines += [
        "",
        "## Throughput, latency, statements, CPU",
        "",
        "floor/ours > 1 means the floor is faster; ours/X > 1 means we beat X (tutorial-style peer, competent peer,"
        " PostGraphile 4). Statements: per request, from the server's own MariaDB account (USER_STATISTICS); "
        "PostGraphile's: PostgreSQL transactions per request (pg_stat_database; one compiled SELECT each).",
        "",
        "| query | c | rps ours / floor / peer / competent / PostGraphile | floor/ours | ours/peer | ours/competent "
        "| ours/PostGraphile | ours p50 ms | ours p99 ms | floor p99 ms | p99 ours/floor "
        "| stmts ours/floor/peer/competent (PG xacts) | CPU ms/req ours/floor/peer/competent/PostGraphile | errors |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in digest["rows"]:
        rps = " / ".join(_fmt(row.get(f"{n}_rps")) for n in ("ours", *OTHERS))
        statements = " / ".join(_fmt(row.get(f"{n}_statements")) for n in ("ours", "floor", "peer", "competent"))
        cpu = " / ".join(_fmt(row.get(f"{n}_cpu_ms")) for n in ("ours", *OTHERS))
        lines.append(
            f"| {row['query']} | {row['concurrency']} | {rps} | {_fmt(row['floor_over_ours'])} "
            f"| {_fmt(row['ours_over_peer'])} | {_fmt(row.get('ours_over_competent'))} "
            f"| {_fmt(row.get('ours_over_postgraphile'))} "
            f"| {_fmt(row['ours_p50_ms'])} | {_fmt(row['ours_p99_ms'])} | {_fmt(row['floor_p99_ms'])} "
            f"| {_fmt(row['p99_ours_over_floor'])} "
            f"| {statements} ({_fmt(row.get('postgraphile_transactions'))}) | {cpu} | {int(row['errors'])} |"
        )
    lines += ["", "Queries: " + "; ".join(f"{q}: {d}" for q, d in DESCRIPTIONS.items()), ""]
    lines += ["## Targets", "", "| target | value | met |", "|---|---|---|"]
    for target in digest["targets"]:
        lines.append(f"| {target['target']} | {_fmt(target['value'])} | {'yes' if target['met'] else '**no**'} |")
    if results.get("page_size"):
        lines += [
            "",
            "## Statements per request by page size (sequential requests)",
            "",
            "Ours' counts include what its audit sealer ran meanwhile (production defaults: every 2 s, same MariaDB "
            "account), so they wander by a statement or two with the time a request takes.",
            "",
            "| server | query | first | statements | selects | writes | other | ms/request | DB rows read |",
            "|---|---|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for row in results["page_size"]:
            lines.append(
                f"| {row['server']} | {row['query']} | {row['first']} | {_fmt(row.get('statements_per_request'))} "
                f"| {_fmt(row.get('selects_per_request'))} | {_fmt(row.get('writes_per_request'))} "
                f"| {_fmt(row.get('other_per_request'))} | {_fmt(row.get('sequential_ms'))} "
                f"| {_fmt(row.get('db_rows_read_per_request'))} |"
            )
    if results.get("scale_check"):
        lines += [
            "",
            "## Scale check: first page vs a deep keyset page (90% into the caller's patients), c=10",
            "",
            "| patients | server | query | page | rps | p50 ms | p99 ms | DB rows read/request | DB busy ms/request |",
            "|--:|---|---|---|--:|--:|--:|--:|--:|",
        ]
        for row in results["scale_check"]:
            lines.append(
                f"| {row['patients']:,} | {row['server']} | {row['query']} | {row['page']} | {_fmt(row['rps'])} "
                f"| {_fmt(row['p50_ms'])} | {_fmt(row['p99_ms'])} | {_fmt(row.get('db_rows_read_per_request'))} "
                f"| {_fmt(row.get('db_busy_ms_per_request'))} |"
            )
    sealing = results.get("sealing")
    if sealing:
        lines += [
            "",
            "## Audit sealing",
            "",
            f"Linking {sealing['events']:,} read events into the hash chain (the app's `seal_pending`, one process): "
            f"{_fmt(sealing['cpu_us_per_event'])} µs CPU per event, {sealing['events_per_second']:,} events/s. "
            "In production the background sealer adds this to each read of a patient, in its own process (not on the "
            "server's event loop): for a page of 50 patients (Q2) about "
            f"{_fmt(50 * sealing['cpu_us_per_event'] / 1000)} ms CPU.",
        ]
    peak = results.get("peak_rss_mb", {})
    if peak:
        lines += ["", "Peak RSS (MB): " + ", ".join(f"{k} {v}" for k, v in peak.items())]
    lines += ["", f"Run took {results.get('elapsed_seconds', 0):.0f} s.", ""]
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    queries = sorted({c["query"] for c in results["cells"]})
    columns = 4
    rows = (len(queries) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3.2 * rows), squeeze=False)
    styles = {
        "ours": ("tab:blue", "o"),
        "floor": ("tab:green", "s"),
        "peer": ("tab:red", "^"),
        "competent": ("tab:orange", "D"),
        "postgraphile": ("tab:purple", "v"),
    }
    for ax, query in zip(axes.flat, queries, strict=False):
        for server, (colour, marker) in styles.items():
            points = sorted(
                (c["concurrency"], c["rps"]) for c in results["cells"] if c["server"] == server and c["query"] == query
            )
            if points:
                ax.plot(*zip(*points, strict=True), marker=marker, color=colour, label=server)
        ax.set_title(f"{query}: {DESCRIPTIONS.get(query, '')}", fontsize=8)
        ax.set_xscale("log")
        ax.set_xticks(results["concurrency"], [str(c) for c in results["concurrency"]])
        ax.set_xlabel("concurrency", fontsize=8)
        ax.set_ylabel("requests/s", fontsize=8)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(queries) :]:
        ax.axis("off")
    figure.suptitle(f"Throughput vs concurrency, {results['patients']:,} patients", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_report(results: dict[str, Any]) -> list[Path]:
    RESULTS.mkdir(parents=True, exist_ok=True)
    digest = summary(results)
    results = results | {"summary": digest}
    stem = RESULTS / results.get("label", results["scale"])
    json_path, md_path, png_path = stem.with_suffix(".json"), stem.with_suffix(".md"), stem.with_suffix(".png")
    json_path.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    md_path.write_text(markdown(results, digest), encoding="utf-8")
    plot(results, png_path)
    return [json_path, md_path, png_path]


if __name__ == "__main__":
    for argument in sys.argv[1:]:
        data = orjson.loads(Path(argument).read_bytes())
        data.pop("summary", None)
        print("\n".join(str(p) for p in write_report(data)))

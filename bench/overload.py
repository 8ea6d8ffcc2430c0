"""Overload: at 4x the rate one instance sustains, the requests it accepts keep their latency (issue 19).

    python bench/overload.py                     # SQLite demo data, MAX_REQUESTS_IN_FLIGHT=8
    python bench/overload.py --in-flight 4 --seconds 15

`server.py serve` (one worker, production defaults but for what a one-account load test needs: bench/live.py) with
the chief listing 20 patients (20 read events per request). Three phases, one run:
1. unloaded: one request at a time for --seconds: the unloaded p50/p99;
2. sustainable: closed loop, as many clients as MAX_REQUESTS_IN_FLIGHT, for --seconds: the rate it sustains
   (requests answered per second; none is shed, since no more are in flight than it takes);
3. overload: open loop at 4x that rate for --seconds (each request sent on its schedule, whatever the answers):
   the accepted requests' p50/p99 and how many were shed (503 OVERLOADED) or failed otherwise.
The ratio is p99 accepted under overload / p99 unloaded (target: within 2x). The client is Python (httpx) on the
same machine, so its own scheduling adds to every latency alike. Results: bench/results/overload.json and .md, with
the machine's load average before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

import httpx
import orjson
from common import RESULTS  # type: ignore[import-not-found]
from live import PATIENTS_QUERY, Ours, log, prepare  # type: ignore[import-not-found]

PORT = 8741


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(latencies: list[float]) -> dict[str, float]:
    return {
        "count": len(latencies),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "p90_ms": round(percentile(latencies, 0.90) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "max_ms": round(max(latencies) * 1000, 2) if latencies else float("nan"),
    }


async def one(http: httpx.AsyncClient, token: str) -> tuple[str, float]:
    started = time.perf_counter()
    try:
        response = await http.post(
            "/graphql", json={"query": PATIENTS_QUERY}, headers={"Authorization": f"Bearer {token}"}
        )
    except httpx.HTTPError as error:
        return type(error).__name__, time.perf_counter() - started
    took = time.perf_counter() - started
    if response.status_code == 200 and "errors" not in response.json():
        return "ok", took
    try:
        code = response.json()["errors"][0]["extensions"]["code"]
    except (ValueError, KeyError, IndexError):
        code = "no code"
    return f"{response.status_code} {code}", took


async def closed_loop(url: str, token: str, clients: int, seconds: float) -> tuple[list[float], dict[str, int]]:
    latencies: list[float] = []
    outcomes: dict[str, int] = {}
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:

        async def client() -> None:
            while time.perf_counter() < deadline:
                outcome, took = await one(http, token)
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
                if outcome == "ok":
                    latencies.append(took)

        await asyncio.gather(*(client() for _ in range(clients)))
    return latencies, outcomes


async def open_loop(url: str, token: str, rate: float, seconds: float) -> tuple[list[float], dict[str, int], float]:
    """Requests sent at `rate` per second on schedule; the accepted ones' latencies, outcomes, the send lag's p99."""
    latencies: list[float] = []
    outcomes: dict[str, int] = {}
    lags: list[float] = []
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
        tasks = []
        start = time.perf_counter()
        total = int(rate * seconds)

        async def fire() -> None:
            outcome, took = await one(http, token)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            if outcome == "ok":
                latencies.append(took)

        for number in range(total):
            due = start + number / rate
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            lags.append(max(0.0, time.perf_counter() - due))
            tasks.append(asyncio.create_task(fire()))
        await asyncio.gather(*tasks)
    return latencies, outcomes, percentile(lags, 0.99)


async def measure(url: str, token: str, in_flight: int, seconds: float) -> dict[str, Any]:
    await closed_loop(url, token, in_flight, 3)  # warm-up: caches, the chief's schema, the sealer's first pass
    unloaded, unloaded_outcomes = await closed_loop(url, token, 1, seconds)
    log(f"unloaded: {summary(unloaded)} {unloaded_outcomes}")
    started = time.perf_counter()
    sustained, sustained_outcomes = await closed_loop(url, token, in_flight, seconds)
    rate = len(sustained) / (time.perf_counter() - started)
    log(f"sustainable: {rate:.1f} requests/s {summary(sustained)} {sustained_outcomes}")
    loaded, loaded_outcomes, lag = await open_loop(url, token, 4 * rate, seconds)
    log(f"4x ({4 * rate:.1f}/s): accepted {summary(loaded)} {loaded_outcomes}; send lag p99 {lag * 1000:.1f} ms")
    unloaded_p99 = percentile(unloaded, 0.99)
    return {
        "unloaded": {**summary(unloaded), "outcomes": unloaded_outcomes},
        "sustainable": {"rate_per_s": round(rate, 1), **summary(sustained), "outcomes": sustained_outcomes},
        "overload": {
            "rate_per_s": round(4 * rate, 1),
            **summary(loaded),
            "outcomes": loaded_outcomes,
            "accepted_share": round(len(loaded) / max(1, sum(loaded_outcomes.values())), 3),
            "send_lag_p99_ms": round(lag * 1000, 2),
        },
        "p99_ratio": round(percentile(loaded, 0.99) / unloaded_p99, 2) if loaded else None,
    }


def write(result: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "overload.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    unloaded, sustainable, overload = result["unloaded"], result["sustainable"], result["overload"]
    lines = [
        "# Overload: accepted requests' latency at 4x the sustainable rate (bench/overload.py)",
        "",
        f"{result['date']}, {result['database']}, `server.py serve` one worker, MAX_REQUESTS_IN_FLIGHT="
        f"{result['in_flight']}, {result['seconds']:g} s per phase; the chief lists 20 patients (20 read events).",
        f"Machine: {result['cpus']} CPUs, load average {result['load_before']} before and {result['load_after']} "
        "after (other work on the machine shares it); the client (Python, httpx) runs on the same machine.",
        "",
        "| phase | rate (req/s) | answered ok | p50 ms | p90 ms | p99 ms | max ms | other outcomes |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, row, rate in (
        ("unloaded (one at a time)", unloaded, "-"),
        ("sustainable (closed loop)", sustainable, sustainable["rate_per_s"]),
        ("4x sustainable (open loop)", overload, overload["rate_per_s"]),
    ):
        others = ", ".join(f"{key}: {value}" for key, value in row["outcomes"].items() if key != "ok") or "none"
        lines.append(
            f"| {name} | {rate} | {row['count']} | {row['p50_ms']} | {row['p90_ms']} | {row['p99_ms']} | "
            f"{row['max_ms']} | {others} |"
        )
    lines += [
        "",
        f"**p99 of accepted requests at 4x / unloaded p99: {result['p99_ratio']}x** (target: within 2x). "
        f"{overload['accepted_share'] * 100:.0f}% of the requests sent at 4x were accepted; the rest were answered "
        f"at once with 503 OVERLOADED. The client's own send lag (p99): {overload['send_lag_p99_ms']} ms.",
        "",
    ]
    (RESULTS / "overload.md").write_text("\n".join(lines), encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=("sqlite", "mysql"), default="sqlite")
    parser.add_argument(
        "--in-flight", type=int, default=8, help="MAX_REQUESTS_IN_FLIGHT (default 8; the server's own default is 64)"
    )
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    prepare(args.db)
    load_before = [round(value, 2) for value in os.getloadavg()]
    with Ours(args.db, PORT, MAX_REQUESTS_IN_FLIGHT=str(args.in_flight)) as server:
        token = server.token()
        result = asyncio.run(measure(server.url, token, args.in_flight, args.seconds))
    result.update(
        date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        database={"sqlite": "SQLite", "mysql": "MariaDB"}[args.db],
        in_flight=args.in_flight,
        seconds=args.seconds,
        cpus=os.cpu_count(),
        load_before=load_before,
        load_after=[round(value, 2) for value in os.getloadavg()],
    )
    write(result)
    log(f"p99 ratio {result['p99_ratio']}x; bench/results/overload.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

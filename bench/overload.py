"""Overload: at 4x the rate one instance sustains, the requests it accepts keep their latency (issue 19).

    python bench/overload.py                     # SQLite demo data, production defaults (adaptive concurrency on)
    python bench/overload.py --fixed --in-flight 8   # the fixed limit alone (CONCURRENCY_ADAPTIVE=false)
    python bench/overload.py --seconds 10 --label short   # results/.work/overload-short.*

`server.py serve` (one worker, production defaults but for what a one-account load test needs: bench/live.py) with
the chief listing 20 patients (20 read events per request). Three phases, one run:
1. unloaded: one request at a time for --seconds: the unloaded p50/p99;
2. sustainable: closed loop, --clients clients (default 8), for --seconds: the rate it sustains (requests answered
   ok per second; with adaptive concurrency some of the 8 wait or are shed: the rate counts the answered ones);
3. overload: open loop at 4x that rate for --seconds (each request sent on its schedule, whatever the answers):
   the accepted requests' p50/p99 and how many were shed (503 OVERLOADED) or failed otherwise.
The ratio is p99 accepted under overload / p99 unloaded (target: within 2x); it is also given for the requests sent
after the first --settle seconds of the overload (default 2: the limit adapting). The client runs on the same
machine: a lean asyncio HTTP/1.1 client on keep-alive connections (an httpx open loop at a few hundred requests a
second took more CPU than the server it loaded); its own scheduling adds to every latency alike. Results:
bench/results/overload.json and .md (--label: results/.work/), with the machine's load average before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

import orjson
from common import RESULTS, free_ports  # type: ignore[import-not-found]
from live import PATIENTS_QUERY, Ours, log, prepare  # type: ignore[import-not-found]


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


class Client:
    """A lean HTTP/1.1 client (asyncio streams, keep-alive connections, one request per connection at a time, the
    request's bytes built once): an open loop from httpx costs the machine more CPU than the server it loads.
    A request finding no idle connection opens one (its time counts in its latency, as for a real client)."""

    def __init__(self, url: str, token: str) -> None:
        address = url.removeprefix("http://")
        self.host, port = address.split(":")
        self.port = int(port)
        body = orjson.dumps({"query": PATIENTS_QUERY})
        self.request = (
            f"POST /graphql HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []  # (..., idle since)
        self.opened = 0

    async def one(self) -> tuple[str, float]:
        started = time.perf_counter()
        try:
            reader, writer = await self._connection(started)
            writer.write(self.request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            lower = head.lower()
            at = lower.index(b"content-length:") + 15
            body = await reader.readexactly(int(lower[at : lower.index(b"\r\n", at)]))
        except (OSError, ValueError, asyncio.IncompleteReadError) as error:
            return type(error).__name__, time.perf_counter() - started
        took = time.perf_counter() - started
        if b"connection: close" in lower:
            writer.close()
        else:
            self.idle.append((reader, writer, time.perf_counter()))
        if status == 200 and b'"errors"' not in body:
            return "ok", took
        try:
            code = orjson.loads(body)["errors"][0]["extensions"]["code"]
        except (ValueError, KeyError, IndexError):
            code = "no code"
        return f"{status} {code}", took

    async def _connection(self, now: float) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """An idle connection used within the last 4 s (the server closes them after 5 s idle: a request sent on
        one it is closing would fail), else a new one."""
        while self.idle:
            reader, writer, since = self.idle.pop()
            if now - since < 4.0:
                return reader, writer
            writer.close()
        self.opened += 1
        return await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        for _, writer, _ in self.idle:
            writer.close()
        self.idle.clear()


async def closed_loop(client: Client, clients: int, seconds: float) -> tuple[list[float], dict[str, int]]:
    latencies: list[float] = []
    outcomes: dict[str, int] = {}
    deadline = time.perf_counter() + seconds

    async def loop() -> None:
        while time.perf_counter() < deadline:
            outcome, took = await client.one()
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            if outcome == "ok":
                latencies.append(took)

    await asyncio.gather(*(loop() for _ in range(clients)))
    return latencies, outcomes


async def open_loop(
    client: Client, rate: float, seconds: float
) -> tuple[list[tuple[float, float]], dict[str, int], float]:
    """Requests sent at `rate` per second on schedule; the accepted ones' (sent at, latency), outcomes, the send
    lag's p99."""
    latencies: list[tuple[float, float]] = []
    outcomes: dict[str, int] = {}
    lags: list[float] = []
    tasks = []
    start = time.perf_counter()
    total = int(rate * seconds)

    async def fire(sent: float) -> None:
        outcome, took = await client.one()
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if outcome == "ok":
            latencies.append((sent, took))

    for number in range(total):
        due = start + number / rate
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        lags.append(max(0.0, time.perf_counter() - due))
        tasks.append(asyncio.create_task(fire(due - start)))
    await asyncio.gather(*tasks)
    return latencies, outcomes, percentile(lags, 0.99)


async def measure(url: str, token: str, clients: int, seconds: float, settle: float) -> dict[str, Any]:
    client = Client(url, token)
    await closed_loop(client, clients, 3)  # warm-up: caches, the chief's schema, the sealer's first pass
    client.close()  # each phase opens its connections: the server closes those idle for 5 s (keep-alive)
    unloaded, unloaded_outcomes = await closed_loop(client, 1, seconds)
    log(f"unloaded: {summary(unloaded)} {unloaded_outcomes}")
    started = time.perf_counter()
    client.close()
    sustained, sustained_outcomes = await closed_loop(client, clients, seconds)
    rate = len(sustained) / (time.perf_counter() - started)
    log(f"sustainable: {rate:.1f} requests/s {summary(sustained)} {sustained_outcomes}")
    client.close()
    accepted, loaded_outcomes, lag = await open_loop(client, 4 * rate, seconds)
    client.close()
    loaded = [took for _, took in accepted]
    settled = [took for sent, took in accepted if sent >= settle]
    log(f"4x ({4 * rate:.1f}/s): accepted {summary(loaded)} {loaded_outcomes}; send lag p99 {lag * 1000:.1f} ms")
    log(f"4x, sent after the first {settle:g} s: accepted {summary(settled)}")
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
            "connections_opened": client.opened,
        },
        "settled": {"after_s": settle, **summary(settled)},
        "p99_ratio": round(percentile(loaded, 0.99) / unloaded_p99, 2) if loaded else None,
        "p99_ratio_settled": round(percentile(settled, 0.99) / unloaded_p99, 2) if settled else None,
    }


def write(result: dict[str, Any], label: str | None) -> str:
    folder, name = (RESULTS, "overload") if label is None else (RESULTS / ".work", f"overload-{label}")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    unloaded, sustainable, overload = result["unloaded"], result["sustainable"], result["overload"]
    settled = result["settled"]
    lines = [
        "# Overload: accepted requests' latency at 4x the sustainable rate (bench/overload.py)",
        "",
        f"{result['date']}, {result['database']}, `server.py serve` one worker, {result['admission']}, "
        f"{result['seconds']:g} s per phase, {result['clients']} clients in the closed loop; the chief lists 20 "
        "patients (20 read events).",
        f"Machine: {result['cpus']} CPUs, load average {result['load_before']} before and {result['load_after']} "
        "after (other work on the machine shares it); the client (lean asyncio HTTP/1.1) runs on the same machine.",
        "",
        "| phase | rate (req/s) | answered ok | p50 ms | p90 ms | p99 ms | max ms | other outcomes |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for phase, row, rate in (
        ("unloaded (one at a time)", unloaded, "-"),
        ("sustainable (closed loop)", sustainable, sustainable["rate_per_s"]),
        ("4x sustainable (open loop)", overload, overload["rate_per_s"]),
        (f"4x, sent after the first {settled['after_s']:g} s", {**settled, "outcomes": {}}, overload["rate_per_s"]),
    ):
        others = ", ".join(f"{key}: {value}" for key, value in row["outcomes"].items() if key != "ok") or "none"
        lines.append(
            f"| {phase} | {rate} | {row['count']} | {row['p50_ms']} | {row['p90_ms']} | {row['p99_ms']} | "
            f"{row['max_ms']} | {others} |"
        )
    lines += [
        "",
        f"**p99 of accepted requests at 4x / unloaded p99: {result['p99_ratio']}x** (target: within 2x); "
        f"{result['p99_ratio_settled']}x for those sent after the first {settled['after_s']:g} s. "
        f"{overload['accepted_share'] * 100:.0f}% of the requests sent at 4x were accepted; the rest were answered "
        f"at once with 503 OVERLOADED. The client's own send lag (p99): {overload['send_lag_p99_ms']} ms.",
        "",
    ]
    path = folder / f"{name}.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return str(path.relative_to(RESULTS.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=("sqlite", "mysql"), default="sqlite")
    parser.add_argument("--in-flight", type=int, help="MAX_REQUESTS_IN_FLIGHT (default: the server's, 256)")
    parser.add_argument("--fixed", action="store_true", help="CONCURRENCY_ADAPTIVE=false: the fixed limit alone")
    parser.add_argument("--clients", type=int, default=8, help="clients of the closed loop (default 8)")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--settle", type=float, default=2.0, help="the p99 is also given without these first seconds")
    parser.add_argument("--port", type=int, help="the server's port (default: a free one, or BENCH_PORTS=ours=N)")
    parser.add_argument("--label", help="write results/.work/overload-LABEL.* instead of results/overload.*")
    args = parser.parse_args()
    prepare(args.db)
    load_before = [round(value, 2) for value in os.getloadavg()]
    overrides = {"CONCURRENCY_ADAPTIVE": "false" if args.fixed else "true"}
    if args.in_flight is not None:
        overrides["MAX_REQUESTS_IN_FLIGHT"] = str(args.in_flight)
    admission = ", ".join(f"{key}={value}" for key, value in overrides.items())
    with Ours(args.db, args.port or free_ports(["ours"])["ours"], **overrides) as server:
        token = server.token()
        result = asyncio.run(measure(server.url, token, args.clients, args.seconds, args.settle))
    result.update(
        date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        database={"sqlite": "SQLite", "mysql": "MariaDB"}[args.db],
        admission=admission,
        clients=args.clients,
        seconds=args.seconds,
        cpus=os.cpu_count(),
        load_before=load_before,
        load_after=[round(value, 2) for value in os.getloadavg()],
    )
    path = write(result, args.label)
    log(f"p99 ratio {result['p99_ratio']}x ({result['p99_ratio_settled']}x after {args.settle:g} s); {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

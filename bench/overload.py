"""Overload: at 4x the rate one instance sustains, the requests it accepts keep their latency (issue 19).

    python bench/overload.py                     # SQLite demo data, production defaults (adaptive concurrency on)
    python bench/overload.py --fixed --in-flight 8   # the fixed limit alone (CONCURRENCY_ADAPTIVE=false)
    python bench/overload.py --rounds 1 --label short   # results/.work/overload-short.*
    python bench/overload.py --env CONCURRENCY_OVERLOAD_TOLERANCE=2.0   # a setting of the server changed
    python bench/overload.py --db mysql --factor 1.5   # a milder overload: results/overload-mariadb-1.5x.*

`server.py serve` (one worker, production defaults but for what a one-account load test needs: bench/live.py) with
the chief listing 20 patients (20 read events per request). Rounds (--rounds, default 3) of three phases:
1. unloaded: one request at a time for --seconds: the unloaded p50/p99;
2. sustainable: closed loop, --clients clients (default 8), for --seconds: the rate it sustains (requests answered
   ok per second; with adaptive concurrency some of the 8 wait or are shed: the rate counts the answered ones);
3. overload: open loop at 4x that rate (--factor) for --seconds (each request sent on its schedule, whatever the
   answers): the accepted requests' p50/p99, how many were shed (503 OVERLOADED) or failed otherwise, and the
   accepted rate against the sustainable one (what shedding costs in throughput; at a mild overload, --factor 1.5,
   it matters most).
The ratio is p99 accepted under overload / p99 unloaded of the same round (target: within 2x); the figure is the
median of the rounds (the machine's speed drifts over minutes: a round compares phases seconds apart), also given
for the requests sent after the first --settle seconds of each overload (default 2: the limit adapting) and with
the rounds pooled. The client runs on the same machine: a lean asyncio HTTP/1.1 client on uvloop and keep-alive
connections (an httpx open loop at a few hundred requests a second took more CPU than the server it loaded); the
CPU each phase took (server, client, machine) is reported beside it. --pin puts the server on CPU 0 and the client
on CPU 1 (as a client on another machine would not take the server's CPU); --isolate leaves CPU 0 to the server's
process alone and puts its audit sealer, the client and (--db mysql) a mariadbd of the bench's own on CPU 1 (results
named overload-*-isolated). Each phase also gives the hypervisor's steal (these machines are shared guests).
Results: bench/results/overload-sqlite and overload-mariadb .json and .md (--label: results/.work/), with the
machine's load average before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import common  # type: ignore[import-not-found]
import httpx
import orjson
import uvloop
from common import RESULTS, free_ports  # type: ignore[import-not-found]
from live import CLK_TCK, PATIENTS_QUERY, Ours, children, log, prepare  # type: ignore[import-not-found]
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # deploy/ (own_database), as tests import it
from deploy.cluster import MariaNode  # type: ignore[import-not-found]


class CpuMeter:
    """CPU seconds used by the server process, by its audit sealer (its one child process), by this client and by the
    whole machine (all cores) since the last reading, with the wall time: where the time of a phase went; and the
    time the hypervisor ran another guest while this machine had work (steal, all cores): a shared host's share."""

    def __init__(self, server: Ours) -> None:
        self.server = server
        self.last = self._read()

    def _read(self) -> tuple[float, float, float, float, float, float]:
        used = self.server.cpu()  # bench/live.py: /proc/<pid>/stat of the server and of its sealer
        with open("/proc/stat") as handle:
            cpu = [int(value) for value in handle.readline().split()[1:]]
        machine = (sum(cpu[:8]) - cpu[3] - cpu[4]) / CLK_TCK  # all but idle and iowait
        steal = cpu[7] / CLK_TCK
        return used["server"], used["sealer"], time.process_time(), machine, steal, time.perf_counter()

    def phase(self) -> dict[str, float]:
        now = self._read()
        used = (after - before for after, before in zip(now, self.last, strict=True))
        server, sealer, client, machine, steal, wall = used
        self.last = now
        return {
            "server_cpu_share": round(server / wall, 2),
            "sealer_cpu_share": round(sealer / wall, 2),
            "client_cpu_share": round(client / wall, 2),
            "machine_cpu_share": round(machine / wall, 2),
            "steal_share": round(steal / wall, 3),
        }


def shed_at(url: str) -> dict[str, int]:
    """The server's sheds so far by where (followup_requests_shed in /metrics, read from loopback)."""
    families = text_string_to_metric_families(httpx.get(url + "/metrics", timeout=10).text)
    shed = next(family for family in families if family.name == "followup_requests_shed")
    return {sample.labels["at"]: int(sample.value) for sample in shed.samples if sample.name.endswith("_total")}


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


# Open before the 4x phase; more are opened (and counted) if it needs them. Enough for a stall of 0.1 s at 2,500/s:
# with 64, phases at 1,500-2,200/s opened 9-111 more mid-phase (a connect costs both processes far more than a
# request, and the requests that wait for one count it in their latency).
PREPARED_CONNECTIONS = 256
Done = Callable[[str, float], None]  # (outcome, latency in seconds)


def outcome(status: int, body: bytes) -> str:
    if status == 200 and b'"errors"' not in body:
        return "ok"
    try:
        code = orjson.loads(body)["errors"][0]["extensions"]["code"]
    except (ValueError, KeyError, IndexError, TypeError):
        code = "no code"
    return f"{status} {code}"


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time. The answer's time is taken in `data_received`,
    when the loop reads the socket, not when a task waiting for it next runs: the client's own scheduling, busy at a
    thousand requests a second, stays out of the latency."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.sent = 0.0
        self.done: Done | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, request: bytes, started: float, done: Done) -> None:
        assert self.transport is not None
        self.sent, self.done = started, done
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        arrived = time.perf_counter()
        buffer = self.buffer
        buffer += data
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(buffer[: end + 4]).lower()
        at = head.index(b"content-length:") + 15
        length = int(head[at : head.index(b"\r\n", at)])
        if len(buffer) < end + 4 + length:
            return
        body = bytes(buffer[end + 4 : end + 4 + length])
        del buffer[: end + 4 + length]
        done, self.done = self.done, None
        if b"connection: close" in head:
            self.closed = True
            assert self.transport is not None
            self.transport.close()
        else:
            self.client.idle.append(self)
        if done is not None:
            done(outcome(int(head[9:12]), body), arrived - self.sent)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        done, self.done = self.done, None
        if done is not None:
            done("ConnectionLost", time.perf_counter() - self.sent)


class Client:
    """A lean HTTP/1.1 client (asyncio protocols on uvloop, keep-alive connections, one request per connection at a
    time, the request's bytes built once, no task per request): an open loop from httpx costs the machine more CPU
    than the server it loads. A request finding no idle connection opens one (its time counts in its latency, as for
    a real client)."""

    def __init__(self, url: str, token: str) -> None:
        address = url.removeprefix("http://")
        self.host, port = address.split(":")
        self.port = int(port)
        body = orjson.dumps({"query": PATIENTS_QUERY})
        self.request = (
            f"POST /graphql HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        self.idle: list[Connection] = []
        self.opened = 0
        self._opening: set[asyncio.Task[None]] = set()

    def send(self, done: Done) -> None:
        """Send the request now, on an idle connection or a new one; `done` is called with its outcome."""
        started = time.perf_counter()
        while self.idle:
            connection = self.idle.pop()
            if not connection.closed:
                connection.send(self.request, started, done)
                return
        task = asyncio.ensure_future(self._open(started, done))
        self._opening.add(task)
        task.add_done_callback(self._opening.discard)

    async def _open(self, started: float, done: Done) -> None:
        try:
            _, connection = await asyncio.get_running_loop().create_connection(
                lambda: Connection(self), self.host, self.port
            )
        except OSError as error:
            done(type(error).__name__, time.perf_counter() - started)
            return
        self.opened += 1
        connection.send(self.request, started, done)

    async def prepare(self, count: int) -> None:
        """Open `count` connections before a phase (as wrk does): the phase measures requests, not the set-up of
        the connections a steady client already holds."""
        loop = asyncio.get_running_loop()
        opened = await asyncio.gather(
            *(loop.create_connection(lambda: Connection(self), self.host, self.port) for _ in range(count))
        )
        self.idle.extend(connection for _, connection in opened)

    async def one(self) -> tuple[str, float]:
        answered: asyncio.Future[tuple[str, float]] = asyncio.get_running_loop().create_future()
        self.send(lambda outcome, took: answered.set_result((outcome, took)))
        return await answered

    def close(self) -> None:
        for connection in self.idle:
            if connection.transport is not None:
                connection.transport.close()
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
    """Requests sent at `rate` per second on schedule (the client wakes at the next one's time, 1 ms after the last
    wake at the soonest, and sends every one due); the accepted ones' (due at, latency), outcomes, the send lag's
    p99."""
    latencies: list[tuple[float, float]] = []
    outcomes: dict[str, int] = {}
    lags: list[float] = []
    start = time.perf_counter()
    total = int(rate * seconds)
    pending = total
    finished = asyncio.get_running_loop().create_future()

    def recorder(due: float) -> Done:
        def record(outcome: str, took: float) -> None:
            nonlocal pending
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            if outcome == "ok":
                latencies.append((due, took))
            pending -= 1
            if pending == 0:
                finished.set_result(None)

        return record

    number = 0
    while number < total:
        now = time.perf_counter()
        while number < total and start + number / rate <= now:
            due = start + number / rate
            lags.append(now - due)
            client.send(recorder(due - start))
            number += 1
        if number < total:
            # At least 1 ms: the loop's timers count whole milliseconds, and a shorter sleep returns at once (uvloop
            # rounds it to 0): the client spun between sends, 0.6 of a CPU at 2,000/s (0.26 at 1,400/s).
            await asyncio.sleep(max(0.001, start + number / rate - time.perf_counter()))
    await finished
    return latencies, outcomes, percentile(lags, 0.99)


async def one_round(
    client: Client, clients: int, seconds: float, settle: float, meter: CpuMeter, factor: float
) -> dict[str, Any]:
    """Unloaded, sustainable, then `factor` (4) times that rate: one round of the three phases."""
    client.close()  # each phase opens its connections: the server closes those idle for HTTP_KEEP_ALIVE_SECONDS
    meter.phase()
    unloaded, unloaded_outcomes = await closed_loop(client, 1, seconds)
    unloaded_cpu = meter.phase()
    log(f"unloaded: {summary(unloaded)} {unloaded_outcomes} {unloaded_cpu}")
    started = time.perf_counter()
    client.close()
    sustained, sustained_outcomes = await closed_loop(client, clients, seconds)
    rate = len(sustained) / (time.perf_counter() - started)
    sustained_cpu = meter.phase()
    log(f"sustainable: {rate:.1f} requests/s {summary(sustained)} {sustained_outcomes} {sustained_cpu}")
    client.close()
    await client.prepare(PREPARED_CONNECTIONS)
    shed_before = shed_at(meter.server.url)
    # The kernel completes a connect before the server's loop takes it: the server sets up the 256 connections after
    # prepare() returns, and the phase's first requests waited behind that (p50 8-15 ms in its first 0.25 s; 5-10 ms
    # with this wait). A steady client's connections are open already: their set-up is not the phase's.
    await asyncio.sleep(0.5)
    meter.phase()
    opened = client.opened
    accepted, loaded_outcomes, lag = await open_loop(client, factor * rate, seconds)
    loaded_cpu = meter.phase()
    shed = {at: count - shed_before.get(at, 0) for at, count in shed_at(meter.server.url).items()}
    loaded = [took for _, took in accepted]
    settled = [took for sent, took in accepted if sent >= settle]
    log(
        f"{factor:g}x ({factor * rate:.1f}/s): accepted {summary(loaded)} {loaded_outcomes} {loaded_cpu}; "
        f"send lag p99 {lag * 1000:.1f} ms; shed {shed}"
    )
    unloaded_p99 = percentile(unloaded, 0.99)
    return {
        "unloaded": {**summary(unloaded), "outcomes": unloaded_outcomes, **unloaded_cpu},
        "sustainable": {
            "rate_per_s": round(rate, 1),
            **summary(sustained),
            "outcomes": sustained_outcomes,
            **sustained_cpu,
        },
        "overload": {
            "rate_per_s": round(factor * rate, 1),
            "accepted_per_s": round(len(loaded) / seconds, 1),
            # what the overloaded process still served, against what it sustained in the closed loop just before
            "accepted_of_sustainable": round(len(loaded) / seconds / rate, 2) if rate else None,
            **summary(loaded),
            "outcomes": loaded_outcomes,
            **loaded_cpu,
            "accepted_share": round(len(loaded) / max(1, sum(loaded_outcomes.values())), 3),
            "send_lag_p99_ms": round(lag * 1000, 2),
            "connections_opened": client.opened - opened,
            "shed_at": shed,  # the server's own count (/metrics): by the HTTP protocol (door) or by the app
        },
        "settled": {"after_s": settle, **summary(settled)},
        "p99_ratio": round(percentile(loaded, 0.99) / unloaded_p99, 2) if loaded else None,
        "p99_ratio_settled": round(percentile(settled, 0.99) / unloaded_p99, 2) if settled else None,
        "_unloaded": unloaded,
        "_loaded": loaded,
    }


async def measure(
    url: str, token: str, clients: int, seconds: float, settle: float, meter: CpuMeter, rounds: int, factor: float
) -> dict[str, Any]:
    """Rounds of the three phases, one after the other: the machine's speed drifts over minutes (other work shares
    it), so each round's ratio compares phases a few seconds apart, and the median of the rounds is the figure."""
    client = Client(url, token)
    await closed_loop(client, clients, 3)  # warm-up: caches, the chief's schema, the sealer's first pass
    results = []
    for number in range(rounds):
        log(f"round {number + 1} of {rounds}")
        results.append(await one_round(client, clients, seconds, settle, meter, factor))
    client.close()
    unloaded = [took for result in results for took in result.pop("_unloaded")]
    loaded = [took for result in results for took in result.pop("_loaded")]
    ratios = [result["p99_ratio"] for result in results if result["p99_ratio"] is not None]
    settled = [result["p99_ratio_settled"] for result in results if result["p99_ratio_settled"] is not None]
    return {
        "rounds": results,
        "p99_ratio": round(statistics.median(ratios), 2) if ratios else None,
        "p99_ratio_settled": round(statistics.median(settled), 2) if settled else None,
        "p99_ratio_pooled": round(percentile(loaded, 0.99) / percentile(unloaded, 0.99), 2) if loaded else None,
    }


def placement(result: dict[str, Any]) -> str:
    if result.get("isolated"):
        database = ", with a mariadbd of the bench's own" if result["database"] == "MariaDB" else ""
        return f", on CPU 1 with the audit sealer{database}; the server's process alone on CPU 0 (--isolate)"
    return ", pinned to CPU 1 and the server to CPU 0" if result.get("pinned") else ""


def write(result: dict[str, Any], label: str | None) -> str:
    database = {"SQLite": "sqlite", "MariaDB": "mariadb"}[result["database"]]
    factor = "" if result["factor"] == 4 else f"-{result['factor']:g}x"  # overload-mariadb-1.5x: --factor 1.5
    isolated = "-isolated" if result.get("isolated") else ""
    folder, name = (RESULTS, f"overload-{database}{factor}{isolated}")
    if label is not None:
        folder, name = RESULTS / ".work", f"overload-{label}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    settle = result["rounds"][0]["settled"]["after_s"]
    times = f"{result['factor']:g}x"
    lines = [
        f"# Overload: accepted requests' latency at {times} the sustainable rate (bench/overload.py)",
        "",
        f"{result['date']}, {result['database']}, `server.py serve` one worker, {result['admission']}, "
        f"{len(result['rounds'])} rounds of three phases, {result['seconds']:g} s each, {result['clients']} clients "
        "in the closed loop; the chief lists 20 patients (20 read events).",
        f"Machine: {result['cpus']} CPUs, load average {result['load_before']} before and {result['load_after']} "
        f"after (other work on the machine shares it); the client (lean asyncio HTTP/1.1 on uvloop) runs on the "
        f"same machine{placement(result)}. CPU: the "
        "share of one CPU used by the server process (all its threads), by its audit sealer's process, by the "
        "client, and by the whole machine; steal: the share of one CPU the hypervisor gave another guest while this "
        "machine had work.",
        "",
        "| round | phase | rate (req/s) | answered ok | p50 ms | p90 ms | p99 ms | max ms | CPU server / sealer / "
        "client / machine | steal | other outcomes |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    for number, one in enumerate(result["rounds"], 1):
        unloaded, sustainable, overload, settled = one["unloaded"], one["sustainable"], one["overload"], one["settled"]
        for phase, row, rate in (
            ("unloaded (one at a time)", unloaded, "-"),
            ("sustainable (closed loop)", sustainable, sustainable["rate_per_s"]),
            (f"{times} sustainable (open loop)", overload, overload["rate_per_s"]),
            (f"{times}, sent after its first {settle:g} s", {**settled, "outcomes": {}}, overload["rate_per_s"]),
        ):
            others = ", ".join(f"{key}: {value}" for key, value in row["outcomes"].items() if key != "ok") or "none"
            if row.get("shed_at"):  # the server's count of where it shed them
                where = ", ".join(f"at the {at}: {count}" for at, count in sorted(row["shed_at"].items()))
                others += f" ({where})"
            cpu = (
                f"{row['server_cpu_share']} / {row['sealer_cpu_share']} / {row['client_cpu_share']} / "
                f"{row['machine_cpu_share']}"
                if "server_cpu_share" in row
                else ""
            )
            lines.append(
                f"| {number} | {phase} | {rate} | {row['count']} | {row['p50_ms']} | {row['p90_ms']} | "
                f"{row['p99_ms']} | {row['max_ms']} | {cpu} | {row.get('steal_share', '')} | {others} |"
            )
    per_round = ", ".join(
        f"{one['p99_ratio']}x ({one['p99_ratio_settled']}x after {settle:g} s; "
        f"{one['overload']['accepted_share'] * 100:.0f}% accepted, {one['overload']['accepted_per_s']}/s: "
        f"{one['overload']['accepted_of_sustainable']} of the sustainable rate)"
        for one in result["rounds"]
    )
    lines += [
        "",
        f"**p99 of accepted requests at {times} / unloaded p99, median of the rounds: {result['p99_ratio']}x** "
        f"(target: within 2x); {result['p99_ratio_settled']}x for those sent after the first {settle:g} s of each "
        f"{times} phase; "
        f"{result['p99_ratio_pooled']}x with every round's requests pooled. Per round: {per_round}. The requests not "
        "accepted were answered at once with 503 OVERLOADED.",
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
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per phase (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the three phases (default 3)")
    parser.add_argument("--settle", type=float, default=2.0, help="the p99 is also given without these first seconds")
    parser.add_argument("--port", type=int, help="the server's port (default: a free one, or BENCH_PORTS=ours=N)")
    parser.add_argument("--label", help="write results/.work/overload-LABEL.* instead of results/overload-DB.*")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE: a setting of the server")
    parser.add_argument("--pin", action="store_true", help="the server on CPU 0, this client on CPU 1")
    parser.add_argument("--factor", type=float, default=4.0, help="the open loop at this times the sustainable rate")
    parser.add_argument(
        "--isolate",
        action="store_true",
        help="the server's process alone on CPU 0; its audit sealer, this client and (--db mysql) a mariadbd of "
        "the bench's own on CPU 1: as near as two cores come to a client and a database on other machines",
    )
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        if args.isolate:
            args.pin = True
            if args.db == "mysql":
                stack.enter_context(own_database())
        return run(args)


@contextlib.contextmanager
def own_database() -> Iterator[None]:
    """A mariadbd of the bench's own on CPU 1 (deploy/cluster.py's single server, durable as the machine's: every
    commit flushed), reached as root over loopback; the bench's MariaDB settings point at it meanwhile."""
    state = Path(tempfile.mkdtemp(prefix="overload-db-"))
    state.chmod(0o755)
    node = MariaNode("overload-db", state / "mariadbd.log", datadir=state / "data", flush_at_commit=1, cpus="1")
    node.initialise()
    try:
        node.start()
        node.sql("CREATE USER 'root'@'127.0.0.1'; GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION")
        common.MYSQL_PORT = node.port  # read at each call by common.mysql_kwargs (bench/live.py's database_url)
        common.MYSQL_ROOT_PASSWORD = ""
        log(f"own mariadbd on port {node.port}, CPU 1 ({state})")
        yield
    finally:
        node.stop(timeout=60)
        shutil.rmtree(state, ignore_errors=True)


def run(args: argparse.Namespace) -> int:
    prepare(args.db)
    load_before = [round(value, 2) for value in os.getloadavg()]
    overrides = {"CONCURRENCY_ADAPTIVE": "false" if args.fixed else "true"}
    if args.in_flight is not None:
        overrides["MAX_REQUESTS_IN_FLIGHT"] = str(args.in_flight)
    for item in args.env:
        key, _, value = item.partition("=")
        overrides[key] = value
    admission = ", ".join(f"{key}={value}" for key, value in overrides.items())
    if args.pin:
        os.sched_setaffinity(0, {0})  # the server started below inherits it
    # /metrics from loopback (where it shed: read between phases); an access rule, nothing the requests pay for
    server_overrides = {**overrides, "METRICS_NETWORKS": "127.0.0.1/32"}
    with Ours(args.db, args.port or free_ports(["ours"])["ours"], **server_overrides) as server:
        if args.pin:
            os.sched_setaffinity(0, {1})
        token = server.token()
        if args.isolate:  # the sealer, started with the server, runs where the client and the database do
            sealers = children(server.pid)
            for pid in sealers:
                os.sched_setaffinity(pid, {1})
            log(f"server {server.pid} alone on CPU 0; sealer {sealers} on CPU 1")
        meter = CpuMeter(server)
        # uvloop (as the server's): the client's own CPU, on the same machine, takes less from the server
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            measured = measure(
                server.url, token, args.clients, args.seconds, args.settle, meter, args.rounds, args.factor
            )
            result = runner.run(measured)
    result.update(
        date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        database={"sqlite": "SQLite", "mysql": "MariaDB"}[args.db],
        admission=admission,
        clients=args.clients,
        seconds=args.seconds,
        cpus=os.cpu_count(),
        load_before=load_before,
        load_after=[round(value, 2) for value in os.getloadavg()],
        pinned=args.pin,
        isolated=args.isolate,
        factor=args.factor,
    )
    path = write(result, args.label)
    log(
        f"p99 ratio {result['p99_ratio']}x ({result['p99_ratio_settled']}x after {args.settle:g} s, "
        f"{result['p99_ratio_pooled']}x pooled); {path}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

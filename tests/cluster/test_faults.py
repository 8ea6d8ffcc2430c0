"""Faults under a steady mix of reads and writes (issue 19), in turn: a Galera node killed (SIGKILL) and restarted,
Redis stopped for 30 seconds, an app instance killed (SIGKILL) and restarted, the single-node MariaDB of the default
deployment restarted, the connection pool exhausted. Throughout, every request ends with data or an error with a
code within REQUEST_TIMEOUT (no hang, no status without a code), every write answered ok is in the database and
every write answered with an error is not (a write whose outcome the client cannot know, `inDoubt` or cut off at
the balancer, is counted apart and looked up), and the service recovers within seconds of the fault ending.
Prints the counts and writes them to tests/results/cluster-<date>.md."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from core.db import Database
from deploy.cluster import DEMO_PASSWORD, PYTHON, ROOT, App, Cluster, MariaNode, app_environment
from models.organisation import Position
from tests.cluster.conftest import Api
from tests.cluster.load import Load, Outcome, errors_stretch, recovery
from tests.cluster.test_across_instances import minute_job_firings

pytestmark = pytest.mark.cluster

RESULTS = ROOT / "tests" / "results"
RECOVERY_LIMIT = 15.0  # seconds after a fault ends by which requests succeed again


async def _in_thread(action: Callable[[], object]) -> None:
    await asyncio.to_thread(action)


class Faults:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        # name, fault start, fault end, recovery after the end, longest stretch of errors, answers
        self.phases: list[tuple[str, float, float, float, float, Counter[str]]] = []

    async def phase(
        self,
        name: str,
        load: Load,
        fault: Callable[[], Awaitable[None]],
        heal: Callable[[], Awaitable[None]],
        *,
        settle: float = 6.0,
    ) -> None:
        await asyncio.sleep(3)  # steady before
        began = time.monotonic()
        seen = len(load.outcomes)
        await fault()
        await heal()
        ended = time.monotonic()
        await asyncio.sleep(settle)  # and after: recovered?
        window = load.outcomes[seen:]
        took = recovery(window, ended, time.monotonic())
        stretch = errors_stretch(window)
        counts = Counter(o.result for o in window)
        self.phases.append((name, began, ended, took, stretch, counts))
        print(
            f"[faults] {name}: fault {ended - began:.1f} s, errors over {stretch:.1f} s, recovered {took:.1f} s after"
            f" its end, answers {dict(counts)}"
        )


async def _kept(db: Database, markers: list[str]) -> set[str]:
    kept: set[str] = set()
    async with db.session() as session:
        for start in range(0, len(markers), 500):
            chunk = markers[start : start + 500]
            rows = await session.execute(select(Position.name).where(Position.name.in_(chunk)))  # type: ignore[attr-defined]
            kept.update(rows.scalars().all())
    return kept


async def _single_node(cluster: Cluster) -> tuple[MariaNode, App]:
    """The default deployment beside the cluster: one mariadbd of ours and instance C on it (small pool, short
    pool wait: the pool-exhaustion phase)."""
    node = MariaNode("single", cluster.state / "single.log", datadir=cluster.state / "single")
    app = App("appC", cluster.state / "appC.log")

    def start() -> None:
        node.initialise()
        node.start()
        node.create_database()
        env = app_environment(
            node.url,
            cluster.redis.url,
            DATABASE_POOL_SIZE="2",
            DATABASE_POOL_TIMEOUT_SECONDS="2",
        )
        for command in (["migrate"], ["create-admin", "admin", "--password-env", "ADMIN_PASSWORD"]):
            subprocess.run(
                [PYTHON, "server.py", *command],
                env={**env, "ADMIN_PASSWORD": DEMO_PASSWORD},
                cwd=ROOT,
                check=True,
                stdout=subprocess.DEVNULL,
            )
        app.env = env
        app.start()

    await asyncio.to_thread(start)
    return node, app


def _lost_and_phantom(outcomes: list[Outcome], kept: set[str]) -> tuple[list[str], list[str], list[str]]:
    writes = [o for o in outcomes if o.kind == "write"]
    lost = [o.marker for o in writes if o.ok and o.marker not in kept]
    phantom = [o.marker for o in writes if not o.ok and not o.in_doubt and o.marker in kept]
    in_doubt_kept = [o.marker for o in writes if not o.ok and o.in_doubt and o.marker in kept]
    return lost, phantom, in_doubt_kept


async def test_faults_under_a_steady_mix(cluster: Cluster) -> None:
    balancer = Api(cluster.url)
    token = await balancer.token("admin")
    await balancer.close()
    load = Load(cluster.url, token)
    faults = Faults(cluster)
    running = asyncio.create_task(load.run())
    node = cluster.nodes[1]  # instance B's node
    app_a = cluster.apps[0]
    try:

        async def kill_node() -> None:
            node.kill()
            await asyncio.sleep(5)

        await faults.phase(
            "galera node killed (SIGKILL) and restarted", load, kill_node, lambda: _in_thread(node.start)
        )

        async def stop_redis() -> None:
            cluster.redis.stop()
            await asyncio.sleep(30)

        await faults.phase("redis stopped for 30 s", load, stop_redis, lambda: _in_thread(cluster.redis.start))

        async def kill_app() -> None:
            app_a.kill()

        async def nothing() -> None:
            return None

        await faults.phase("app instance A killed (SIGKILL)", load, kill_app, nothing)
        # what the instance started (its audit sealer's process, holding database connections) ends with it
        for _ in range(100):
            if not app_a.survivors():
                break
            await asyncio.sleep(0.1)
        assert not app_a.survivors(), f"instance A's children outlived it: {app_a.survivors()}"
        print("[faults] instance A killed: none of its processes outlived it")
        await _in_thread(app_a.start)  # back for what follows
        print("[faults] instance A restarted")

        single, app_c = await _single_node(cluster)
        admin_c = Api(app_c.url)
        load.url, load.token, load.target = app_c.url, await admin_c.token("admin"), "single"
        await admin_c.close()

        async def restart_single() -> None:
            await _in_thread(single.stop)

        await faults.phase("single-node MariaDB restarted", load, restart_single, lambda: _in_thread(single.start))

        async def exhaust_pool() -> None:
            burst = Load(app_c.url, load.token, target="single", workers=150, pause=0)
            task = asyncio.create_task(burst.run())
            await asyncio.sleep(6)
            burst.stop()
            await task
            load.outcomes.extend(burst.outcomes)
            print(f"[faults] pool exhaustion burst: {dict(burst.counts())}")

        await faults.phase("connection pool exhausted (150 clients on a pool of 4)", load, exhaust_pool, nothing)
    finally:
        load.stop()
        await running

    galera_db = Database(cluster.nodes[2].url, pool_size=2)
    single_db = Database(single.url, pool_size=2)
    try:
        kept = await _kept(galera_db, [o.marker for o in load.outcomes if o.target == "galera"])
        kept |= await _kept(single_db, [o.marker for o in load.outcomes if o.target == "single"])
    finally:
        await galera_db.dispose()
        await single_db.dispose()
    lost, phantom, in_doubt_kept = _lost_and_phantom(load.outcomes, kept)
    report = _report(load.outcomes, faults, lost, phantom, in_doubt_kept)
    print(report)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"cluster-{datetime.now(UTC).date().isoformat()}.md").write_text(report)
    app_c.stop()
    single.stop()

    assert not [o for o in load.outcomes if o.result == "TIMEOUT"], "a request hung"
    assert not [o for o in load.outcomes if o.result.startswith("HTTP ")], "an answer without a code"
    assert lost == [] and phantom == []
    assert max(phase[3] for phase in faults.phases) <= RECOVERY_LIMIT


def _report(
    outcomes: list[Outcome], faults: Faults, lost: list[str], phantom: list[str], in_doubt_kept: list[str]
) -> str:
    counts = Counter(o.result for o in outcomes)
    ok = counts.pop("ok", 0)
    writes = [o for o in outcomes if o.kind == "write"]
    in_doubt = [o for o in writes if not o.ok and o.in_doubt]
    lines = [
        f"# Cluster fault test, {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        "",
        "`make cluster-test` (tests/cluster/test_faults.py): a steady mix of reads and writes (1 in 3 a",
        "`createPosition` with a unique name) through nginx to instances A (Galera node 1) and B (node 2), then to",
        "instance C on a single-node MariaDB; on this 2-core machine, shared.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| requests sent | {len(outcomes)} |",
        f"| answered ok | {ok} |",
        *(f"| answered `{code}` | {number} |" for code, number in sorted(counts.items())),
        f"| writes sent / ok | {len(writes)} / {sum(1 for o in writes if o.ok)} |",
        f"| lost (ok but not in the database; must be 0) | {len(lost)} |",
        f"| phantom (error but in the database; must be 0) | {len(phantom)} |",
        f"| in doubt (`inDoubt`, or cut off at the balancer): kept / not kept | {len(in_doubt_kept)} / "
        f"{len(in_doubt) - len(in_doubt_kept)} |",
        f"| hung (no answer within 20 s; must be 0) | {counts.get('TIMEOUT', 0)} |",
        f"| longest recovery after a fault ended | {max(phase[3] for phase in faults.phases):.1f} s |",
        "",
        "Errors over: from the first to the last request answered with an error around the fault (while it lasted,",
        "the failing part answered `UNAVAILABLE` at once; nginx sent requests an instance answered 503 on to the",
        "other one). Recovered: how long after the fault ended (the component back) requests still failed.",
        "",
        "| fault | lasted | errors over | recovered after its end | answers during its window |",
        "|---|---|---|---|---|",
    ]
    for name, began, ended, took, stretch, phase_counts in faults.phases:
        answers = ", ".join(f"{code} {number}" for code, number in sorted(phase_counts.items()))
        lines.append(f"| {name} | {ended - began:.1f} s | {stretch:.1f} s | {took:.1f} s | {answers} |")
    return "\n".join(lines) + "\n"


async def test_the_audit_chain_verifies_after_the_faults(cluster: Cluster) -> None:
    env = app_environment(cluster.nodes[0].url, cluster.redis.url)
    done = subprocess.run(
        [PYTHON, "server.py", "verify-audit"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    print(f"[faults] verify-audit: {done.stdout.strip()[-300:]}")
    assert done.returncode == 0, done.stdout + done.stderr


async def test_the_minute_job_fired_once_per_minute(cluster: Cluster) -> None:
    since = cluster.marks.get("minute_job_since")
    if since is None:
        pytest.skip("the job is created by tests/cluster/test_across_instances.py")
    db = Database(cluster.nodes[2].url, pool_size=2)
    try:
        runs, firings, instances = await minute_job_firings(db, since)
    finally:
        await db.dispose()
    minutes = (datetime.now(UTC) - since).total_seconds() / 60  # type: ignore[operator]
    print(f"[faults] every-minute job: {runs} runs of {firings} firings in {minutes:.1f} min, by {instances}")
    assert runs == firings >= 1
    assert firings <= int(minutes) + 1

"""Where our server spends a request: the SQL it sends and a CPU profile, in process (no network).

    python bench/profile_ours.py --patients 10000 --query Q2 [--repeat 200] [--statements] [--profile]

Builds the app with `server.create_app` against the benchmark database, drives it through httpx's ASGI
transport (the same endpoint, middleware and lifespan as `server.py serve`), lists every statement and
transaction event of one request (--statements) and prints a cProfile of `--repeat` requests sorted by
cumulative and own time (--profile).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
from typing import Any

from common import BENCH_PASSWORD, DB_USERS, body, database_url, encode_id  # type: ignore[import-not-found]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--query", default="Q2")
    parser.add_argument("--first", type=int)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--statements", action="store_true")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--pyinstrument", action="store_true", help="a sampling profile (needs pyinstrument)")
    parser.add_argument("--time", action="store_true", help="mean wall ms of --repeat sequential requests")
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument("--pick", type=int, default=0, help="Q5: which in-scope follow-up (runs side by side differ)")
    parser.add_argument("--callers", help="with --profile: also print who calls functions matching this regex")
    args = parser.parse_args()
    os.environ.update(
        DATABASE_URL=database_url(args.patients, "ours", driver=os.environ.get("BENCH_DRIVER", "asyncmy")),
        RATE_LIMIT_ENABLED="false",
        LOG_LEVEL="WARNING",
    )
    assert DB_USERS["ours"]
    import httpx
    from sqlalchemy import event

    from core.settings import get_settings
    from server import create_app

    app = create_app(get_settings())
    services = app.state.services
    log: list[str] = []

    def _sql(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        log.append(" ".join(statement.split())[:220])

    # Both pools: transactions (engine) and the requests' autocommit connections (read_engine).
    engines = {"tx": services.db.engine, "request": getattr(services.db, "read_engine", None)}
    for label, async_engine in engines.items():
        if async_engine is None:  # an older tree, for an A/B run
            continue
        engine = async_engine.sync_engine
        event.listen(engine, "before_cursor_execute", _sql)
        for name in ("begin", "commit", "rollback"):
            event.listen(engine, name, lambda *_a, _n=name, _l=label: log.append(f"<{_l} {_n}>"))
        event.listen(engine.pool, "checkout", lambda *_a, _l=label: log.append(f"<{_l} pool checkout>"))
        event.listen(engine.pool, "reset", lambda *_a, _l=label, **_k: log.append(f"<{_l} pool reset>"))

    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5555))
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        login = await client.post(
            "/graphql",
            json={
                "query": 'mutation($p: String!) { login(username: "chief", password: $p) { accessToken } }',
                "variables": {"p": BENCH_PASSWORD},
            },
        )
        token = login.json()["data"]["login"]["accessToken"]
        headers = {"Authorization": f"Bearer {token}"}
        variables: dict[str, Any] | None = None
        if args.query == "Q1":
            variables = {"id": encode_id("Patient", 5)}
        elif args.query == "Q5":  # a follow-up in the chief's reach (scope_ids, as run.py picks them)
            from run import scope_ids  # type: ignore[import-not-found]

            variables = {"id": encode_id("FollowUp", scope_ids(args.patients)["scheduled"][args.pick])}
        elif args.query in ("Q2", "Q3", "Q4"):
            variables = {"first": args.first or {"Q2": 50}.get(args.query, 20)}
        payload = body(args.query, variables)
        for _ in range(3):
            response = await client.post("/graphql", json=payload, headers=headers)
            assert response.status_code == 200 and "errors" not in response.json(), response.text[:300]
        if args.statements:
            log.clear()
            await client.post("/graphql", json=payload, headers=headers)
            print(f"--- one {args.query} request: {sum(not s.startswith('<') for s in log)} statements")
            for line in log:
                print("  ", line)
        if args.time:
            import time

            started, cpu = time.perf_counter(), time.process_time()
            for _ in range(args.repeat):
                await client.post("/graphql", json=payload, headers=headers)
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            print(
                f"--- {args.query}: {1000 * elapsed / args.repeat:.2f} ms wall, {1000 * cpu / args.repeat:.2f} ms CPU"
                " per request (in process, sequential; CPU includes the client's)"
            )
        if args.pyinstrument:  # a sampling profile (pip install pyinstrument; not a dependency)
            from pyinstrument import Profiler

            sampler = Profiler(interval=0.0002, async_mode="disabled")
            sampler.start()
            for _ in range(args.repeat):
                await client.post("/graphql", json=payload, headers=headers)
            sampler.stop()
            every_frame = bool(os.environ.get("PYI_ALL"))  # library frames too
            print(sampler.output_text(unicode=False, color=False, show_all=every_frame, short_mode=False))
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(args.repeat):
                await client.post("/graphql", json=payload, headers=headers)
            profiler.disable()
            for key in ("cumulative", "tottime"):
                out = io.StringIO()
                stats = pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(key)
                stats.print_stats(args.top)
                print(f"--- {args.repeat} x {args.query}, sorted by {key}")
                print("\n".join(out.getvalue().splitlines()[6:]))
            if args.callers:
                out = io.StringIO()
                pstats.Stats(profiler, stream=out).strip_dirs().print_callers(args.callers)
                print(out.getvalue())


if __name__ == "__main__":
    asyncio.run(main())

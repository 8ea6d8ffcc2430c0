"""The multi-instance deployment on loopback: a three-node MariaDB Galera cluster, Redis, two app instances and
nginx in front of them (HTTP and websockets), every process this script's own, on free ports, with its state
in one directory. `make cluster` runs `python deploy/cluster.py up` (prints the URL, stops everything on Ctrl-C);
tests/test_cluster_galera.py starts the same pieces through `Cluster` and kills and restarts them one by one.

Nothing here touches the machine's own MariaDB (3306) or Redis (6379): each mariadbd runs with --no-defaults, its
own data directory, socket and ports (SQL, Galera replication, IST, SST by rsync).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: deploy/ is not a package on the path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deploy.balancer import Balancer
from deploy.processes import DB_OS_USER, ROOT, Exited, Process, free_port, own, wait_until

PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
GALERA = next((p for p in ("/usr/lib/galera/libgalera_smm.so", "/usr/lib/libgalera_smm.so") if Path(p).exists()), "")
MARIADBD = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
MARIADB = shutil.which("mariadb") or "/usr/bin/mariadb"
INSTALL_DB = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
DATABASE = "followup"
DB_USER, DB_PASSWORD = "followup", "followup-cluster"
DEMO_PASSWORD = "Cluster-Demo#2026"


@dataclass
class MariaNode(Process):
    """A mariadbd of our own: a Galera node (`peers` set) or a single server (the default deployment)."""

    datadir: Path = Path()
    port: int = field(default_factory=free_port)
    galera_port: int = field(default_factory=free_port)
    ist_port: int = field(default_factory=free_port)
    sst_port: int = field(default_factory=free_port)
    peers: list[MariaNode] | None = None
    # 2: the log written at each commit, flushed once a second (the loopback cluster's tests: a crash of the machine
    # may lose the last second); 1: flushed at each commit, as a production server and the machine's own are
    flush_at_commit: int = 2
    cpus: str | None = None  # taskset's list: the CPUs it may run on (bench/overload.py --isolate); None: any

    @property
    def socket_path(self) -> Path:
        return self.datadir / "mariadbd.sock"

    @property
    def url(self) -> str:
        return f"mysql+aiomysql://{DB_USER}:{DB_PASSWORD}@127.0.0.1:{self.port}/{DATABASE}"

    def initialise(self) -> None:
        own(self.datadir)
        subprocess.run(  # noqa: S603
            [INSTALL_DB, "--no-defaults", f"--datadir={self.datadir}", f"--user={DB_OS_USER}", "--skip-test-db"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def argv(self, *, bootstrap: bool) -> list[str]:
        argv = [
            MARIADBD,
            "--no-defaults",
            f"--user={DB_OS_USER}",
            f"--datadir={self.datadir}",
            f"--socket={self.socket_path}",
            f"--pid-file={self.datadir / 'mariadbd.pid'}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            "--skip-name-resolve",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_unicode_ci",
            "--innodb-buffer-pool-size=64M",
            "--innodb-log-file-size=32M",
            f"--innodb-flush-log-at-trx-commit={self.flush_at_commit}",
            "--performance-schema=OFF",
            "--max-connections=300",
        ]
        if self.peers is None:
            return argv
        cluster = ",".join(f"127.0.0.1:{node.galera_port}" for node in self.peers)
        options = [
            f"base_port={self.galera_port}",
            f"gmcast.listen_addr=tcp://127.0.0.1:{self.galera_port}",
            f"ist.recv_addr=127.0.0.1:{self.ist_port}",
            "gcache.size=64M",
            "evs.suspect_timeout=PT3S",
            "evs.inactive_timeout=PT6S",
            "evs.keepalive_period=PT0.5S",
            "pc.wait_prim_timeout=PT10S",
        ]
        argv += [
            "--wsrep-on=ON",
            f"--wsrep-provider={GALERA}",
            f"--wsrep-provider-options={';'.join(options)}",
            "--wsrep-cluster-name=followup-loopback",
            f"--wsrep-cluster-address=gcomm://{cluster}",
            f"--wsrep-node-name={self.name}",
            "--wsrep-node-address=127.0.0.1",
            f"--wsrep-node-incoming-address=127.0.0.1:{self.port}",
            "--wsrep-sst-method=rsync",
            f"--wsrep-sst-receive-address=127.0.0.1:{self.sst_port}",
            "--wsrep-retry-autocommit=4",
            "--binlog-format=ROW",
            "--default-storage-engine=InnoDB",
            "--innodb-autoinc-lock-mode=2",
        ]
        if bootstrap:
            argv.append("--wsrep-new-cluster")
        return argv

    def start(self, *, bootstrap: bool = False, timeout: float = 120.0) -> None:
        own(self.datadir)
        pinned = ["taskset", "-c", self.cpus] if self.cpus is not None else []
        self.spawn([*pinned, *self.argv(bootstrap=bootstrap)])
        wait_until(self.ready, f"{self.name} (port {self.port})", timeout)

    def sql(self, statement: str) -> str:
        """Run SQL as root over our own socket (never the machine's server)."""
        result = subprocess.run(  # noqa: S603
            [MARIADB, "--no-defaults", f"--socket={self.socket_path}", "-uroot", "-N", "-B", "-e", statement],
            check=True,
            capture_output=True,
            timeout=30,
        )
        return result.stdout.decode().strip()

    def ready(self) -> bool:
        if not self.running:
            raise Exited(f"{self.name} exited; see {self.log}")
        if self.peers is None:
            return self.sql("SELECT 1") == "1"
        status = dict(
            line.split("\t", 1)
            for line in self.sql(
                "SHOW STATUS WHERE Variable_name IN ('wsrep_ready','wsrep_local_state_comment')"
            ).splitlines()
        )
        return status.get("wsrep_ready") == "ON" and status.get("wsrep_local_state_comment") == "Synced"

    def create_database(self) -> None:
        self.sql(
            f"CREATE DATABASE IF NOT EXISTS {DATABASE} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
            f"CREATE USER IF NOT EXISTS '{DB_USER}'@'127.0.0.1' IDENTIFIED BY '{DB_PASSWORD}';"
            f"GRANT ALL ON *.* TO '{DB_USER}'@'127.0.0.1'"
        )


@dataclass
class Redis(Process):
    port: int = field(default_factory=free_port)
    dir: Path = Path()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.spawn(
            [
                *(REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
                *("--dir", str(self.dir), "--protected-mode", "no"),
            ]
        )

        def answers() -> bool:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")

        wait_until(answers, "redis", 20)


def app_environment(database_url: str, redis_url: str | None, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "APP_MODE": "demo",
        "DATABASE_URL": database_url,
        "DEMO_PASSWORD": DEMO_PASSWORD,
        "LOG_LEVEL": "WARNING",
        "TRUSTED_PROXIES": "127.0.0.1/32",
        "RATE_LIMIT_PER_IP": "1000000",
        "RATE_LIMIT_PER_USER": "1000000",
        "RATE_LIMIT_LOGIN_PER_IP": "1000",
        "GC_FREEZE": "false",
        **extra,
    }
    env.pop("REDIS_URL", None)
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


@dataclass
class App(Process):
    """`server.py serve` on a port of its own."""

    port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180.0) -> None:
        self.spawn([PYTHON, "server.py", "serve", "--host", "127.0.0.1", "--port", str(self.port)], self.env)

        def ready() -> bool:
            if not self.running:
                raise Exited(f"{self.name} exited; see {self.log}")
            with urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as response:  # noqa: S310 - loopback
                return bool(response.status == 200)

        wait_until(ready, self.name, timeout)


class Cluster:
    """Three Galera nodes, Redis, two app instances (A on node 1, B on node 2) and the balancer."""

    def __init__(self, state: Path, *, instances: int = 2, app_settings: dict[str, str] | None = None) -> None:
        self.state = state
        state.mkdir(parents=True, exist_ok=True)
        state.chmod(0o755)  # the database account reaches its data directories inside
        self.nodes: list[MariaNode] = []
        for number in (1, 2, 3):
            self.nodes.append(MariaNode(f"node{number}", state / f"node{number}.log", datadir=state / f"node{number}"))
        for node in self.nodes:
            node.peers = self.nodes
        self.redis = Redis("redis", state / "redis.log", dir=state)
        self.app_settings = app_settings or {}
        self.apps = [App(f"app{'AB'[i] if i < 2 else i}", state / f"app{i}.log") for i in range(instances)]
        self.balancer = Balancer("nginx", state / "nginx.log", state=state)
        self.marks: dict[str, object] = {}  # what tests note for later ones (when a job was created)

    @property
    def url(self) -> str:
        return self.balancer.url

    def app_env(self, index: int) -> dict[str, str]:
        """An instance talks to its own node and, while that node cannot serve, to the others in turn."""
        first = index % len(self.nodes)
        others = [self.nodes[(first + step) % len(self.nodes)] for step in range(1, len(self.nodes))]
        failover = ",".join(f"127.0.0.1:{node.port}" for node in others)
        return app_environment(f"{self.nodes[first].url}?failover={failover}", self.redis.url, **self.app_settings)

    def start(self, log: object = print) -> None:
        first, *others = self.nodes
        log(f"galera: bootstrapping {first.name} (SQL port {first.port})")  # type: ignore[operator]
        first.initialise()
        first.start(bootstrap=True)
        first.create_database()
        for node in others:
            log(f"galera: {node.name} joins (SQL port {node.port}, state transfer by rsync)")  # type: ignore[operator]
            node.start()
        self.redis.start()
        log(f"redis on port {self.redis.port}; migrating and seeding the demo through {first.name}")  # type: ignore[operator]
        env = app_environment(first.url, self.redis.url, **self.app_settings)
        manifest = ["load-documents", "--client", "mini-program", "clients/mini-program/manifest.json"]
        for command in (["migrate"], manifest):
            subprocess.run([PYTHON, "server.py", *command], check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)  # noqa: S603
        # the demo's accounts with a smaller population than `seed-demo`'s (each insert is certified cluster-wide)
        subprocess.run([PYTHON, __file__, "seed"], check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)  # noqa: S603
        for index, app in enumerate(self.apps):
            app.env = self.app_env(index)
            app.start()
            log(f"{app.name}: {app.url} on {self.nodes[index % 3].name}")  # type: ignore[operator]
        self.balancer.start([app.port for app in self.apps])

    def stop(self) -> None:
        self.balancer.stop()
        for app in self.apps:
            app.stop()
        self.redis.stop()
        for node in reversed(self.nodes):  # the bootstrap node last: it can be bootstrapped again
            node.stop(timeout=60)


def seed(url: str, patients: int = 40) -> None:
    """The demo's departments, accounts and `patients` patients (seed-demo makes 300)."""
    import asyncio

    from core.db import Database
    from resolvers.demo.seed import seed_demo

    async def run() -> None:
        db = Database(url, pool_size=2)
        try:
            await seed_demo(db, password=DEMO_PASSWORD, patients=patients)
        finally:
            await db.dispose()

    asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "seed"])
    parser.add_argument("--state", help="state directory (default: a new temporary one, removed at the end)")
    args = parser.parse_args()
    if args.command == "seed":
        seed(os.environ["DATABASE_URL"])
        return
    state = Path(args.state) if args.state else Path(tempfile.mkdtemp(prefix="followup-cluster-"))
    cluster = Cluster(state)
    stopping = False

    def interrupt(_signum: int, _frame: object) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    try:
        cluster.start()
        print(f"\nready: {cluster.url}/graphql  (websockets: ws://127.0.0.1:{cluster.balancer.port}/graphql)")
        print(f"demo accounts (admin, chief, physician, ...) with password {DEMO_PASSWORD}")
        print(f"galera SQL ports {[n.port for n in cluster.nodes]}, redis {cluster.redis.port}, state {state}")
        print("Ctrl-C stops everything")
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("\nstopping...")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        cluster.stop()
        if not args.state:
            shutil.rmtree(state, ignore_errors=True)
        print("stopped")


if __name__ == "__main__":
    main()

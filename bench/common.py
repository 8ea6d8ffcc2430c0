"""Shared by the benchmark harness: paths, database URLs, the GraphQL documents of the query mix."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import sys
from pathlib import Path

import orjson

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
if str(ROOT) not in sys.path:  # the app runs from the repository root; its packages are never installed
    sys.path.insert(0, str(ROOT))

PYTHON = sys.executable
BENCH_PASSWORD = os.environ.get("BENCH_PASSWORD", "Bench#Follow2026")
MYSQL_HOST = os.environ.get("BENCH_MYSQL_HOST", "127.0.0.1")
MYSQL_PORT = int(os.environ.get("BENCH_MYSQL_PORT", "3306"))
MYSQL_ROOT = os.environ.get("BENCH_MYSQL_USER", "root")
MYSQL_ROOT_PASSWORD = os.environ.get("BENCH_MYSQL_PASSWORD", "")
# Each server connects as its own MariaDB account, so statements are counted per server
# (information_schema.USER_STATISTICS) even while other people use the same MariaDB.
DB_USERS = {
    "ours": "bench_ours",
    "floor": "bench_floor",
    "peer": "bench_peer",
    "competent": "bench_competent",
    "gen": MYSQL_ROOT,
}
DB_USER_PASSWORD = "bench-only"

SCALES = {"small": 10_000, "full": 100_000}


def database_name(patients: int) -> str:
    return f"followup_bench_{patients // 1000}k"


def database_url(patients: int, who: str = "gen", driver: str = "aiomysql") -> str:
    user = DB_USERS[who]
    password = MYSQL_ROOT_PASSWORD if who == "gen" else DB_USER_PASSWORD
    auth = f"{user}:{password}" if password else user
    return f"mysql+{driver}://{auth}@{MYSQL_HOST}:{MYSQL_PORT}/{database_name(patients)}"


def mysql_kwargs(patients: int | None, who: str = "gen") -> dict[str, object]:
    user = DB_USERS[who]
    password = MYSQL_ROOT_PASSWORD if who == "gen" else DB_USER_PASSWORD
    kwargs: dict[str, object] = {
        "host": MYSQL_HOST,
        "port": MYSQL_PORT,
        "user": user,
        "password": password,
        "charset": "utf8mb4",
    }
    if patients is not None:
        kwargs["db"] = database_name(patients)  # aiomysql; pymysql_kwargs() renames it
    return kwargs


def port_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:port (and we may bind it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(names: list[str]) -> dict[str, int]:
    """A free loopback port per server: BENCH_PORTS (`ours=8711,floor=8712`) where given, which must be free
    (else SystemExit naming the busy port), the rest chosen by the kernel."""
    fixed = dict(item.split("=", 1) for item in os.environ.get("BENCH_PORTS", "").split(",") if "=" in item)
    ports: dict[str, int] = {}
    holders = []
    for name in names:
        if name in fixed:
            ports[name] = int(fixed[name])
            if not port_free(ports[name]):
                raise SystemExit(f"port {ports[name]} (BENCH_PORTS, for {name}) is taken by another process: free it "
                                 "or choose another")  # fmt: skip
            continue
        holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        holder.bind(("127.0.0.1", 0))  # held until every port is chosen, so no two servers get the same one
        holders.append(holder)
        ports[name] = holder.getsockname()[1]
    for holder in holders:
        holder.close()
    return ports


def encode_id(type_name: str, pk: int) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{pk}".encode()).decode().rstrip("=")


def encode_cursor(values: list[object]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


# ---- the query mix ------------------------------------------------------------------------------

Q0 = "{ __typename }"
Q1 = "query Q1($id: ID!) { patient(id: $id) { id name gender birthDate phone version } }"
Q2 = (
    "query Q2($first: Int, $after: String) { patients(first: $first, after: $after) "
    "{ edges { node { id name gender birthDate attendingPhysicianId } } pageInfo { endCursor hasNextPage } } }"
)
Q3 = (
    "query Q3($first: Int, $after: String) { patients(first: $first, after: $after) "
    "{ edges { node { id name visits { id visitDate visitType "
    "diagnoses { id icd10Code icd10Name isPrimary } } } } pageInfo { endCursor hasNextPage } } }"
)
Q4 = (
    "query Q4($first: Int, $after: String) { patients(first: $first, after: $after) "
    "{ edges { node { id name visits { id visitDate visitType "
    "diagnoses { id icd10Code icd10Name isPrimary } } "
    "followUps { id dueDate status painScore } } } pageInfo { endCursor hasNextPage } } }"
)
Q5 = (
    'mutation Q5($id: ID!) { recordFollowUpOutcome(followUpId: $id, reason: "bench re-run", '
    'input: { outcomeText: "bench", painScore: 2, bleeding: false, satisfaction: 4 }) { id status } }'
)
DOCUMENTS = {"Q0": Q0, "Q1": Q1, "Q2": Q2, "Q3": Q3, "Q4": Q4, "Q5": Q5, "Q6": Q3}
PAGE_SIZES = {"Q2": 50, "Q3": 20, "Q4": 20, "Q6": 20}
DESCRIPTIONS = {
    "Q0": "{ __typename }",
    "Q1": "patient(id) with 6 fields",
    "Q2": "patients(first: 50), 5 fields",
    "Q3": "patients(first: 20) { visits { diagnoses } }",
    "Q4": "Q3 + followUps",
    "Q5": "mutation recordFollowUpOutcome",
    "Q6": "Q3 as an Apollo persisted query (hash only)",
}


def sha256_hex(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


def body(name: str, variables: dict[str, object] | None = None, *, persisted: bool = False) -> dict[str, object]:
    document = DOCUMENTS[name]
    payload: dict[str, object] = {}
    if persisted:
        payload["extensions"] = {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(document)}}
    else:
        payload["query"] = document
    if variables:
        payload["variables"] = variables
    return payload


def pymysql_kwargs(patients: int | None, who: str = "gen") -> dict[str, object]:
    kwargs = mysql_kwargs(patients, who)
    if "db" in kwargs:
        kwargs["database"] = kwargs.pop("db")
    return kwargs

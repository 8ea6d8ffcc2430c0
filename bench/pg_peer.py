# ruff: noqa: S603, S607, S608  (benchmark tooling: SQL from constants, local commands)
"""The PostGraphile peer's side of the harness: its PostgreSQL copy of the data set and its documents.

* `prepare(patients)`: the database `followup_bench_pg_<n>k` on PostgreSQL 15 (127.0.0.1:5432, trust auth,
  `BENCH_PG_URL`), the rows Q1-Q4 read copied from the benchmark's MariaDB data set (kept while MariaDB's
  `bench_meta`, row counts, highest ids and version sums are unchanged: Q5's writes make a new copy). Phone
  numbers stay Fernet-encrypted; PostGraphile's `phone` is a computed column that decrypts them in PostgreSQL
  (pgcrypto: HMAC-SHA256 check, AES-128-CBC), so it decrypts as ours does.
* The chief's data scope is enforced by row-level security on `patient`, with the condition of
  policies/scope.py: their department subtree (their widest role scope, departments below theirs), patients they
  attend or are bound to, patients with a standing visit of theirs recorded outside a grant, and unexpired
  emergency grants. The server switches to the role `followup_bench_reader` (not the table owner) per request.
* `translate(body)`: our Q0-Q4 request body as PostGraphile's document and variables (its root fields are
  aliased to ours); `normalise(data)`: its answer in our JSON (global ids and cursors re-encoded), so the harness
  compares it with ours before timing.
"""

from __future__ import annotations

import base64
import csv
import io
import os
import subprocess
from typing import Any

import orjson
import pymysql
from common import (  # type: ignore[import-not-found]
    Q0,
    Q1,
    Q2,
    Q3,
    Q4,
    encode_cursor,
    encode_id,
    pymysql_kwargs,
    sha256_hex,
)

PG_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
READER = "followup_bench_reader"
ORDER = "primary_key_asc"


def pg_database(patients: int) -> str:
    return f"followup_bench_pg_{patients // 1000}k"


def pg_url(patients: int) -> str:
    return f"{PG_URL}/{pg_database(patients)}"


def psql(database: str, sql: str, *, stdin: bytes | None = None) -> str:
    done = subprocess.run(
        ["psql", f"{PG_URL}/{database}", "-v", "ON_ERROR_STOP=1", "-qAtX", "-c", sql],
        input=stdin,
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"psql on {database} failed: {done.stderr.decode()[:500]}")
    return done.stdout.decode().strip()


def available() -> str | None:
    """None when PostgreSQL answers; else why not."""
    try:
        psql("postgres", "SELECT 1")
    except SystemExit as error:
        return str(error)
    return None


# ---- the copy -------------------------------------------------------------------------------------

TABLES: dict[str, tuple[str, str]] = {
    # PostgreSQL table: (columns read from MariaDB, DDL columns)
    "auth.department": ("id, parent_id, code", "id int PRIMARY KEY, parent_id int, code text NOT NULL"),
    "auth.app_user": ("id, department_id, status", "id int PRIMARY KEY, department_id int, status text NOT NULL"),
    "auth.role": ("id, data_scope", "id int PRIMARY KEY, data_scope text NOT NULL"),
    "auth.user_role": (
        "user_id, role_id",
        "user_id int NOT NULL, role_id int NOT NULL, PRIMARY KEY (user_id, role_id)",
    ),
    "auth.access_grant": (
        "id, user_id, patient_id, kind, expires_at",
        "id int PRIMARY KEY, user_id int NOT NULL, patient_id int NOT NULL, kind text NOT NULL, "
        "expires_at timestamp NOT NULL",
    ),
    "public.patient": (
        "id, name, gender, birth_date, phone, version, department_id, attending_physician_id, wechat_user_id, "
        "voided_at",
        "id int PRIMARY KEY, name text NOT NULL, gender gender NOT NULL, birth_date date, phone_enc text, "
        "version int NOT NULL, department_id int, attending_physician_id int, wechat_user_id int, voided_at timestamp",
    ),
    "public.visit": (
        "id, patient_id, physician_id, visit_date, visit_type, voided_at, under_grant_id",
        "id int PRIMARY KEY, patient_id int NOT NULL REFERENCES patient(id), physician_id int, "
        "visit_date date NOT NULL, visit_type visit_type NOT NULL, voided_at timestamp, under_grant_id int",
    ),
    "public.diagnosis": (
        "id, visit_id, icd10_code, icd10_name, is_primary",
        "id int PRIMARY KEY, visit_id int NOT NULL REFERENCES visit(id), icd10_code text NOT NULL, "
        "icd10_name text NOT NULL, is_primary boolean NOT NULL",
    ),
    "public.follow_up": (
        "id, patient_id, due_date, status, pain_score",
        "id int PRIMARY KEY, patient_id int NOT NULL REFERENCES patient(id), due_date date NOT NULL, "
        "status follow_up_status NOT NULL, pain_score int",
    ),
}
ENUMS = {  # PostgreSQL enum: (MariaDB table, column); PostGraphile upper-cases the values as our API does
    "gender": ("patient", "gender"),
    "visit_type": ("visit", "visit_type"),
    "follow_up_status": ("follow_up", "status"),
}
INDEXES = [
    "CREATE INDEX ON patient (department_id)",
    "CREATE INDEX ON patient (attending_physician_id)",
    "CREATE INDEX ON patient (wechat_user_id)",
    "CREATE INDEX ON visit (patient_id)",
    "CREATE INDEX ON visit (physician_id)",
    "CREATE INDEX ON diagnosis (visit_id)",
    "CREATE INDEX ON follow_up (patient_id)",
    "CREATE INDEX ON auth.access_grant (patient_id)",
    "CREATE INDEX ON auth.department (parent_id)",
]


def _fernet_keys() -> tuple[str, str]:
    from core.crypto import DEMO_DATA_KEY

    key = os.environ.get("DATA_ENCRYPTION_KEYS", DEMO_DATA_KEY).split(",")[0].strip()
    raw = base64.urlsafe_b64decode(key)
    return raw[:16].hex(), raw[16:].hex()  # Fernet: signing key, encryption key


def _security_sql() -> str:
    signing, encryption = _fernet_keys()
    rank = "CASE r.data_scope WHEN 'ALL' THEN 3 WHEN 'DEPARTMENT_AND_BELOW' THEN 2 WHEN 'DEPARTMENT' THEN 1 ELSE 0 END"
    return f"""
CREATE FUNCTION auth.uid() RETURNS int LANGUAGE sql STABLE AS
  $$ SELECT nullif(current_setting('jwt.claims.sub', true), '')::int $$;
CREATE FUNCTION auth.scope_rank() RETURNS int LANGUAGE sql STABLE SECURITY DEFINER SET search_path = auth AS
  $$ SELECT coalesce(max({rank}), 0) FROM auth.user_role ur JOIN auth.role r ON r.id = ur.role_id
     WHERE ur.user_id = auth.uid() $$;
CREATE FUNCTION auth.scope_departments() RETURNS int[] LANGUAGE sql STABLE SECURITY DEFINER SET search_path = auth AS
  $$ WITH RECURSIVE tree(id) AS (
       SELECT u.department_id FROM auth.app_user u
       WHERE u.id = auth.uid() AND u.department_id IS NOT NULL AND auth.scope_rank() IN (1, 2)
       UNION SELECT d.id FROM auth.department d JOIN tree t ON d.parent_id = t.id WHERE auth.scope_rank() = 2)
     SELECT coalesce(array_agg(id), '{{}}') FROM tree $$;
CREATE FUNCTION auth.fernet_decrypt(token text) RETURNS text LANGUAGE sql IMMUTABLE STRICT AS
  $$ SELECT convert_from(auth.decrypt_iv(substring(t FROM 26 FOR length(t) - 57), '\\x{encryption}'::bytea,
                                          substring(t FROM 10 FOR 16), 'aes-cbc/pad:pkcs'), 'UTF8')
     FROM (SELECT decode(translate(token, '-_', '+/'), 'base64') AS t) s
     WHERE auth.hmac(substring(t FROM 1 FOR length(t) - 32), '\\x{signing}'::bytea, 'sha256')
           = substring(t FROM length(t) - 31) $$;
CREATE FUNCTION public.patient_phone(p public.patient) RETURNS text LANGUAGE sql STABLE AS
  $$ SELECT auth.fernet_decrypt(p.phone_enc) $$;
COMMENT ON COLUMN public.patient.phone_enc IS E'@omit';
ALTER TABLE public.patient ENABLE ROW LEVEL SECURITY;
CREATE POLICY data_scope ON public.patient FOR SELECT TO {READER} USING (
  (SELECT auth.scope_rank()) = 3
  OR department_id = ANY ((SELECT auth.scope_departments())::int[])
  OR attending_physician_id = (SELECT auth.uid())
  OR wechat_user_id = (SELECT auth.uid())
  OR EXISTS (SELECT 1 FROM public.visit v WHERE v.patient_id = patient.id AND v.physician_id = (SELECT auth.uid())
             AND v.voided_at IS NULL AND v.under_grant_id IS NULL)
  OR EXISTS (SELECT 1 FROM auth.access_grant g WHERE g.patient_id = patient.id AND g.user_id = (SELECT auth.uid())
             AND g.kind = 'emergency' AND g.expires_at > (now() AT TIME ZONE 'UTC'))
);
GRANT USAGE ON SCHEMA public, auth TO {READER};
GRANT SELECT ON public.patient, public.visit, public.diagnosis, public.follow_up, auth.access_grant TO {READER};
"""


def _mariadb_meta(patients: int) -> dict[str, Any]:
    conn = pymysql.connect(**pymysql_kwargs(patients))  # type: ignore[arg-type]
    try:
        with conn.cursor(pymysql.cursors.DictCursor) as cursor:
            cursor.execute("SELECT * FROM bench_meta")
            row = cursor.fetchone()
            meta = {k: str(v) for k, v in (row or {}).items()}
            # the benchmark's own writes (Q5 records outcomes) change rows in place: their versions tell
            for table in ("patient", "visit", "diagnosis", "follow_up"):
                version = "SUM(version)" if table in ("patient", "follow_up") else "0"
                cursor.execute(f"SELECT COUNT(*), COALESCE(MAX(id), 0), COALESCE({version}, 0) FROM {table}")
                meta[f"state_{table}"] = ",".join(str(v) for v in cursor.fetchone().values())
            for enum, (table, column) in ENUMS.items():
                cursor.execute(f"SELECT DISTINCT {column} FROM {table} ORDER BY 1")
                meta[f"enum_{enum}"] = ",".join(r[column] for r in cursor.fetchall())
    finally:
        conn.close()
    return meta


def _copy(patients: int, database: str, table: str, columns: str) -> int:
    conn = pymysql.connect(**pymysql_kwargs(patients), cursorclass=pymysql.cursors.SSCursor)  # type: ignore[arg-type]
    count = 0
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"SELECT {columns} FROM {table.split('.')[1]}")
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            for row in cursor:
                writer.writerow(["" if v is None else v for v in row])
                count += 1
    finally:
        conn.close()
    # the DDL's columns are in the order read (patient.phone -> phone_enc)
    psql(database, f"\\copy {table} FROM STDIN WITH (FORMAT csv)", stdin=buffer.getvalue().encode())
    return count


def prepare(patients: int, *, force: bool = False) -> dict[str, Any]:
    """The PostgreSQL copy of the MariaDB data set, rebuilt when MariaDB's bench_meta changed."""
    database = pg_database(patients)
    # the copy is also rebuilt when its security (the RLS policy, its functions) changed
    meta = _mariadb_meta(patients) | {"security_sql": sha256_hex(_security_sql())}
    exists = psql("postgres", f"SELECT 1 FROM pg_database WHERE datname = '{database}'") == "1"
    if exists and not force:
        try:
            stored = psql(database, "SELECT meta::text FROM auth.bench_meta")
        except SystemExit:
            stored = ""
        if stored and orjson.loads(stored) == meta:
            return {"database": database, "reused": True}
    psql("postgres", f"DROP DATABASE IF EXISTS {database}")
    psql("postgres", f"CREATE DATABASE {database}")
    psql(
        "postgres",
        f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{READER}') "
        f"THEN CREATE ROLE {READER} NOLOGIN; END IF; END $$",
    )
    ddl = ["CREATE SCHEMA auth", "CREATE EXTENSION pgcrypto SCHEMA auth"]
    for enum in ENUMS:
        values = ",".join(f"'{v}'" for v in meta[f"enum_{enum}"].split(","))
        ddl.append(f"CREATE TYPE public.{enum} AS ENUM ({values})")
    ddl += [f"CREATE TABLE {table} ({columns})" for table, (_, columns) in TABLES.items()]
    psql(database, ";\n".join(ddl))
    counts = {table: _copy(patients, database, table, read) for table, (read, _) in TABLES.items()}
    psql(database, ";\n".join(INDEXES))
    psql(database, _security_sql())
    psql(database, "CREATE TABLE auth.bench_meta (meta jsonb)")
    psql(database, "INSERT INTO auth.bench_meta VALUES ($json$" + orjson.dumps(meta).decode() + "$json$)")
    psql(database, "VACUUM ANALYZE")
    return {"database": database, "reused": False, "rows": counts}


def counters(patients: int) -> dict[str, float]:
    """Transactions and rows of the peer's database (pg_stat_database), for per-request deltas."""
    out = psql(
        "postgres",
        "SELECT xact_commit + xact_rollback, tup_returned, tup_fetched FROM pg_stat_database "
        f"WHERE datname = '{pg_database(patients)}'",
    )
    xacts, returned, fetched = (float(v) for v in out.split("|"))
    return {"pg_transactions": xacts, "pg_rows_returned": returned, "pg_rows_fetched": fetched}


# ---- documents ------------------------------------------------------------------------------------

_PAGE = "(first: $first, after: $after, orderBy: PRIMARY_KEY_ASC, condition: {voidedAt: null})"
_HISTORY = (
    "visits: visitsByPatientIdList(orderBy: [VISIT_DATE_ASC, ID_ASC]) { id visitDate visitType "
    "diagnoses: diagnosesByVisitIdList(orderBy: ID_ASC) { id icd10Code icd10Name isPrimary } }"
)
_FOLLOW_UPS = "followUps: followUpsByPatientIdList(orderBy: [DUE_DATE_ASC, ID_ASC]) { id dueDate status painScore }"
DOCUMENTS = {
    Q0: "{ __typename }",
    Q1: "query Q1($id: Int!) { patient: patientById(id: $id) { id name gender birthDate phone version } }",
    Q2: f"query Q2($first: Int, $after: Cursor) {{ patients: allPatients{_PAGE} "
    "{ edges { node { id name gender birthDate attendingPhysicianId } } pageInfo { endCursor hasNextPage } } }",
    Q3: f"query Q3($first: Int, $after: Cursor) {{ patients: allPatients{_PAGE} "
    f"{{ edges {{ node {{ id name {_HISTORY} }} }} pageInfo {{ endCursor hasNextPage }} }} }}",
    Q4: f"query Q4($first: Int, $after: Cursor) {{ patients: allPatients{_PAGE} "
    f"{{ edges {{ node {{ id name {_HISTORY} {_FOLLOW_UPS} }} }} pageInfo {{ endCursor hasNextPage }} }} }}",
}


def _unb64(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def translate(payload: dict[str, Any]) -> dict[str, Any]:
    """Our request body as PostGraphile's: its document, a row id for Q1, its cursor for `after`."""
    query = payload.get("query")
    if query not in DOCUMENTS:
        raise ValueError(f"no PostGraphile document for {str(query)[:60]}")
    variables = dict(payload.get("variables") or {})
    if query == Q1:
        variables["id"] = int(_unb64(variables["id"]).decode().partition(":")[2])
    if variables.get("after"):
        values = orjson.loads(_unb64(variables["after"]))
        variables["after"] = base64.b64encode(orjson.dumps([ORDER, values])).decode()
    out: dict[str, Any] = {"query": DOCUMENTS[query]}
    if variables:
        out["variables"] = variables
    return out


_KINDS = {"patient": "Patient", "node": "Patient", "visits": "Visit", "diagnoses": "Diagnosis", "followUps": "FollowUp"}


def _ids(value: Any, kind: str | None) -> Any:
    if isinstance(value, list):
        return [_ids(item, kind) for item in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key == "id" and kind and isinstance(item, int):
            out[key] = encode_id(kind, item)
        elif key == "attendingPhysicianId":
            out[key] = None if item is None else encode_id("User", item)
        elif key == "endCursor":
            out[key] = None if item is None else encode_cursor(orjson.loads(base64.b64decode(item))[1])
        else:
            out[key] = _ids(item, _KINDS.get(key))
    return out


def normalise(data: Any) -> Any:
    """PostGraphile's `data` in our JSON: integer ids as our global ids, its cursors as ours."""
    return _ids(data, None)

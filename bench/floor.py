# ruff: noqa: S608  (benchmark tooling: SQL from constants, local commands)
"""The floor: a minimal Starlette endpoint over raw aiomysql and orjson doing the work of Q1-Q4.

    python bench/floor.py --patients 10000 --port 8702

Per request, like the API: verify the JWT (HS256, same secret), check the session, user and roles in
the database (one joined query; touch `last_seen_at` once a minute), read the department tree and turn
the caller's data scope into the same SQL condition as policies/scope.py, run the data queries (one
per level), write one audit event per patient read (one multi-row INSERT) and answer with the JSON the
GraphQL API returns for the same document. Requests are the same GraphQL bodies the API gets; the
document text picks the handler (a dict look-up), so the same load script drives both.
"""

from __future__ import annotations

import argparse
import base64
import os
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import aiomysql
import jwt
import orjson
import uvicorn
from common import Q0, Q1, Q2, Q3, Q4, encode_id, mysql_kwargs  # type: ignore[import-not-found]
from floor_writes import WRITES, Refused  # type: ignore[import-not-found]
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from core.crypto import DEMO_DATA_KEY, DEMO_HASH_KEY, FieldCipher
from core.settings import DEMO_JWT_SECRET

JWT_SECRET = os.environ.get("JWT_SECRET", DEMO_JWT_SECRET)
CIPHER = FieldCipher(
    [k.strip() for k in os.environ.get("DATA_ENCRYPTION_KEYS", DEMO_DATA_KEY).split(",") if k.strip()],
    os.environ.get("SEARCH_HASH_KEY", DEMO_HASH_KEY),
)
IDLE = timedelta(minutes=int(os.environ.get("SESSION_IDLE_MINUTES", "30")))
TOUCH_EVERY = timedelta(seconds=60)
SCOPE_RANK = {"SELF": 0, "DEPARTMENT": 1, "DEPARTMENT_AND_BELOW": 2, "ALL": 3}
MAX_PAGE = 100
# "same": the SQL of policies/scope.py (correlated LIMIT 1 probes); "in": its earlier IN-subquery form, which
# MariaDB flattens into a scan of every visit (results/extra.md) (--scope-sql)
SCOPE_SQL = os.environ.get("FLOOR_SCOPE_SQL", "same")

pool: aiomysql.Pool | None = None


class Unauthenticated(Exception):
    pass


def cursor_of(pk: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([pk])).decode().rstrip("=")


def after_of(cursor: str | None) -> int | None:
    if not cursor:
        return None
    values = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    return int(values[0])


def respond(data: Any, status: int = 200) -> Response:
    return Response(
        orjson.dumps(data), status_code=status, media_type="application/json", headers={"Cache-Control": "no-store"}
    )


async def principal(cur: aiomysql.Cursor, request: Request) -> dict[str, Any]:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        raise Unauthenticated
    try:
        claims = jwt.decode(token, JWT_SECRET, algorithms=["HS256"], options={"require": ["exp", "sub", "sid"]})
    except jwt.PyJWTError as error:
        raise Unauthenticated from error
    if claims.get("typ") != "access":
        raise Unauthenticated
    await cur.execute(
        "SELECT s.user_id, s.revoked_at, s.expires_at, s.last_seen_at, u.status, u.department_id, "
        "u.must_change_password, GROUP_CONCAT(r.data_scope) "
        "FROM auth_session s JOIN app_user u ON u.id = s.user_id "
        "LEFT JOIN user_role ur ON ur.user_id = u.id LEFT JOIN role r ON r.id = ur.role_id "
        "WHERE s.id = %s GROUP BY s.id",
        (claims["sid"],),
    )
    row = await cur.fetchone()
    now = datetime.now(UTC).replace(tzinfo=None)
    if row is None:
        raise Unauthenticated
    user_id, revoked, expires, last_seen, status, department_id, must_change, scopes = row
    if (
        user_id != int(claims["sub"])
        or revoked is not None
        or expires <= now
        or last_seen + IDLE <= now
        or status == "disabled"
        or must_change
    ):
        raise Unauthenticated
    if now - last_seen >= TOUCH_EVERY:
        await cur.execute("UPDATE auth_session SET last_seen_at = %s WHERE id = %s", (now, claims["sid"]))
    scope = max((s for s in (scopes or "").split(",") if s), key=lambda s: SCOPE_RANK[s], default="SELF")
    return {"user_id": user_id, "department_id": department_id, "scope": scope, "now": now}


async def scope_sql(cur: aiomysql.Cursor, who: dict[str, Any]) -> tuple[str, list[Any]]:
    """The same condition as policies/scope.patient_scope, on alias p."""
    if who["scope"] == "ALL":
        return "TRUE", []
    uid = who["user_id"]
    parts = [
        "p.attending_physician_id = %s",
        "p.wechat_user_id = %s",
        # probed per candidate row, never materialised
        "(SELECT 1 FROM visit v WHERE v.patient_id = p.id AND v.physician_id = %s LIMIT 1) IS NOT NULL",
        "(SELECT 1 FROM access_grant g WHERE g.patient_id = p.id AND g.user_id = %s AND g.kind = 'emergency' "
        "AND g.expires_at > %s LIMIT 1) IS NOT NULL",
    ]
    if SCOPE_SQL == "in":  # the earlier form, for comparison
        parts[2] = "p.id IN (SELECT patient_id FROM visit WHERE physician_id = %s)"
        parts[3] = (
            "p.id IN (SELECT patient_id FROM access_grant WHERE user_id = %s AND kind = 'emergency' "
            "AND expires_at > %s)"
        )
    args: list[Any] = [uid, uid, uid, uid, who["now"]]
    if who["scope"] in ("DEPARTMENT", "DEPARTMENT_AND_BELOW") and who["department_id"] is not None:
        allowed = {who["department_id"]}
        if who["scope"] == "DEPARTMENT_AND_BELOW":
            await cur.execute("SELECT id, parent_id FROM department")
            children: dict[int | None, list[int]] = defaultdict(list)
            for dep, parent in await cur.fetchall():
                children[parent].append(dep)
            stack = [who["department_id"]]
            while stack:
                for child in children.get(stack.pop(), []):
                    if child not in allowed:
                        allowed.add(child)
                        stack.append(child)
        # first, as policies/scope.py sends it (a column of the row: tried before the look-ups)
        parts.insert(0, "p.department_id IN (" + ",".join(str(int(d)) for d in sorted(allowed)) + ")")
    return "(" + " OR ".join(parts) + ")", args


async def audit(cur: aiomysql.Cursor, who: dict[str, Any], ids: list[int], operation: str, ip: str) -> None:
    if not ids:
        return
    now, rid, uid = datetime.now(UTC).replace(tzinfo=None), uuid.uuid4().hex, who["user_id"]
    rows: list[Any] = []
    for pid in ids:
        rows += [now, uid, "read", operation, "Patient", str(pid), pid, rid, ip, "success"]
    await cur.execute(
        "INSERT INTO event (occurred_at, actor_id, action, operation, entity_type, entity_id, patient_id, "
        "request_id, ip, outcome) VALUES " + ",".join(["(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"] * len(ids)),
        rows,
    )


async def page_of(cur: aiomysql.Cursor, who: dict[str, Any], columns: str, variables: dict[str, Any]):
    first = variables.get("first", 20)
    first = 20 if first is None else int(first)
    if not 0 <= first <= MAX_PAGE:
        raise ValueError("first")
    after = after_of(variables.get("after"))
    where, args = await scope_sql(cur, who)
    sql = f"SELECT {columns} FROM patient p WHERE {where} AND p.voided_at IS NULL"
    if after is not None:
        sql += " AND p.id > %s"
        args.append(after)
    await cur.execute(sql + " ORDER BY p.id LIMIT %s", [*args, first + 1])
    rows = list(await cur.fetchall())
    return rows[:first], len(rows) > first, after is not None


def connection(rows: list[Any], nodes: list[dict[str, Any]], has_next: bool) -> dict[str, Any]:
    return {
        "edges": [{"node": node} for node in nodes],
        "pageInfo": {"endCursor": cursor_of(rows[-1][0]) if rows else None, "hasNextPage": has_next},
    }


async def q0(_cur: Any, _who: Any, _variables: dict[str, Any], _ip: str) -> dict[str, Any]:
    return {"__typename": "Query"}


async def q1(cur: aiomysql.Cursor, who: dict[str, Any], variables: dict[str, Any], ip: str) -> dict[str, Any]:
    raw = base64.urlsafe_b64decode(variables["id"] + "=" * (-len(variables["id"]) % 4)).decode()
    kind, _, pk = raw.partition(":")
    if kind != "Patient" or not pk.isdigit():
        raise LookupError
    where, args = await scope_sql(cur, who)
    await cur.execute(
        f"SELECT p.id, p.name, p.gender, p.birth_date, p.phone, p.version FROM patient p WHERE p.id = %s AND {where}",
        [int(pk), *args],
    )
    row = await cur.fetchone()
    if row is None:
        raise LookupError
    await audit(cur, who, [row[0]], "patient", ip)
    return {
        "patient": {
            "id": encode_id("Patient", row[0]),
            "name": row[1],
            "gender": row[2].upper(),
            "birthDate": row[3].isoformat() if row[3] else None,
            "phone": CIPHER.decrypt(row[4]) if row[4] else None,
            "version": row[5],
        }
    }


async def q2(cur: aiomysql.Cursor, who: dict[str, Any], variables: dict[str, Any], ip: str) -> dict[str, Any]:
    rows, has_next, _ = await page_of(
        cur, who, "p.id, p.name, p.gender, p.birth_date, p.attending_physician_id", variables
    )
    await audit(cur, who, [r[0] for r in rows], "patients", ip)
    nodes = [
        {
            "id": encode_id("Patient", r[0]),
            "name": r[1],
            "gender": r[2].upper(),
            "birthDate": r[3].isoformat() if r[3] else None,
            "attendingPhysicianId": encode_id("User", r[4]) if r[4] else None,
        }
        for r in rows
    ]
    return {"patients": connection(rows, nodes, has_next)}


async def _history(
    cur: aiomysql.Cursor, who: dict[str, Any], variables: dict[str, Any], ip: str, follow_ups: bool
) -> dict[str, Any]:
    rows, has_next, _ = await page_of(cur, who, "p.id, p.name", variables)
    ids = [r[0] for r in rows]
    visits: dict[int, list[dict[str, Any]]] = defaultdict(list)
    fus: dict[int, list[dict[str, Any]]] = defaultdict(list)
    if ids:
        marks = ",".join(["%s"] * len(ids))
        await cur.execute(
            f"SELECT id, patient_id, visit_date, visit_type FROM visit WHERE patient_id IN ({marks}) "
            "ORDER BY visit_date, id",
            ids,
        )
        visit_rows = await cur.fetchall()
        diagnoses: dict[int, list[dict[str, Any]]] = defaultdict(list)
        if visit_rows:
            vmarks = ",".join(["%s"] * len(visit_rows))
            await cur.execute(
                f"SELECT id, visit_id, icd10_code, icd10_name, is_primary FROM diagnosis WHERE visit_id IN ({vmarks}) "
                "ORDER BY id",
                [v[0] for v in visit_rows],
            )
            for d in await cur.fetchall():
                diagnoses[d[1]].append(
                    {"id": encode_id("Diagnosis", d[0]), "icd10Code": d[2], "icd10Name": d[3], "isPrimary": bool(d[4])}
                )
        for v in visit_rows:
            visits[v[1]].append(
                {
                    "id": encode_id("Visit", v[0]),
                    "visitDate": v[2].isoformat(),
                    "visitType": v[3].upper(),
                    "diagnoses": diagnoses.get(v[0], []),
                }
            )
        if follow_ups:
            await cur.execute(
                f"SELECT id, patient_id, due_date, status, pain_score FROM follow_up WHERE patient_id IN ({marks}) "
                "ORDER BY due_date, id",
                ids,
            )
            for f in await cur.fetchall():
                fus[f[1]].append(
                    {
                        "id": encode_id("FollowUp", f[0]),
                        "dueDate": f[2].isoformat(),
                        "status": f[3].upper(),
                        "painScore": f[4],
                    }
                )
    await audit(cur, who, ids, "patients", ip)
    nodes = []
    for r in rows:
        node: dict[str, Any] = {"id": encode_id("Patient", r[0]), "name": r[1], "visits": visits.get(r[0], [])}
        if follow_ups:
            node["followUps"] = fus.get(r[0], [])
        nodes.append(node)
    return {"patients": connection(rows, nodes, has_next)}


async def q3(cur: aiomysql.Cursor, who: dict[str, Any], variables: dict[str, Any], ip: str) -> dict[str, Any]:
    return await _history(cur, who, variables, ip, follow_ups=False)


async def q4(cur: aiomysql.Cursor, who: dict[str, Any], variables: dict[str, Any], ip: str) -> dict[str, Any]:
    return await _history(cur, who, variables, ip, follow_ups=True)


HANDLERS = {Q0: (q0, False), Q1: (q1, True), Q2: (q2, True), Q3: (q3, True), Q4: (q4, True)}
HANDLERS.update({document: (write, True) for document, write in WRITES.items()})  # Q5 and a booking


async def graphql(request: Request) -> Response:
    payload = orjson.loads(await request.body())
    handler = HANDLERS.get(payload.get("query"))
    if handler is None:
        return respond({"errors": [{"message": "the floor answers Q0-Q5 and a booking only"}]}, 400)
    run, needs_db = handler
    variables = payload.get("variables") or {}
    if not needs_db:
        return respond({"data": await run(None, None, variables, "")})
    assert pool is not None
    ip = request.client.host if request.client else ""
    async with pool.acquire() as conn, conn.cursor() as cur:
        try:
            who = await principal(cur, request)
            who["user_agent"] = request.headers.get("user-agent", "")[:255]
        except Unauthenticated:
            return respond({"errors": [{"message": "bad token", "extensions": {"code": "UNAUTHENTICATED"}}]}, 401)
        try:
            data = await run(cur, who, variables, ip)
        except LookupError:
            return respond({"data": None, "errors": [{"message": "Patient not found"}]})
        except Refused as error:
            return respond({"data": None, "errors": [{"message": error.message, "extensions": {"code": error.code}}]})
    return respond({"data": data})


def create_app(patients: int, pool_size: int, database: str | None = None) -> Starlette:
    async def lifespan(_app: Starlette):  # type: ignore[no-untyped-def]
        global pool
        kwargs = mysql_kwargs(patients, "floor")
        if database:  # another benchmark database than the data set's (bench/workloads.py)
            kwargs["db"] = database
        pool = await aiomysql.create_pool(minsize=1, maxsize=pool_size, autocommit=True, **kwargs)
        yield
        pool.close()
        await pool.wait_closed()

    from contextlib import asynccontextmanager

    return Starlette(routes=[Route("/graphql", graphql, methods=["POST"])], lifespan=asynccontextmanager(lifespan))


def main() -> None:
    global SCOPE_SQL
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--port", type=int, default=8702)
    parser.add_argument("--pool-size", type=int, default=20)
    parser.add_argument("--scope-sql", choices=["same", "in"], default=SCOPE_SQL)
    parser.add_argument("--database", help="a benchmark database other than --patients' data set")
    args = parser.parse_args()
    SCOPE_SQL = args.scope_sql
    uvicorn.run(
        create_app(args.patients, args.pool_size, args.database),
        host="127.0.0.1",
        port=args.port,
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()

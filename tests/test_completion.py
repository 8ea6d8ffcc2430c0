"""Compiled completion (schema/engine/completion.py) answers exactly what graphql-core's generic completion answers.

Each query runs twice through the API, as the same user, on the same data: once with compiled walks and
once with them switched off; the two responses (data and errors) must be equal. The queries cover what the
compiler compiles (nested lists, masked and voided fields, fragments, aliases, __typename) and what it must
leave to the generic path (directives that depend on variables, async fields, errors).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import update

from core.db import Database
from models.clinical import Visit
from schema.engine import completion
from tests.clinical_helpers import gid, patients_of
from tests.conftest import GraphQLClient, error_codes

HISTORY = """
query ($first: Int) {
  patients(first: $first) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges {
      cursor
      node {
        __typename id name nameInitials gender birthDate idType phone %s version linkedToWechat
        createdAt updatedAt allergies
        consent { scope version givenAt }
        visits {
          id visitDate visitType chiefComplaint createdAt
          voided { at reason }
          diagnoses { __typename id visitId icd10Code icd10Name isPrimary tcmSyndrome voided { reason } }
        }
        diagnoses { icd10Code }
        followUps {
          id dueDate status method overdue painScore bleeding recordedAt
          response { text painScore submittedAt }
        }
      }
    }
  }
}
"""
# identity numbers: whole for chief and admin, not in the physician's schema at all
SENSITIVE = {"admin": "idNumber", "chief": "idNumber"}


def history(user: str) -> str:
    return HISTORY % SENSITIVE.get(user, "")


FRAGMENTS = """
query ($id: ID!) {
  one: patient(id: $id) { ...Core visits { ...V } }
  again: patient(id: $id) { theName: name n2: name ... on Patient { gender } }
}
fragment Core on Patient { id name phone __typename }
fragment V on Visit { id visitDate diagnoses { icd10Code } }
"""

DIRECTIVES = """
query ($id: ID!, $withVisits: Boolean!) {
  patient(id: $id) { id name visits @include(if: $withVisits) { id } phone @skip(if: $withVisits) }
}
"""

ASYNC_FIELDS = """
query ($id: ID!) {
  patient(id: $id) {
    id departmentName attendingPhysicianName
    visits { id physicianName diagnoses { icd10Code } }
    followUps { id recordedByName }
  }
}
"""


@contextmanager
def generic_completion() -> Iterator[None]:
    """graphql-core's generic completion only, meanwhile (as COMPILED_COMPLETION=false)."""
    saved = completion._compiler_of
    completion._compiler_of = lambda _schema: None
    try:
        yield
    finally:
        completion._compiler_of = saved


@contextmanager
def recorded_plans() -> Iterator[list[tuple[str, bool]]]:
    """The (object type, compiled?) of every plan made meanwhile."""
    made: list[tuple[str, bool]] = []
    original = completion.Compiler.plan

    def plan(self: completion.Compiler, executor: Any, return_type: Any, details: Any) -> Any:
        found = original(self, executor, return_type, details)
        made.append((return_type.name, found is not None))
        return found

    completion.Compiler.plan = plan  # type: ignore[method-assign]
    try:
        yield made
    finally:
        completion.Compiler.plan = original  # type: ignore[method-assign]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """These tests compare the compiled walks with graphql-core's generic way: the walks stay on even when the
    suite runs with the speed-ups off (TEST_SPEEDUPS=off)."""
    return {"compiled_completion": True, "prefetch": True, "projection": True, "statement_reuse": True}


def walks(client: GraphQLClient) -> tuple[int, int]:
    """(compiled walks, walks that gave up) so far, over every role schema of the app."""
    schemas = client.services.registry._schemas.values()
    compilers = [schema.compiler for schema in schemas if schema.compiler is not None]
    return sum(c.walks for c in compilers), sum(c.fallbacks for c in compilers)


async def both(client: GraphQLClient, query: str, variables: dict[str, Any], user: str) -> dict[str, Any]:
    compiled = await client.run(query, variables, as_=user)
    with generic_completion():
        generic = await client.run(query, variables, as_=user)
    assert _without_request_ids(compiled) == _without_request_ids(generic)
    return compiled


def _without_request_ids(result: dict[str, Any]) -> dict[str, Any]:
    for error in result.get("errors", []):
        error.get("extensions", {}).pop("requestId", None)
    return result


@pytest.mark.parametrize("user", ["admin", "chief", "physician", "deptadmin"])
async def test_whole_history_pages_equal(client: GraphQLClient, db: Database, user: str) -> None:
    # a voided visit, so `voided` is filled for the roles that see it and the row is hidden for the others
    mine = await patients_of(db, "physician")
    async with db.session() as session:
        await session.execute(
            update(Visit)
            .where(Visit.patient_id == mine[0].id)  # type: ignore[arg-type]
            .values(voided_at=datetime(2026, 1, 2, tzinfo=UTC), void_reason="entered in error")
        )
        await session.commit()
    await client.token(user)
    before = walks(client)
    with recorded_plans() as plans:
        result = await both(client, history(user), {"first": 20}, user)
    after = walks(client)
    assert "errors" not in result, result
    # every edge was completed by its compiled walk (none gave up and went the generic way)
    assert after[0] - before[0] >= len(result["data"]["patients"]["edges"]) and after[1] == before[1]
    nodes = [edge["node"] for edge in result["data"]["patients"]["edges"]]
    assert nodes
    # each edge really went through a compiled walk, down to the diagnoses
    assert ("PatientEdge", True) in plans, plans  # the connection itself: totalCount is async
    if user in ("physician", "chief", "admin"):
        assert {p.name for p in mine} <= {node["name"] for node in nodes}
    if user == "physician":
        voided = [visit for node in nodes for visit in node["visits"] if visit["voided"]]
        assert voided and voided[0]["voided"]["reason"] == "entered in error"


async def test_fragments_aliases_and_typename_equal(client: GraphQLClient, db: Database) -> None:
    patient = (await patients_of(db, "physician"))[0]
    result = await both(client, FRAGMENTS, {"id": gid("Patient", patient.id)}, "physician")
    one, again = result["data"]["one"], result["data"]["again"]
    assert one["__typename"] == "Patient" and one["name"] == patient.name
    assert again == {"theName": patient.name, "n2": patient.name, "gender": patient.gender.upper()}
    assert isinstance(one["visits"], list)


async def test_directives_follow_the_variables(client: GraphQLClient, db: Database) -> None:
    patient = (await patients_of(db, "physician"))[0]
    variables = {"id": gid("Patient", patient.id)}
    with_visits = await both(client, DIRECTIVES, {**variables, "withVisits": True}, "physician")
    without = await both(client, DIRECTIVES, {**variables, "withVisits": False}, "physician")
    # the same document, cached once: what is selected still follows each request's variables
    assert "visits" in with_visits["data"]["patient"] and "phone" not in with_visits["data"]["patient"]
    assert "visits" not in without["data"]["patient"] and "phone" in without["data"]["patient"]


async def test_async_fields_complete_the_generic_way(client: GraphQLClient, db: Database) -> None:
    patient = (await patients_of(db, "physician"))[0]
    with recorded_plans() as plans:
        result = await both(client, ASYNC_FIELDS, {"id": gid("Patient", patient.id)}, "physician")
    assert result["data"]["patient"]["attendingPhysicianName"]
    assert ("Patient", False) in plans  # loaders' fields: the generic path


async def test_errors_equal(client: GraphQLClient, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    unknown = await both(client, FRAGMENTS, {"id": gid("Patient", 987654)}, "physician")
    assert error_codes(unknown) == ["NOT_FOUND"] and unknown["data"] is None

    # A null where the schema promises a value: the compiled walk gives up and the generic completion
    # reports the error, with its path, and nulls the nearest nullable parent, as the specification says.
    from schema.patient import PatientType

    original = PatientType.from_row

    def nameless(row: Any) -> PatientType:
        patient = original(row)
        patient.name = None  # type: ignore[assignment]
        return patient

    monkeypatch.setattr(PatientType, "from_row", staticmethod(nameless))
    gave_up = walks(client)[1]
    broken = await both(client, history("physician"), {"first": 5}, "physician")
    assert walks(client)[1] > gave_up  # the compiled walk met the null and handed over
    assert broken["data"] is None or broken["data"]["patients"] is None
    assert any(error["path"][:2] == ["patients", "edges"] for error in broken["errors"]), broken
    # the page's totalCount, still running when the error nulled the page, took no connection of its own
    await asyncio.sleep(0.1)
    db = client.services.db
    assert db.read_engine.pool.checkedout() == len(db.shelf)  # none lent: each is back on the shelf

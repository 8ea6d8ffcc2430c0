"""No oracle on a masked value: searching or matching on a value is free only for a caller who sees it in
clear; seen masked, each search (every alias and batch item) is a recorded lookup, misses as well as hits,
limited per account; hidden, it is never compared (registering answers the same either way)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from core.db import Database
from models.audit import Event
from models.patient import Patient
from tests.clinical_helpers import gid, patients_of, user_id
from tests.conftest import GraphQLClient, error_codes

LIMIT = 5
REGISTER = "mutation ($in: RegisterPatientInput!) { registerPatient(input: $in) { id } }"
SEARCH = "query ($s: String!) { patients(first: 5, filter: {search: $s}) { edges { node { id } } } }"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"masked_lookups_per_day": LIMIT}


def aliased(terms: list[str]) -> str:
    """One request, one alias of `patients(first: 1, filter: {search})` per term."""
    fields = " ".join(
        f'g{i}: patients(first: 1, filter: {{search: "{term}"}}) {{ edges {{ node {{ id }} }} }}'
        for i, term in enumerate(terms)
    )
    return "{ " + fields + " }"


def id_numbers_like(number: str, count: int) -> list[str]:
    """Other numbers of the same shape (what a guesser tries), the real one last."""
    return [number[:-4] + f"{(int(number[-4:-1]) + i) % 1000:03d}" + number[-1] for i in range(1, count)] + [number]


async def lookups(db: Database, username: str) -> list[Event]:
    uid = await user_id(db, username)
    async with db.session() as session:
        statement = select(Event).where(Event.actor_id == uid, Event.action == "lookup").order_by(Event.id)  # type: ignore[arg-type]
        return list((await session.execute(statement)).scalars().all())


async def settled_lookups(db: Database, username: str) -> list[Event]:
    """The lookups once every alias of the last request has finished: when a refused alias ends a request, its
    sibling aliases still running go on and record theirs after the response has gone (seen on MariaDB)."""
    made = await lookups(db, username)
    while True:
        await asyncio.sleep(0.3)
        again = await lookups(db, username)
        if len(again) == len(made):
            return again
        made = again


def answered(result: dict[str, Any]) -> list[str]:
    data = result.get("data") or {}
    return [key for key, value in data.items() if value is not None]


async def test_a_masked_identity_number_is_a_limited_recorded_lookup(client: GraphQLClient, db: Database) -> None:
    patient = (await patients_of(db, "chief"))[0]
    number = patient.id_number or ""
    result = await client.run(aliased(id_numbers_like(number, 30)), as_="chief")
    # 30 guesses in one request: past LIMIT the aliases are refused (and a refused alias ends the request:
    # its non-null field takes the answer's data with it, so nothing of the others is shown)
    assert len(answered(result)) <= LIMIT
    assert "RATE_LIMITED" in error_codes(result)
    made = await settled_lookups(db, "chief")  # every alias that ran was recorded, those refused included
    assert LIMIT < len(made) <= 30
    assert {(e.operation, (e.detail or {}).get("field")) for e in made} == {("patients", "idNumber")}
    assert all(number not in str(e.detail) for e in made)  # the record names the field, never the value
    # the allowance is spent: even the right number, alone, is refused now
    alone = await client.run(SEARCH, {"s": number}, as_="chief")
    assert error_codes(alone) == ["RATE_LIMITED"]
    # a name search is no lookup and spends nothing
    named = await client.data(SEARCH, {"s": patient.name[:1]}, as_="chief")
    assert named["patients"]["edges"]
    assert len(await lookups(db, "chief")) == len(made) + 1


async def test_within_the_allowance_a_masked_lookup_finds_and_records_misses(
    client: GraphQLClient, db: Database
) -> None:
    patient = (await patients_of(db, "chief"))[0]
    number = patient.id_number or ""
    found = await client.data(SEARCH, {"s": number}, as_="chief")
    assert [e["node"]["id"] for e in found["patients"]["edges"]] == [gid("Patient", patient.id)]
    missed = await client.data(SEARCH, {"s": id_numbers_like(number, 2)[0]}, as_="chief")
    assert missed["patients"]["edges"] == []
    assert len(await lookups(db, "chief")) == 2  # the miss is recorded like the hit


async def test_a_value_seen_in_clear_is_searched_freely(client: GraphQLClient, db: Database) -> None:
    patient = (await patients_of(db, "chief"))[0]
    result = await client.run(aliased(id_numbers_like(patient.id_number or "", 30)), as_="admin")
    assert "errors" not in result and len(answered(result)) == 30
    assert result["data"]["g29"]["edges"] == [{"node": {"id": gid("Patient", patient.id)}}]
    assert await lookups(db, "admin") == []


async def test_a_masked_phone_counts_every_alias_and_batch_item(client: GraphQLClient, db: Database) -> None:
    own = (await patients_of(db, "physician"))[0]
    phone = own.phone or ""
    guesses = [phone[:-2] + f"{i:02d}" for i in range(10)]
    token = await client.token("physician")
    batch = [{"query": aliased(guesses)}, {"query": aliased(guesses)}]
    response = await client.http.post("/graphql", json=batch, headers={"Authorization": f"Bearer {token}"})
    results = response.json()
    assert isinstance(results, list) and len(results) == 2
    assert sum(len(answered(r)) for r in results) <= LIMIT
    assert [error_codes(r)[:1] for r in results] == [["RATE_LIMITED"], ["RATE_LIMITED"]]
    assert LIMIT < len(await lookups(db, "physician")) <= 20


async def test_registering_gives_a_physician_no_oracle_on_identity_numbers(client: GraphQLClient, db: Database) -> None:
    """A physician does not see identity numbers: a number already on file and a new one answer the same."""
    own = (await patients_of(db, "physician"))[0]
    existing = await client.run(REGISTER, {"in": {"name": "王测试", "idNumber": own.id_number}}, as_="physician")
    assert "errors" not in existing, existing
    fresh = await client.run(REGISTER, {"in": {"name": "王测试", "idNumber": "11010519491231002X"}}, as_="physician")
    assert "errors" not in fresh, fresh
    assert await lookups(db, "physician") == []


async def test_duplicate_candidates_show_what_the_caller_may_see(client: GraphQLClient, db: Database) -> None:
    patient = (await patients_of(db, "chief"))[0]
    refused = await client.run(REGISTER, {"in": {"name": "李测试", "idNumber": patient.id_number}}, as_="chief")
    assert error_codes(refused) == ["CONFLICT"]
    candidates = refused["errors"][0]["extensions"]["candidates"]
    assert candidates == [{"id": gid("Patient", patient.id), "name": patient.name}]
    assert [(e.operation, (e.detail or {})["field"]) for e in await lookups(db, "chief")] == [
        ("registerPatient", "idNumber")
    ]
    # nothing registered by the refused attempt
    async with db.session() as session:
        assert (await session.execute(select(Patient).where(Patient.name == "李测试"))).first() is None


def test_masked_values_are_compared_only_through_the_matching_rule() -> None:
    """The search columns of masked values are compared in resolvers/data/matching.py alone: a new search
    path that compares one itself (an oracle) fails here."""
    root = Path(__file__).resolve().parent.parent
    compared = re.compile(r"(phone_hash|id_number_hash|\.phone|\.id_number|emergency_contact_phone)\s*==")
    offenders = [
        f"{path.relative_to(root)}:{number}"
        for folder in ("resolvers", "schema")
        for path in sorted((root / folder).rglob("*.py"))
        if path.name != "matching.py" and "demo" not in path.parts
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if compared.search(line)
    ]
    assert offenders == []

"""Masking by policy, and search that cannot find hidden digits by prefix."""

from __future__ import annotations

from core.db import Database
from tests.clinical_helpers import gid, patients_of
from tests.conftest import GraphQLClient, error_codes

SENSITIVE = "query ($id: ID!) { patient(id: $id) { phone idNumber } }"
PHONE_ONLY = "query ($id: ID!) { patient(id: $id) { phone emergencyContactPhone } }"
SEARCH = "query ($s: String!) { patients(first: 50, filter: {search: $s}) { edges { node { id } } } }"


def _masked_phone(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:]


async def test_id_number_full_masked_or_absent_by_role(client: GraphQLClient, db: Database) -> None:
    patient = (await patients_of(db, "chief"))[0]
    pid = gid("Patient", patient.id)
    assert patient.id_number and patient.phone
    full = await client.data(SENSITIVE, {"id": pid}, as_="admin")
    assert full["patient"] == {"phone": patient.phone, "idNumber": patient.id_number}
    dept = await client.data(SENSITIVE, {"id": pid}, as_="deptadmin")
    assert dept["patient"]["idNumber"] == patient.id_number
    chief = await client.data(SENSITIVE, {"id": pid}, as_="chief")
    assert chief["patient"]["idNumber"] == patient.id_number[:3] + "*" * 11 + patient.id_number[-4:]
    assert chief["patient"]["phone"] == patient.phone
    # The physician's schema has no idNumber at all.
    own = (await patients_of(db, "physician"))[0]
    refused = await client.run(SENSITIVE, {"id": gid("Patient", own.id)}, as_="physician")
    assert error_codes(refused) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "idNumber" not in str(refused.get("data"))


async def test_phone_masked_for_physician(client: GraphQLClient, db: Database) -> None:
    own = (await patients_of(db, "physician"))[0]
    data = await client.data(PHONE_ONLY, {"id": gid("Patient", own.id)}, as_="physician")
    assert data["patient"]["phone"] == _masked_phone(own.phone or "")
    assert data["patient"]["phone"] != own.phone


async def test_introspection_shows_masked_field_but_not_hidden_one(client: GraphQLClient) -> None:
    query = '{ __type(name: "Patient") { fields { name } } }'
    physician = {f["name"] for f in (await client.data(query, as_="physician"))["__type"]["fields"]}
    chief = {f["name"] for f in (await client.data(query, as_="chief"))["__type"]["fields"]}
    assert "phone" in physician and "idNumber" not in physician
    assert "idNumber" in chief


async def _found(client: GraphQLClient, username: str, term: str) -> set[str]:
    data = await client.data(SEARCH, {"s": term}, as_=username)
    return {edge["node"]["id"] for edge in data["patients"]["edges"]}


async def test_masked_phone_is_searchable_only_exactly(client: GraphQLClient, db: Database) -> None:
    own = (await patients_of(db, "physician"))[0]
    pid = gid("Patient", own.id)
    phone = own.phone or ""
    assert pid in await _found(client, "physician", phone)
    assert pid in await _found(client, "physician", f"{phone[:3]}-{phone[3:7]}-{phone[7:]}")  # same number
    # Encrypted at rest: no prefix search, for a masked role or one that sees the number whole.
    assert pid not in await _found(client, "physician", phone[:7])
    assert pid not in await _found(client, "chief", phone[:7])
    assert pid in await _found(client, "chief", phone)


async def test_id_number_search_follows_visibility(client: GraphQLClient, db: Database) -> None:
    patient = (await patients_of(db, "physician"))[0]
    pid = gid("Patient", patient.id)
    number = patient.id_number or ""
    assert pid not in await _found(client, "physician", number)  # hidden: not searchable at all
    assert pid in await _found(client, "chief", number)  # masked: exact value only
    assert pid in await _found(client, "chief", number.lower())
    assert pid not in await _found(client, "chief", number[:10])
    assert pid not in await _found(client, "admin", number[:10])  # encrypted: no prefix, even seen whole


async def test_search_by_name_and_pinyin_initials(client: GraphQLClient, db: Database) -> None:
    patient = (await patients_of(db, "physician"))[0]
    pid = gid("Patient", patient.id)
    assert pid in await _found(client, "physician", patient.name[1:])
    assert pid in await _found(client, "physician", patient.name_initials.lower())

"""Identity and phone numbers are encrypted at rest; keyed hashes allow exact search; keys rotate."""

from __future__ import annotations

from cryptography.fernet import Fernet
from sqlalchemy import text

from core import crypto
from core.db import Database
from resolvers.data.keys import rotate_patient_keys
from tests.clinical_helpers import gid, patients_of
from tests.conftest import GraphQLClient

SEARCH = "query ($s: String!) { patients(filter: {search: $s}) { edges { node { id phone } } } }"


async def _raw(db: Database, patient_id: int) -> dict[str, str | None]:
    async with db.session() as session:
        row = (
            (
                await session.execute(
                    text("SELECT id_number, phone, emergency_contact_phone, phone_hash FROM patient WHERE id = :id"),
                    {"id": patient_id},
                )
            )
            .mappings()
            .one()
        )
    return dict(row)


async def test_a_database_dump_reveals_no_number(client: GraphQLClient, db: Database) -> None:
    data = await client.data(
        'mutation { registerPatient(input: {name: "钱多多", phone: "13611112222", idNumber: "11010519491231002X",'
        ' emergencyContactPhone: "13533334444"}) { id } }',
        as_="chief",
    )
    assert data["registerPatient"]["id"]
    async with db.session() as session:
        dump = "\n".join(str(row) for row in (await session.execute(text("SELECT * FROM patient"))).all())
        events = "\n".join(str(row) for row in (await session.execute(text("SELECT * FROM event"))).all())
    for secret in ("13611112222", "11010519491231002X", "13533334444", "1361111"):
        assert secret not in dump and secret not in events
    found = await client.data(SEARCH, {"s": "13611112222"}, as_="chief")
    assert [edge["node"]["phone"] for edge in found["patients"]["edges"]] == ["13611112222"]


async def test_rotation_re_encrypts_under_the_new_key_and_search_still_works(
    client: GraphQLClient, db: Database
) -> None:
    patient = (await patients_of(db, "physician"))[0]
    before = await _raw(db, patient.id)
    new_key = Fernet.generate_key().decode()
    try:
        crypto.configure([new_key, crypto.DEMO_DATA_KEY], crypto.DEMO_HASH_KEY)
        assert await rotate_patient_keys(db) >= 1
        after = await _raw(db, patient.id)
        assert after["phone"] != before["phone"] and after["phone_hash"] == before["phone_hash"]
        # Only the new key is needed now.
        crypto.configure([new_key], crypto.DEMO_HASH_KEY)
        assert crypto.cipher().decrypt(str(after["phone"])) == patient.phone
        found = await client.data(SEARCH, {"s": patient.phone}, as_="physician")
        assert gid("Patient", patient.id) in {edge["node"]["id"] for edge in found["patients"]["edges"]}
    finally:
        crypto.configure([crypto.DEMO_DATA_KEY], crypto.DEMO_HASH_KEY)
        await rotate_patient_keys_back(db, new_key)


async def rotate_patient_keys_back(db: Database, new_key: str) -> None:
    crypto.configure([crypto.DEMO_DATA_KEY, new_key], crypto.DEMO_HASH_KEY)
    await rotate_patient_keys(db)
    crypto.configure([crypto.DEMO_DATA_KEY], crypto.DEMO_HASH_KEY)

"""The patient's rights: their own data as an export, and closing the account while the record stays."""

from __future__ import annotations

from sqlalchemy import select

from core.db import Database
from models.patient import Patient
from models.user import User
from tests.conftest import GraphQLClient, error_codes

EXPORT = "{ myDataExport }"
DELETE = "mutation { deleteMyAccount(confirm: true) }"


async def test_patient_exports_their_own_record(client: GraphQLClient, db: Database) -> None:
    async with db.session() as session:
        user = (await session.execute(select(User).where(User.username == "patient"))).scalar_one()
        mine = (await session.execute(select(Patient).where(Patient.wechat_user_id == user.id))).scalar_one()
    export = (await client.data(EXPORT, as_="patient"))["myDataExport"]
    assert export["patient"]["name"] == mine.name
    assert export["patient"]["phone"] == mine.phone and export["patient"]["id_number"] == mine.id_number
    assert export["visit"] and all(visit["patient_id"] == mine.id for visit in export["visit"])
    assert "follow_up" in export and "wechat_user_id" not in export["patient"]
    assert error_codes(await client.run(EXPORT, as_="physician")) == ["GRAPHQL_VALIDATION_FAILED"]


async def test_deleting_the_account_unlinks_it_and_keeps_the_record(client: GraphQLClient, db: Database) -> None:
    token = await client.token("patient")
    refused = await client.run("mutation { deleteMyAccount(confirm: false) }", as_="patient")  # the same token
    assert error_codes(refused) == ["BAD_USER_INPUT"]
    assert (await client.data(DELETE, as_="patient"))["deleteMyAccount"] is True
    gone = await client.post("{ me { id } }", token=token)
    assert gone.status_code == 401
    async with db.session() as session:
        user = (await session.execute(select(User).where(User.username == "patient"))).scalar_one()
        record = (await session.execute(select(Patient).order_by(Patient.id))).scalars().first()
    assert user.wechat_openid is None and user.status == "disabled"
    assert record is not None and record.wechat_user_id is None and record.name

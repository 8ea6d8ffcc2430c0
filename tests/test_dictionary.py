"""Dictionaries: every enum of the API has Chinese and English labels, an order and an "in use" flag; each caller
sees the dictionaries of their own schema; admins relabel and reorder, and cannot invent values."""

from __future__ import annotations

from sqlalchemy import select

from core.db import Database
from models.audit import Event
from models.dictionary import DictionaryEntry
from resolvers.dictionary.labels import DEFAULT_LABELS
from schema.engine.builder import full_schema
from schema.engine.catalog import schema_enums
from schema.root import Mutation, Query, Subscription
from tests.conftest import GraphQLClient, error_codes

DICTIONARIES = """
query ($keys: [String!]) {
  dictionaries(keys: $keys) { key description entries { code labelZh labelEn sortOrder inUse defaultLabelZh defaultLabelEn } }
}
"""
UPDATE = """
mutation ($d: String!, $c: String!, $zh: String, $en: String, $u: Boolean) {
  updateDictionaryEntry(dictionary: $d, code: $c, labelZh: $zh, labelEn: $en, inUse: $u) {
    key entries { code labelZh labelEn sortOrder inUse }
  }
}
"""
REORDER = """
mutation ($d: String!, $codes: [String!]!) { reorderDictionary(dictionary: $d, codes: $codes) { key entries { code sortOrder } } }
"""


def _field(result: dict, name: str = "") -> str | None:  # type: ignore[type-arg]
    return result["errors"][0].get("extensions", {}).get("field")


async def stored(db: Database, dictionary: str) -> dict[str, DictionaryEntry]:
    async with db.session() as session:
        rows = await session.execute(select(DictionaryEntry).where(DictionaryEntry.dictionary == dictionary))
        return {row.code: row for row in rows.scalars().all()}


def test_every_enum_of_the_api_has_default_labels_for_every_value() -> None:
    enums = schema_enums(full_schema(Query, Mutation, Subscription))
    assert len(enums) >= 20
    for name, enum in enums.items():
        assert name in DEFAULT_LABELS, f"enum {name} has no default labels in resolvers/dictionary/labels.py"
        assert set(DEFAULT_LABELS[name]) == set(enum.values), name
        for code, (zh, en) in DEFAULT_LABELS[name].items():
            assert zh.strip() and en.strip(), (name, code)
    assert set(DEFAULT_LABELS) == set(enums), "labels of an enum the API no longer has"


async def test_admin_reads_every_dictionary_with_labels_in_enum_order(client: GraphQLClient) -> None:
    data = (await client.data(DICTIONARIES, as_="admin"))["dictionaries"]
    by_key = {d["key"]: d for d in data}
    assert set(by_key) == set(schema_enums(full_schema(Query, Mutation, Subscription)))
    gender = by_key["Gender"]["entries"]
    assert [e["code"] for e in gender] == ["MALE", "FEMALE", "OTHER", "UNKNOWN"]
    assert gender[0] == {
        "code": "MALE",
        "labelZh": "男",
        "labelEn": "Male",
        "sortOrder": 0,
        "inUse": True,
        "defaultLabelZh": "男",
        "defaultLabelEn": "Male",
    }
    assert [e["labelZh"] for e in by_key["FollowUpStatus"]["entries"]] == ["待随访", "已完成", "失访", "已取消"]


async def test_each_role_sees_only_the_dictionaries_of_its_own_schema(client: GraphQLClient) -> None:
    admin = {d["key"] for d in (await client.data(DICTIONARIES, as_="admin"))["dictionaries"]}
    physician = {d["key"] for d in (await client.data(DICTIONARIES, as_="physician"))["dictionaries"]}
    patient = {d["key"] for d in (await client.data(DICTIONARIES, as_="patient"))["dictionaries"]}
    assert {"Gender", "VisitType", "FollowUpStatus"} <= physician
    assert "JobRunStatus" in admin and "JobRunStatus" not in physician and "JobRunStatus" not in patient
    assert "DataScope" in patient  # a patient's own profile shows its roles' data scope
    assert physician < admin and patient <= admin
    # asking for one outside the caller's schema names the argument
    result = await client.run(DICTIONARIES, {"keys": ["JobRunStatus"]}, as_="physician")
    assert error_codes(result) == ["BAD_USER_INPUT"] and _field(result) == "keys"
    # anonymous callers have no dictionaries at all
    assert error_codes(await client.run(DICTIONARIES)) == ["GRAPHQL_VALIDATION_FAILED"]


async def test_admin_relabels_a_value_and_everyone_sees_the_new_label(client: GraphQLClient, db: Database) -> None:
    data = await client.data(
        UPDATE, {"d": "FollowUpStatus", "c": "MISSED", "zh": "未能随访", "en": "Not reached"}, as_="admin"
    )
    missed = next(e for e in data["updateDictionaryEntry"]["entries"] if e["code"] == "MISSED")
    assert missed == {"code": "MISSED", "labelZh": "未能随访", "labelEn": "Not reached", "sortOrder": 2, "inUse": True}
    row = (await stored(db, "FollowUpStatus"))["MISSED"]
    assert (row.label_zh, row.label_en, row.in_use) == ("未能随访", "Not reached", True)
    seen = (await client.data(DICTIONARIES, {"keys": ["FollowUpStatus"]}, as_="physician"))["dictionaries"][0]
    entry = next(e for e in seen["entries"] if e["code"] == "MISSED")
    assert (entry["labelZh"], entry["defaultLabelZh"]) == ("未能随访", "失访")
    # out of use, labels kept
    await client.data(UPDATE, {"d": "FollowUpStatus", "c": "MISSED", "u": False}, as_="admin")
    row = (await stored(db, "FollowUpStatus"))["MISSED"]
    assert (row.label_zh, row.in_use) == ("未能随访", False)
    async with db.session() as session:
        events = (
            (await session.execute(select(Event).where(Event.operation == "updateDictionaryEntry"))).scalars().all()
        )
    assert [e.entity_id for e in events] == ["FollowUpStatus.MISSED", "FollowUpStatus.MISSED"]
    assert events[1].detail["after"]["inUse"] is False  # type: ignore[index]


async def test_admin_reorders_a_dictionary(client: GraphQLClient, db: Database) -> None:
    codes = ["WECHAT", "PHONE", "CLINIC"]
    data = await client.data(REORDER, {"d": "FollowUpMethod", "codes": codes}, as_="admin")
    assert [e["code"] for e in data["reorderDictionary"]["entries"]] == codes
    rows = await stored(db, "FollowUpMethod")
    assert {code: row.sort_order for code, row in rows.items()} == {"WECHAT": 0, "PHONE": 1, "CLINIC": 2}
    seen = (await client.data(DICTIONARIES, {"keys": ["FollowUpMethod"]}, as_="physician"))["dictionaries"][0]
    assert [e["code"] for e in seen["entries"]] == codes


async def test_values_cannot_be_invented_and_bad_input_names_the_field(client: GraphQLClient, db: Database) -> None:
    cases = [
        (UPDATE, {"d": "Gender", "c": "NONBINARY", "zh": "x"}, "code"),
        (UPDATE, {"d": "Colour", "c": "RED", "zh": "红"}, "dictionary"),
        (UPDATE, {"d": "Gender", "c": "MALE", "zh": "  "}, "labelZh"),
        (UPDATE, {"d": "Gender", "c": "MALE", "en": "x" * 101}, "labelEn"),
        (UPDATE, {"d": "Gender", "c": "MALE", "zh": "男\u202e性"}, "labelZh"),  # a text-direction override
        (REORDER, {"d": "Gender", "codes": ["MALE", "FEMALE"]}, "codes"),
        (REORDER, {"d": "Gender", "codes": ["MALE", "FEMALE", "OTHER", "UNKNOWN", "NEW"]}, "codes"),
        (REORDER, {"d": "Gender", "codes": ["MALE", "MALE", "OTHER", "UNKNOWN"]}, "codes"),
    ]
    for query, variables, field in cases:
        result = await client.run(query, variables, as_="admin")
        assert error_codes(result) == ["BAD_USER_INPUT"], (variables, result)
        assert _field(result) == field, (variables, result)
    assert await stored(db, "Gender") == {}


async def test_only_admins_change_dictionaries(client: GraphQLClient, db: Database) -> None:
    for username in ["deptadmin", "chief", "physician", "patient"]:
        result = await client.run(UPDATE, {"d": "Gender", "c": "MALE", "zh": "雄"}, as_=username)
        assert error_codes(result) == ["GRAPHQL_VALIDATION_FAILED"], username
        result = await client.run(
            REORDER, {"d": "Gender", "codes": ["FEMALE", "MALE", "OTHER", "UNKNOWN"]}, as_=username
        )
        assert error_codes(result) == ["GRAPHQL_VALIDATION_FAILED"], username
    assert await stored(db, "Gender") == {}

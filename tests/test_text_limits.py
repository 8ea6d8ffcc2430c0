"""Limits in characters, columns in bytes: no text a client may send outgrows its column, on MariaDB as on SQLite.

MariaDB's TEXT holds 65,535 bytes (a Chinese character is 3, an emoji 4): every free-text column is MEDIUMTEXT on
MySQL (16 MB), more than a whole request may be. A value that still does not fit (a VARCHAR a validation forgot)
answers BAD_USER_INPUT, never INTERNAL with the driver's message.
"""

from __future__ import annotations

from sqlalchemy import JSON, String, Text
from sqlalchemy.dialects import mysql
from sqlmodel import SQLModel

from core.db import Database
from core.settings import Settings
from tests.clinical_helpers import gid, patients_of
from tests.conftest import GraphQLClient, error_codes

MEDIUMTEXT_BYTES = (1 << 24) - 1
ARTICLE = "mutation ($i: ArticleInput!) { createArticle(input: $i) { id bodyHtml } }"
VISIT = """
mutation ($i: RecordVisitInput!) { recordVisit(input: $i) { id notes } }
"""
UPDATE = "mutation ($id: ID!, $v: Int!, $i: UpdatePatientInput!) { updatePatient(id: $id, version: $v, input: $i) { version pastHistory } }"


def test_every_text_column_holds_a_whole_request_on_mysql() -> None:
    dialect = mysql.dialect()
    assert Settings.model_fields["max_request_bytes"].default < MEDIUMTEXT_BYTES
    too_small = []
    for table in SQLModel.metadata.tables.values():
        for column in table.columns:
            if isinstance(column.type, JSON) or not isinstance(column.type, Text | String):
                continue
            if isinstance(column.type, String) and not isinstance(column.type, Text) and column.type.length:
                continue  # VARCHAR(n) counts characters on utf8mb4
            compiled = column.type.compile(dialect=dialect)
            if compiled not in ("MEDIUMTEXT", "LONGTEXT"):
                too_small.append(f"{table.name}.{column.name}: {compiled}")
    assert too_small == []


async def test_long_chinese_and_emoji_text_round_trips(client: GraphQLClient, db: Database) -> None:
    body = "术后护理要点：保持肛周清洁，温水坐浴。" * 1_200  # 22,800 characters, 68 kB in UTF-8
    article = await client.data(ARTICLE, {"i": {"title": "长文", "bodyMarkdown": body}}, as_="chief")
    assert len(article["createArticle"]["bodyHtml"].encode()) > 65_535
    patient = (await patients_of(db, "physician"))[0]
    emoji = "😀" * 20_000  # 80 kB
    visit = await client.data(
        VISIT,
        {
            "i": {
                "patientId": gid("Patient", patient.id),
                "visitDate": "2026-11-30",
                "visitType": "OUTPATIENT",
                "notes": emoji,
            }
        },
        as_="physician",
    )
    assert visit["recordVisit"]["notes"] == emoji
    updated = await client.data(
        UPDATE, {"id": gid("Patient", patient.id), "v": patient.version, "i": {"pastHistory": emoji}}, as_="physician"
    )
    assert updated["updatePatient"]["pastHistory"] == emoji


async def test_text_over_the_limit_is_bad_input_naming_the_field(client: GraphQLClient, db: Database) -> None:
    patient = (await patients_of(db, "physician"))[0]
    result = await client.run(
        UPDATE,
        {"id": gid("Patient", patient.id), "v": patient.version, "i": {"pastHistory": "史" * 20_001}},
        as_="physician",
    )
    assert error_codes(result) == ["BAD_USER_INPUT"]
    assert result["errors"][0]["extensions"]["field"] == "pastHistory"

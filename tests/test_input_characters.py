"""Text and ids as people write them: control characters and text-direction overrides are refused in text, and
ids take ASCII digits only."""

from __future__ import annotations

import base64

import pytest

from core.db import Database
from tests.clinical_helpers import gid, patients_of
from tests.conftest import GraphQLClient, error_codes

REGISTER = "mutation ($i: RegisterPatientInput!) { registerPatient(input: $i, allowDuplicate: true) { id name } }"
READ = "query ($id: ID!) { patient(id: $id) { name } }"


@pytest.mark.parametrize("name", ["张\x00三", "张三\u202e主任", "\u2066王五\u2069", "李\x1b四"])
async def test_names_with_control_or_direction_characters_are_refused(client: GraphQLClient, name: str) -> None:
    result = await client.run(REGISTER, {"i": {"name": name}}, as_="physician")
    assert error_codes(result) == ["BAD_USER_INPUT"]
    assert result["errors"][0]["extensions"]["field"] == "name"


async def test_line_breaks_in_free_text_and_plain_names_are_kept(client: GraphQLClient) -> None:
    done = await client.data(
        REGISTER, {"i": {"name": "欧阳 娜娜", "pastHistory": "2019 痔切除\n2021 肛瘘"}}, as_="physician"
    )
    assert done["registerPatient"]["name"] == "欧阳 娜娜"


async def test_ids_take_ascii_digits_only(client: GraphQLClient, db: Database) -> None:
    own = (await patients_of(db, "physician"))[0]
    assert (await client.data(READ, {"id": gid("Patient", own.id)}, as_="admin"))["patient"]
    arabic = base64.urlsafe_b64encode(f"Patient:{chr(0x0660 + own.id)}".encode()).decode().rstrip("=")
    assert own.id < 10
    assert error_codes(await client.run(READ, {"id": arabic}, as_="admin")) == ["NOT_FOUND"]

"""Who reaches a conversation: its two people, and managers of its department by a capability
(`capability:consultation.manage`), not by holding the search field; reads of a patient's messages recorded."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from core.db import Database
from core.ids import decode_id
from models.audit import Event
from models.consultation import Conversation
from tests.clinical_helpers import user_id
from tests.conftest import GraphQLClient, error_codes
from tests.test_consultation_messages import DELETE, PNG, SEARCH, SEND, SYSTEM, UPLOAD, send, start

REVOKE = (
    "mutation ($r: String!, $o: String!, $a: String!) { revokePermission(roleKey: $r, object: $o, action: $a) { key } }"
)
OPEN = """
query ($id: ID!) { conversation(id: $id) { id lastMessage { text }
  messages(first: 20) { edges { node { id text image { dataUrl } } } } } }
"""
# Staff see whether a message was deleted; a patient's schema has no such field.
OPEN_STAFF = """
query ($id: ID!) { conversation(id: $id) { id lastMessage { text }
  messages(first: 20) { edges { node { id text deletedAt } } } } }
"""
LAST = "query ($id: ID!) { conversation(id: $id) { lastMessage { text } } }"
MINE_LAST = "{ myConversations(first: 20) { edges { node { id lastMessage { text } } } } }"


async def revoke(client: GraphQLClient, role: str, coordinate: str, action: str) -> None:
    await client.data(REVOKE, {"r": role, "o": coordinate, "a": action}, as_="admin")


async def texts(client: GraphQLClient, conversation: str, as_: str) -> list[str]:
    found = (await client.data(OPEN, {"id": conversation}, as_=as_))["conversation"]["messages"]["edges"]
    return [edge["node"]["text"] for edge in found]


async def test_managing_conversations_is_a_capability_not_the_search_field(client: GraphQLClient) -> None:
    conversation = await start(client)  # the demo patient and their attending physician, Colorectal Surgery
    await send(client, conversation, "换药后伤口有渗液", "patient")
    own = (await client.data(MINE_LAST, as_="chief"))["myConversations"]["edges"]
    (chiefs_own,) = [edge["node"]["id"] for edge in own]  # the demo conversation the chief takes part in
    assert await texts(client, conversation, "chief") == ["换药后伤口有渗液"]

    # Without the search field the chief no longer searches, but still manages the department's conversations.
    await revoke(client, "chief_physician", "Query.consultationMessages", "read")
    assert set(error_codes(await client.run(SEARCH, {}, as_="chief"))) == {"GRAPHQL_VALIDATION_FAILED"}
    assert await texts(client, conversation, "chief") == ["换药后伤口有渗液"]
    system = (await client.data(SYSTEM, {"c": conversation, "t": "请按时复诊"}, as_="chief"))["postSystemMessage"]
    assert system["kind"] == "SYSTEM"

    # Without the capability the department's conversations are out of the chief's reach, their own are not.
    await revoke(client, "chief_physician", "capability:consultation.manage", "execute")
    assert error_codes(await client.run(OPEN, {"id": conversation}, as_="chief")) == ["NOT_FOUND"]
    assert error_codes(await client.run(SYSTEM, {"c": conversation, "t": "x"}, as_="chief")) == ["NOT_FOUND"]
    assert error_codes(await client.run(DELETE, {"id": system["id"]}, as_="chief")) == ["NOT_FOUND"]
    assert await texts(client, chiefs_own, "chief")  # a participant still reaches their own conversation
    for who in ("patient", "physician"):
        assert await texts(client, conversation, who) == ["请按时复诊", "换药后伤口有渗液"]


async def test_a_manager_sees_what_participants_do_not(client: GraphQLClient) -> None:
    """Deleted messages stay visible (marked) to a manager, gone for the participants; the image of a message
    is reached through the message by whoever reaches the message."""
    conversation = await start(client)
    image = (await client.data(UPLOAD, {"b": PNG, "t": "image/png"}, as_="patient"))["uploadImage"]
    await client.data(SEND, {"c": conversation, "t": "伤口照片", "i": image["id"]}, as_="patient")
    mistake = await send(client, conversation, "发错了", "physician")
    await client.data(DELETE, {"id": mistake["id"]}, as_="chief")

    manager = (await client.data(OPEN_STAFF, {"id": conversation}, as_="chief"))["conversation"]["messages"]["edges"]
    assert [(e["node"]["text"], e["node"]["deletedAt"] is not None) for e in manager] == [
        ("发错了", True),
        ("伤口照片", False),
    ]
    for who in ("chief", "physician", "patient"):
        opened = (await client.data(OPEN, {"id": conversation}, as_=who))["conversation"]
        shown = [edge["node"] for edge in opened["messages"]["edges"] if edge["node"]["text"] == "伤口照片"]
        assert shown[0]["image"]["dataUrl"] == "data:image/png;base64," + PNG
    physician = (await client.data(OPEN, {"id": conversation}, as_="physician"))["conversation"]
    assert [e["node"]["text"] for e in physician["messages"]["edges"]] == ["伤口照片"]
    assert physician["lastMessage"] is None  # the newest message is deleted: not shown to a participant
    assert (await client.data(OPEN, {"id": conversation}, as_="chief"))["conversation"]["lastMessage"][
        "text"
    ] == "发错了"


async def _reads(db: Database, operation: str) -> list[tuple[Any, Any]]:
    async with db.session() as session:
        statement = select(Event.actor_id, Event.patient_id).where(Event.operation == operation).order_by(Event.id)  # type: ignore[arg-type]
        return [tuple(row) for row in (await session.execute(statement)).all()]


async def test_the_last_message_shown_to_staff_is_a_read_of_the_patient(client: GraphQLClient, db: Database) -> None:
    conversation = await start(client)
    await send(client, conversation, "便后出血三天", "patient")
    async with db.session() as session:
        row = await session.get(Conversation, decode_id("Conversation", conversation))
    assert row is not None

    # the patient reading their own conversation is not a read by someone else
    assert (await client.data(LAST, {"id": conversation}, as_="patient"))["conversation"]["lastMessage"]["text"]
    assert (await client.data(MINE_LAST, as_="patient"))["myConversations"]["edges"]
    assert await _reads(db, "conversationLastMessage") == []
    # a manager of the department, and the physician in the conversation, read the patient's message
    assert (await client.data(LAST, {"id": conversation}, as_="chief"))["conversation"]["lastMessage"]["text"]
    listed = (await client.data(MINE_LAST, as_="physician"))["myConversations"]["edges"]
    assert [edge["node"]["lastMessage"]["text"] for edge in listed] == ["便后出血三天"]
    chief, physician = await user_id(db, "chief"), await user_id(db, "physician")
    assert await _reads(db, "conversationLastMessage") == [(chief, row.patient_id), (physician, row.patient_id)]
    assert await _reads(db, "conversationMessages") == []  # the messages list was not opened

    # a last message the viewer may not see reads nothing
    deleted = await send(client, conversation, "发错了", "physician")
    await client.data(DELETE, {"id": deleted["id"]}, as_="chief")
    assert (await client.data(LAST, {"id": conversation}, as_="physician"))["conversation"]["lastMessage"] is None
    assert len(await _reads(db, "conversationLastMessage")) == 2

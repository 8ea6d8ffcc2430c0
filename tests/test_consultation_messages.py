"""Consultations: patient and physician exchange messages; managers search, delete, post system messages."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from core.db import Database
from core.ids import decode_id
from models.audit import Event
from models.consultation import Conversation, Message
from models.moderation import ModerationKeyword
from tests.clinical_helpers import gid, user_id
from tests.conftest import GraphQLClient, error_codes

START = "mutation ($p: ID) { startConsultation(physicianId: $p) { id physicianName patientName unreadCount } }"
SEND = """
mutation ($c: ID!, $t: String, $i: ID) {
  sendMessage(conversationId: $c, text: $t, imageId: $i) { id text kind status senderName sentAt image { id contentType byteSize dataUrl } }
}
"""
MINE = """
{ myConversations(first: 10) { totalCount edges { node { id physicianName patientName unreadCount
  lastMessage { text } messages(first: 10) { edges { node { id text kind status senderName readAt } } } } } } }
"""
READ = "mutation ($c: ID!) { markConversationRead(conversationId: $c) }"
CONVERSATION = "query ($id: ID!) { conversation(id: $id) { id messages(first: 20) { edges { node { id text } } } } }"
SEARCH = """
query ($f: ConsultationMessageFilter, $after: String) {
  consultationMessages(filter: $f, first: 2, after: $after) {
    totalCount pageInfo { hasNextPage endCursor } edges { node { id text senderName deletedAt status kind } }
  }
}
"""
DELETE = "mutation ($id: ID!) { deleteMessage(id: $id) { id deletedAt } }"
SYSTEM = "mutation ($c: ID!, $t: String!) { postSystemMessage(conversationId: $c, content: $t) { id kind text } }"
NOTICE = "mutation ($d: ID!, $t: String!) { postDepartmentNotice(departmentId: $d, content: $t) }"
UPLOAD = "mutation ($b: String!, $t: String!) { uploadImage(contentBase64: $b, contentType: $t) { id contentType byteSize } }"
REVIEW = "mutation ($id: ID!, $a: Boolean!) { reviewMessage(id: $id, approve: $a) { id status } }"
DEPARTMENTS = "{ departments { id code } }"

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64).decode()


async def start(client: GraphQLClient) -> str:
    conversation: dict[str, Any] = (await client.data(START, as_="patient"))["startConsultation"]
    return str(conversation["id"])


async def send(client: GraphQLClient, conversation: str, text: str, as_: str) -> dict[str, Any]:
    message: dict[str, Any] = (await client.data(SEND, {"c": conversation, "t": text}, as_=as_))["sendMessage"]
    return message


async def department_id(client: GraphQLClient, code: str) -> str:
    rows = (await client.data(DEPARTMENTS, as_="admin"))["departments"]
    return str(next(row["id"] for row in rows if row["code"] == code))


async def test_patient_and_physician_exchange_messages_with_unread_counts(client: GraphQLClient) -> None:
    started = (await client.data(START, as_="patient"))["startConsultation"]
    assert started["physicianName"].startswith("陈医生") and started["unreadCount"] == 0
    conversation = started["id"]
    again = (await client.data(START, as_="patient"))["startConsultation"]
    assert again["id"] == conversation  # one conversation per pair

    sent = await send(client, conversation, "术后第三天，有少量出血，正常吗？", "patient")
    assert sent["kind"] == "USER" and sent["status"] == "VISIBLE" and sent["senderName"].startswith("赵患者")

    mine = (await client.data(MINE, as_="physician"))["myConversations"]
    (edge,) = mine["edges"]
    assert edge["node"]["unreadCount"] == 1 and edge["node"]["lastMessage"]["text"].startswith("术后")
    assert edge["node"]["patientName"]
    assert (await client.data(READ, {"c": conversation}, as_="physician"))["markConversationRead"] == 1
    await send(client, conversation, "少量出血属正常，请保持清洁。", "physician")
    mine = (await client.data(MINE, as_="physician"))["myConversations"]
    assert mine["edges"][0]["node"]["unreadCount"] == 0

    patient_view = (await client.data(MINE, as_="patient"))["myConversations"]["edges"][0]["node"]
    assert patient_view["unreadCount"] == 1
    texts = [e["node"]["text"] for e in patient_view["messages"]["edges"]]
    assert texts == ["少量出血属正常，请保持清洁。", "术后第三天，有少量出血，正常吗？"]  # newest first
    first_read = patient_view["messages"]["edges"][1]["node"]["readAt"]
    assert first_read is not None  # the physician read the patient's message


async def test_others_cannot_reach_a_conversation(client: GraphQLClient) -> None:
    conversation = await start(client)
    await send(client, conversation, "hello", "patient")
    for who in ("physician2",):
        result = await client.run(CONVERSATION, {"id": conversation}, as_=who)
        assert error_codes(result) == ["NOT_FOUND"]
        result = await client.run(SEND, {"c": conversation, "t": "intrusion"}, as_=who)
        assert error_codes(result) == ["NOT_FOUND"]
        assert (await client.data(MINE, as_=who))["myConversations"]["totalCount"] == 0
    # A physician has no management operations in their schema.
    result = await client.run(SEARCH, {}, as_="physician")
    assert set(error_codes(result)) == {"GRAPHQL_VALIDATION_FAILED"}
    result = await client.run(DELETE, {"id": gid("ConsultationMessage", 1)}, as_="patient")
    assert set(error_codes(result)) == {"GRAPHQL_VALIDATION_FAILED"}
    # A patient may not open a conversation with a physician who never saw them.
    other = gid("User", await user_id(client_db(client), "physician2"))
    result = await client.run(START, {"p": other}, as_="patient")
    assert error_codes(result) == ["NOT_FOUND"]


def client_db(client: GraphQLClient) -> Database:
    db: Database = client.services.db
    return db


async def test_managers_search_delete_and_post_system_messages(client: GraphQLClient, db: Database) -> None:
    conversation = await start(client)
    before = datetime.now(UTC) - timedelta(seconds=5)
    for text in ("first question", "second question", "third remark"):
        await send(client, conversation, text, "patient")
    reply = await send(client, conversation, "answer to question", "physician")

    page = (await client.data(SEARCH, {"f": {"text": "question"}}, as_="chief"))["consultationMessages"]
    assert page["totalCount"] == 3 and page["pageInfo"]["hasNextPage"]
    rest = (
        await client.data(SEARCH, {"f": {"text": "question"}, "after": page["pageInfo"]["endCursor"]}, as_="chief")
    )["consultationMessages"]
    assert [e["node"]["text"] for e in page["edges"] + rest["edges"]] == [
        "answer to question",
        "second question",
        "first question",
    ]
    by_sender = (await client.data(SEARCH, {"f": {"senderName": "陈医生"}}, as_="chief"))["consultationMessages"]
    assert [e["node"]["text"] for e in by_sender["edges"]] == ["answer to question"]
    physician = gid("User", await user_id(db, "physician"))
    to_physician = (await client.data(SEARCH, {"f": {"recipientId": physician}}, as_="chief"))["consultationMessages"]
    assert to_physician["totalCount"] == 3
    in_window = {"from": before.isoformat(), "to": (datetime.now(UTC) + timedelta(seconds=5)).isoformat()}
    assert (await client.data(SEARCH, {"f": in_window}, as_="chief"))["consultationMessages"]["totalCount"] == 4
    later = {"from": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}
    assert (await client.data(SEARCH, {"f": later}, as_="chief"))["consultationMessages"]["totalCount"] == 0

    deleted = (await client.data(DELETE, {"id": reply["id"]}, as_="chief"))["deleteMessage"]
    assert deleted["deletedAt"] is not None
    patient_texts = [
        e["node"]["text"]
        for e in (await client.data(CONVERSATION, {"id": conversation}, as_="patient"))["conversation"]["messages"][
            "edges"
        ]
    ]
    assert "answer to question" not in patient_texts and len(patient_texts) == 3
    kept = (await client.data(SEARCH, {"f": {"senderName": "陈医生"}}, as_="chief"))["consultationMessages"]
    assert kept["edges"][0]["node"]["deletedAt"] is not None  # kept, marked
    async with db.session() as session:
        events = (await session.execute(select(Event).where(Event.operation == "deleteMessage"))).scalars().all()
    assert [(e.action, e.outcome, e.actor_id) for e in events] == [("delete", "success", await user_id(db, "chief"))]

    system = (await client.data(SYSTEM, {"c": conversation, "t": "门诊时间调整通知"}, as_="chief"))["postSystemMessage"]
    assert system["kind"] == "SYSTEM"
    patient_view = (await client.data(MINE, as_="patient"))["myConversations"]["edges"][0]["node"]
    assert patient_view["unreadCount"] == 1 and patient_view["lastMessage"]["text"] == "门诊时间调整通知"

    # Out of the chief's departments: Gastroenterology is not theirs.
    crs, gi = await department_id(client, "CRS"), await department_id(client, "GI")
    assert (await client.data(NOTICE, {"d": crs, "t": "科室通知：节假日安排"}, as_="chief"))[
        "postDepartmentNotice"
    ] >= 1
    assert error_codes(await client.run(NOTICE, {"d": gi, "t": "x"}, as_="chief")) == ["NOT_FOUND"]
    assert (await client.data(NOTICE, {"d": gi, "t": "x"}, as_="admin"))["postDepartmentNotice"] == 0


async def test_manager_scope_is_the_department(client: GraphQLClient, db: Database) -> None:
    """A conversation of another department is out of a chief's reach; the admin reaches all."""
    conversation = await start(client)
    await send(client, conversation, "hello", "patient")
    async with db.transaction() as session:
        from models.consultation import Conversation
        from models.organisation import Department

        gi = (await session.execute(select(Department.id).where(Department.code == "GI"))).scalar_one()
        physician = await user_id(db, "physician")
        row = (await session.execute(select(Conversation).where(Conversation.physician_id == physician))).scalar_one()
        row.department_id = gi
    only = {"f": {"conversationId": conversation}}
    assert error_codes(await client.run(SEARCH, only, as_="chief")) == ["NOT_FOUND"]  # no longer theirs to manage
    result = await client.run(SYSTEM, {"c": conversation, "t": "x"}, as_="chief")
    assert error_codes(result) == ["NOT_FOUND"]
    assert (await client.data(SEARCH, only, as_="admin"))["consultationMessages"]["totalCount"] == 1


async def test_images_are_uploads_of_the_sender(client: GraphQLClient) -> None:
    conversation = await start(client)
    uploaded = (await client.data(UPLOAD, {"b": PNG, "t": "image/png"}, as_="patient"))["uploadImage"]
    assert uploaded["contentType"] == "image/png" and uploaded["byteSize"] == 72
    sent = (await client.data(SEND, {"c": conversation, "i": uploaded["id"]}, as_="patient"))["sendMessage"]
    assert sent["image"]["dataUrl"] == "data:image/png;base64," + PNG and sent["text"] == ""

    # Not an image, a lie about the type, too large, or somebody else's upload: refused.
    text = base64.b64encode(b"<svg onload=alert(1)>").decode()
    assert error_codes(await client.run(UPLOAD, {"b": text, "t": "image/png"}, as_="patient")) == ["BAD_USER_INPUT"]
    assert error_codes(await client.run(UPLOAD, {"b": text, "t": "image/svg+xml"}, as_="patient")) == ["BAD_USER_INPUT"]
    assert error_codes(await client.run(UPLOAD, {"b": PNG, "t": "image/jpeg"}, as_="patient")) == ["BAD_USER_INPUT"]
    big = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * (600 * 1024)).decode()
    response = await client.post_trusted(UPLOAD, {"b": big, "t": "image/png"}, token=await client.token("patient"))
    assert response.status_code == 413 or error_codes(response.json()) == ["BAD_USER_INPUT"]
    theirs = (await client.data(UPLOAD, {"b": PNG, "t": "image/png"}, as_="physician"))["uploadImage"]
    result = await client.run(SEND, {"c": conversation, "i": theirs["id"]}, as_="patient")
    assert error_codes(result) == ["NOT_FOUND"]
    # An image URL cannot be given at all: imageId is an upload's id.
    result = await client.run(SEND, {"c": conversation, "i": "https://evil.example/x.png"}, as_="patient")
    assert error_codes(result) == ["NOT_FOUND"]


async def test_message_moderation_and_plain_text(client: GraphQLClient, db: Database) -> None:
    async with db.transaction() as session:
        session.add_all(
            [
                ModerationKeyword(keyword="代开处方", category="违规", action="block"),
                ModerationKeyword(keyword="偏方", category="医疗误导", action="hold"),
                ModerationKeyword(keyword="笨蛋", category="辱骂", action="replace"),
            ]
        )
    conversation = await start(client)
    refused = await client.run(SEND, {"c": conversation, "t": "能帮我代开处方吗"}, as_="patient")
    assert error_codes(refused) == ["BAD_USER_INPUT"]
    assert "代开处方" in refused["errors"][0]["message"] and "违规" in refused["errors"][0]["message"]

    masked = await send(client, conversation, "你这个笨蛋", "patient")
    assert masked["text"] == "你这个**" and masked["status"] == "VISIBLE"
    markup = await send(client, conversation, "<script>alert(1)</script> & <b>", "patient")
    assert markup["text"] == "<script>alert(1)</script> & <b>"  # plain text, returned as given

    held = await send(client, conversation, "听说有个偏方很有效", "patient")
    assert held["status"] == "HELD"
    physician_texts = [
        e["node"]["text"]
        for e in (await client.data(CONVERSATION, {"id": conversation}, as_="physician"))["conversation"]["messages"][
            "edges"
        ]
    ]
    assert "听说有个偏方很有效" not in physician_texts
    queue = (await client.data(SEARCH, {"f": {"status": "HELD"}}, as_="chief"))["consultationMessages"]
    assert [e["node"]["id"] for e in queue["edges"]] == [held["id"]]
    assert (await client.data(REVIEW, {"id": held["id"], "a": True}, as_="chief"))["reviewMessage"]["status"] == (
        "VISIBLE"
    )
    physician_texts = [
        e["node"]["text"]
        for e in (await client.data(CONVERSATION, {"id": conversation}, as_="physician"))["conversation"]["messages"][
            "edges"
        ]
    ]
    assert "听说有个偏方很有效" in physician_texts
    async with db.session() as session:
        stored = (await session.execute(select(Message.body).order_by(Message.id))).scalars().all()
    assert "你这个笨蛋" not in stored


async def test_staff_reads_of_messages_are_recorded_as_reads_of_the_patient(
    client: GraphQLClient, db: Database
) -> None:
    conversation = await start(client)
    await send(client, conversation, "便后出血三天", "patient")

    async def reads(operation: str) -> list[Event]:
        async with db.session() as session:
            statement = select(Event).where(Event.operation == operation).order_by(Event.id)  # type: ignore[arg-type]
            return list((await session.execute(statement)).scalars().all())

    # the patient reading their own conversation is not an access by someone else
    await client.data(CONVERSATION, {"id": conversation}, as_="patient")
    assert await reads("conversationMessages") == []
    # the physician in the conversation, and a manager in scope, open it: one read of the patient each
    await client.data(CONVERSATION, {"id": conversation}, as_="physician")
    await client.data(CONVERSATION, {"id": conversation}, as_="chief")
    opened = await reads("conversationMessages")
    patient_user = await user_id(db, "patient")
    async with db.session() as session:
        row = await session.get(Conversation, decode_id("Conversation", conversation))
    assert row is not None and row.patient_user_id == patient_user
    assert [(e.actor_id, e.patient_id, e.action) for e in opened] == [
        (await user_id(db, "physician"), row.patient_id, "read"),
        (await user_id(db, "chief"), row.patient_id, "read"),
    ]
    # a manager's search reads every patient whose messages it shows
    page = (await client.data(SEARCH, {"f": {"text": "出血"}}, as_="chief"))["consultationMessages"]
    assert page["edges"]
    searched = await reads("consultationMessages")
    assert [(e.actor_id, e.patient_id, e.action) for e in searched] == [
        (await user_id(db, "chief"), row.patient_id, "search")
    ]
    # a search that shows nothing reads nobody
    await client.data(SEARCH, {"f": {"text": "no such words"}}, as_="chief")
    assert len(await reads("consultationMessages")) == 1

"""Consultations: conversations, messages, images, unread counts, staff management, `messageAdded`."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime

import strawberry

from core.ids import decode_id, decode_optional_id, encode_id
from models import consultation as m
from models.moderation import ContentStatus
from resolvers import consultation
from resolvers.data.context import Info
from schema.engine.connection import Connection, connection
from schema.moderation import ContentStatusEnum
from schema.upload import UploadedImageType, image_by_id

MessageKindEnum = strawberry.enum(m.MessageKind, name="MessageKind")


def _user_id(pk: int | None) -> strawberry.ID | None:
    return None if pk is None else strawberry.ID(encode_id("User", pk))


@strawberry.type(name="ConsultationMessage", description="Plain text: clients show it as text, never as HTML.")
class ConsultationMessageType:
    id: strawberry.ID
    conversation_id: strawberry.ID
    sender_id: strawberry.ID | None
    recipient_id: strawberry.ID | None
    kind: MessageKindEnum  # type: ignore[valid-type]
    text: str
    sent_at: datetime
    read_at: datetime | None
    status: ContentStatusEnum  # type: ignore[valid-type]
    moderation_reason: str | None
    deleted_at: datetime | None
    _sender: strawberry.Private[int | None]
    _image: strawberry.Private[int | None]

    @classmethod
    def from_row(cls, row: m.Message) -> ConsultationMessageType:
        return cls(
            id=strawberry.ID(encode_id("ConsultationMessage", row.id)),  # type: ignore[arg-type]
            conversation_id=strawberry.ID(encode_id("Conversation", row.conversation_id)),
            sender_id=_user_id(row.sender_id),
            recipient_id=_user_id(row.recipient_id),
            kind=m.MessageKind(row.kind),
            text=row.body,
            sent_at=row.sent_at,
            read_at=row.read_at,
            status=ContentStatus(row.status),
            moderation_reason=row.moderation_reason,
            deleted_at=row.deleted_at,
            _sender=row.sender_id,
            _image=row.image_id,
        )

    @strawberry.field
    async def sender_name(self, info: Info) -> str | None:
        return None if self._sender is None else await info.context.loaders.user_name_by_id.load(self._sender)

    @strawberry.field
    async def image(self, info: Info) -> UploadedImageType | None:
        return None if self._image is None else await image_by_id(info, self._image)


@strawberry.type(name="Conversation")
class ConversationType:
    id: strawberry.ID
    patient_user_id: strawberry.ID
    physician_id: strawberry.ID
    created_at: datetime
    last_message_at: datetime
    _row: strawberry.Private[m.Conversation]

    @classmethod
    def from_row(cls, row: m.Conversation) -> ConversationType:
        return cls(
            id=strawberry.ID(encode_id("Conversation", row.id)),  # type: ignore[arg-type]
            patient_user_id=strawberry.ID(encode_id("User", row.patient_user_id)),
            physician_id=strawberry.ID(encode_id("User", row.physician_id)),
            created_at=row.created_at,
            last_message_at=row.last_message_at,
            _row=row,
        )

    @strawberry.field
    async def physician_name(self, info: Info) -> str | None:
        return await info.context.loaders.user_name_by_id.load(self._row.physician_id)

    @strawberry.field(description="The patient's name, where your patient scope reaches them.")
    async def patient_name(self, info: Info) -> str | None:
        patient = await info.context.loaders.patient_by_id.load(self._row.patient_id)
        return None if patient is None else patient.name

    @strawberry.field(description="Messages to you not read yet.")
    async def unread_count(self, info: Info) -> int:
        return await consultation.unread_count(info.context, self._row)

    @strawberry.field
    async def last_message(self, info: Info) -> ConsultationMessageType | None:
        row = await consultation.last_message(info.context, self._row)
        return None if row is None else ConsultationMessageType.from_row(row)

    @strawberry.field(description="Newest first.")
    async def messages(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> Connection[ConsultationMessageType]:
        page = await consultation.conversation_messages(info.context, self._row, first=first, after=after)
        return connection(page, ConsultationMessageType.from_row)


@strawberry.input
class ConsultationMessageFilter:
    sender_id: strawberry.ID | None = None
    sender_name: str | None = None
    recipient_id: strawberry.ID | None = None
    conversation_id: strawberry.ID | None = None
    text: str | None = None
    from_: datetime | None = strawberry.field(default=None, name="from")
    to: datetime | None = None
    status: ContentStatusEnum | None = None  # type: ignore[valid-type]


@strawberry.type
class ConsultationQuery:
    @strawberry.field(description="Your conversations, most recently active first.")
    async def my_conversations(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> Connection[ConversationType]:
        page = await consultation.my_conversations(info.context, first=first, after=after)
        return connection(page, ConversationType.from_row)

    @strawberry.field
    async def conversation(self, info: Info, id: strawberry.ID) -> ConversationType:
        return ConversationType.from_row(
            await consultation.get_conversation(info.context, decode_id("Conversation", id))
        )

    @strawberry.field(description="Every message of the conversations in your data scope, newest first.")
    async def consultation_messages(
        self,
        info: Info,
        filter: ConsultationMessageFilter | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> Connection[ConsultationMessageType]:
        given = filter or ConsultationMessageFilter()
        filters = consultation.MessageFilter(
            sender_id=decode_optional_id("User", given.sender_id),
            sender_name=given.sender_name,
            recipient_id=decode_optional_id("User", given.recipient_id),
            conversation_id=decode_optional_id("Conversation", given.conversation_id),
            text=given.text,
            since=given.from_,
            until=given.to,
            status=None if given.status is None else given.status.value,
        )
        page = await consultation.search_messages(info.context, filters, first=first, after=after)
        return connection(page, ConsultationMessageType.from_row)


@strawberry.type
class ConsultationMutation:
    @strawberry.mutation(
        description="Open (or return) your conversation with your attending physician, or one who has seen you."
    )
    async def start_consultation(self, info: Info, physician_id: strawberry.ID | None = None) -> ConversationType:
        row = await consultation.start_consultation(info.context, decode_optional_id("User", physician_id))
        return ConversationType.from_row(row)

    @strawberry.mutation(description="Send a message (text, an uploaded image, or both) in your conversation.")
    async def send_message(
        self, info: Info, conversation_id: strawberry.ID, text: str | None = None, image_id: strawberry.ID | None = None
    ) -> ConsultationMessageType:
        row = await consultation.send_message(
            info.context,
            decode_id("Conversation", conversation_id),
            text=text,
            image_id=decode_optional_id("Upload", image_id),
        )
        return ConsultationMessageType.from_row(row)

    @strawberry.mutation(description="Mark the messages to you in a conversation read; returns how many were unread.")
    async def mark_conversation_read(self, info: Info, conversation_id: strawberry.ID) -> int:
        return await consultation.mark_read(info.context, decode_id("Conversation", conversation_id))

    @strawberry.mutation(description="Mark a message deleted (kept and audited; participants no longer see it).")
    async def delete_message(self, info: Info, id: strawberry.ID) -> ConsultationMessageType:
        row = await consultation.delete_message(info.context, decode_id("ConsultationMessage", id))
        return ConsultationMessageType.from_row(row)

    @strawberry.mutation(description="Release a held message to its recipient, or hide it.")
    async def review_message(self, info: Info, id: strawberry.ID, approve: bool) -> ConsultationMessageType:
        row = await consultation.review_message(info.context, decode_id("ConsultationMessage", id), approve=approve)
        return ConsultationMessageType.from_row(row)

    @strawberry.mutation(description="A system message to the patient in one conversation.")
    async def post_system_message(
        self, info: Info, conversation_id: strawberry.ID, content: str
    ) -> ConsultationMessageType:
        row = await consultation.post_system_message(info.context, decode_id("Conversation", conversation_id), content)
        return ConsultationMessageType.from_row(row)

    @strawberry.mutation(
        description="A system notice in every conversation of a department and those below it; returns how many."
    )
    async def post_department_notice(self, info: Info, department_id: strawberry.ID, content: str) -> int:
        return await consultation.post_department_notice(info.context, decode_id("Department", department_id), content)


@strawberry.type
class ConsultationSubscription:
    @strawberry.subscription(description="Messages added to a conversation you take part in or manage.")
    async def message_added(
        self, info: Info, conversation_id: strawberry.ID
    ) -> AsyncGenerator[ConsultationMessageType, None]:
        ctx = info.context
        hub = consultation.broker(ctx.services)
        async with hub.delivering:  # many sockets subscribing at once take their turns at the database too
            row = await consultation.get_conversation(ctx, decode_id("Conversation", conversation_id))
        async with hub.listen(row.id) as queue:  # type: ignore[arg-type]
            while True:
                message_id = await queue.get()
                # The session and roles as they are now, not as when the socket subscribed (an ended session ends
                # the stream): checked as the message arrives, through the look-ups the sockets of one session
                # share (schema/engine/websocket.py SessionChecks), before this delivery waits for its turn.
                await ctx.refresh()
                async with hub.delivering:  # a fan-out to many sockets takes its turn at the database
                    # Scope as it is now: out of reach ends the stream (NOT_FOUND) before anything more is delivered.
                    row = await consultation.get_conversation(ctx, row.id)  # type: ignore[arg-type]
                    message = await consultation.delivered_message(ctx, row, message_id)
                if message is not None:
                    yield ConsultationMessageType.from_row(message)

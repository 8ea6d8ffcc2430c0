"""Messages: participants send and mark read; managers search, delete, review, and post system messages.

Messages are plain text (moderated by the keyword list) with an optional image that must be one of the
sender's own uploads. Which conversation or message an operation reaches is the tables' reach for its
purpose (`participate`, `manage`, `post`): out of reach is NOT_FOUND.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.errors import bad_input, not_found
from core.timeutil import utcnow
from models.consultation import Conversation, Message, MessageKind
from models.moderation import ContentStatus
from models.organisation import Department
from models.user import User
from policies.capabilities import Capability
from policies.scope import subtree
from resolvers.audit.unit import WriteUnit
from resolvers.consultation.broker import broker
from resolvers.data.context import Context
from resolvers.data.pagination import Page
from resolvers.data.tree import department_parents
from resolvers.moderation import moderate, plain_text
from resolvers.upload import attachable

MESSAGE_LIMIT = 2000


async def _append(ctx: Context, unit: WriteUnit, conversation: Conversation, message: Message) -> None:
    unit.add(message)
    await unit.flush()
    await unit.execute(
        (await ctx.data.update(Conversation))
        .where(Conversation.id == conversation.id)
        .values(last_message_id=message.id, last_message_at=message.sent_at)
    )


async def send_message(ctx: Context, conversation_id: int, *, text: str | None, image_id: int | None) -> Message:
    body = plain_text(text, "text", limit=MESSAGE_LIMIT, required=image_id is None)
    moderated = await moderate(ctx, body, "text")
    async with ctx.data.write(operation="sendMessage", action="create", entity_type="Message") as unit:
        conversation = await unit.get(Conversation, conversation_id, purpose="participate")
        if image_id is not None:
            await attachable(unit, image_id)
        me = ctx.principal.user_id
        message = Message(
            conversation_id=conversation.id,
            sender_id=me,
            recipient_id=conversation.physician_id
            if me == conversation.patient_user_id
            else conversation.patient_user_id,
            kind=MessageKind.USER.value,
            body=moderated.text,
            image_id=image_id,
            status=moderated.status.value,
            moderation_reason=moderated.reason,
        )
        await _append(ctx, unit, conversation, message)
        unit.entity_id = str(message.id)
        unit.patient_id = conversation.patient_id
        unit.detail = {"conversation": conversation.id, "status": message.status, "image": image_id is not None}
    if message.status == ContentStatus.VISIBLE.value:
        await broker(ctx.services).publish(conversation.id, message.id)  # type: ignore[arg-type]
    return message


async def mark_read(ctx: Context, conversation_id: int) -> int:
    """Mark every message to me in this conversation read; how many were unread."""
    async with ctx.data.write(operation="markConversationRead", action="update", entity_type="Conversation") as unit:
        conversation = await unit.get(Conversation, conversation_id, purpose="participate")
        marked = await unit.execute(
            (await ctx.data.update(Message, purpose="recipient"))
            .where(Message.conversation_id == conversation.id, Message.read_at.is_(None))
            .values(read_at=utcnow())
        )
        unit.entity_id = str(conversation.id)
        unit.patient_id = conversation.patient_id
        unit.detail = {"marked": marked}
    return marked


# ---- managers: search, delete, review, system messages, department notices -----------------------


@dataclass
class MessageFilter:
    sender_id: int | None = None
    sender_name: str | None = None
    recipient_id: int | None = None
    text: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    status: str | None = None
    conversation_id: int | None = None


def _like(term: str) -> str:
    return "%" + term.strip()[:100].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def search_messages(
    ctx: Context, filters: MessageFilter, *, first: int | None, after: str | None
) -> Page[Message]:
    data = ctx.data
    statement = await data.select(Message, purpose="manage")
    # ids the filter names: within the reach of this search, else NOT_FOUND
    await data.reach_or_not_found(User, filters.sender_id, purpose="sender", what="Sender")
    await data.reach_or_not_found(User, filters.recipient_id, purpose="recipient", what="Recipient")
    await data.reach_or_not_found(Conversation, filters.conversation_id, purpose="manage")
    if filters.sender_id is not None:
        statement = statement.where(Message.sender_id == filters.sender_id)
    if filters.recipient_id is not None:
        statement = statement.where(Message.recipient_id == filters.recipient_id)
    if filters.conversation_id is not None:
        statement = statement.where(Message.conversation_id == filters.conversation_id)
    if filters.sender_name and filters.sender_name.strip():
        pattern = _like(filters.sender_name)
        senders = await data.select(
            User, User.id, purpose="name", then=lambda s: s.where(User.display_name.like(pattern, escape="\\"))
        )
        statement = statement.where(Message.sender_id.in_(senders))
    if filters.text and filters.text.strip():
        statement = statement.where(Message.body.like(_like(filters.text), escape="\\"))
    if filters.since is not None:
        statement = statement.where(Message.sent_at >= filters.since)
    if filters.until is not None:
        statement = statement.where(Message.sent_at < filters.until)
    if filters.status is not None:
        statement = statement.where(Message.status == filters.status)
    page = await data.page(statement, keys=[Message.id], first=first, after=after, descending=True)
    conversation_ids = sorted({message.conversation_id for message in page.items})
    if conversation_ids:
        patients = await data.select(
            Conversation,
            Conversation.patient_id,
            purpose="manage",
            then=lambda s: s.where(Conversation.id.in_(conversation_ids)),
        )
        patient_ids = sorted(set(await data.scalars(patients)))
        await data.record_reads(patient_ids, action="search", operation="consultationMessages")
    return page


async def _managed(unit: WriteUnit, message_id: int) -> tuple[Message, Conversation]:
    message = await unit.get(Message, message_id, purpose="manage")
    return message, await unit.get(Conversation, message.conversation_id, purpose="manage")


async def delete_message(ctx: Context, message_id: int) -> Message:
    """Kept, marked deleted: participants no longer see it, managers see it marked."""
    async with ctx.data.write(operation="deleteMessage", action="delete", entity_type="Message") as unit:
        message, conversation = await _managed(unit, message_id)
        if message.deleted_at is None:
            message.deleted_at = utcnow()
            message.deleted_by_id = ctx.principal.user_id
        unit.entity_id = str(message.id)
        unit.patient_id = conversation.patient_id
    return message


async def review_message(ctx: Context, message_id: int, *, approve: bool) -> Message:
    """A held message is released to its recipient or hidden for good."""
    async with ctx.data.write(operation="reviewMessage", action="update", entity_type="Message") as unit:
        message, conversation = await _managed(unit, message_id)
        if message.status != ContentStatus.HELD.value:
            raise bad_input("Only a held message is reviewed", "id")
        message.status = (ContentStatus.VISIBLE if approve else ContentStatus.HIDDEN).value
        unit.entity_id = str(message.id)
        unit.patient_id = conversation.patient_id
        unit.detail = {"approved": approve}
    if approve:
        await broker(ctx.services).publish(conversation.id, message.id)  # type: ignore[arg-type]
    return message


def _system_message(ctx: Context, conversation: Conversation, text: str) -> Message:
    return Message(
        conversation_id=conversation.id,  # type: ignore[arg-type]
        sender_id=ctx.principal.user_id,  # who posted it, for the record; shown as a system message
        recipient_id=conversation.patient_user_id,
        kind=MessageKind.SYSTEM.value,
        body=text,
    )


async def post_system_message(ctx: Context, conversation_id: int, content: str) -> Message:
    text = plain_text(content, "content", limit=MESSAGE_LIMIT)
    async with ctx.data.write(operation="postSystemMessage", action="create", entity_type="Message") as unit:
        conversation = await unit.get(Conversation, conversation_id, purpose="post")
        message = _system_message(ctx, conversation, text)
        await _append(ctx, unit, conversation, message)
        unit.entity_id = str(message.id)
        unit.patient_id = conversation.patient_id
    await broker(ctx.services).publish(conversation.id, message.id)  # type: ignore[arg-type]
    return message


async def post_department_notice(ctx: Context, department_id: int, content: str) -> int:
    """A system message in every conversation the caller manages of the department and those below it."""
    text = plain_text(content, "content", limit=MESSAGE_LIMIT)
    access = await ctx.access()
    if not access.can(Capability.CONSULTATION_MANAGE) or not access.reaches_department(department_id):
        raise not_found("Department")
    departments = sorted(subtree(department_id, await department_parents(ctx)))
    posted: list[tuple[int, int]] = []
    async with ctx.data.write(operation="postDepartmentNotice", action="create", entity_type="Message") as unit:
        if await unit.find(Department, department_id) is None:
            raise not_found("Department")
        conversations = await unit.objects(
            await ctx.data.select(
                Conversation, purpose="manage", then=lambda s: s.where(Conversation.department_id.in_(departments))
            )
        )
        now = utcnow()
        for conversation in conversations:
            message = _system_message(ctx, conversation, text)
            message.sent_at = now
            await _append(ctx, unit, conversation, message)
            posted.append((conversation.id, message.id))  # type: ignore[arg-type]
        unit.entity_id = str(department_id)
        unit.detail = {"conversations": len(posted)}
    for conversation_id, message_id in posted:
        await broker(ctx.services).publish(conversation_id, message_id)
    return len(posted)

"""Consultations: a patient (their mini-program account) and a physician exchange messages.

Who reaches a conversation: its two people, and staff holding the consultation-management permission
(`Query.consultationMessages` in the policy) for conversations of departments in their data scope.
Anyone else gets NOT_FOUND. Messages are plain text (moderated by the keyword list) with an optional
image that must be one of the sender's own uploads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader

from core.errors import bad_input, not_found
from core.timeutil import utcnow
from models.clinical import Visit
from models.consultation import Conversation, Message, MessageKind
from models.moderation import ContentStatus
from models.patient import Patient
from models.user import User
from policies.capabilities import Capability
from policies.scope import department_filter, subtree
from resolvers.audit.unit import write_unit
from resolvers.data.context import Context, Services
from resolvers.data.pagination import Page, paginate
from resolvers.data.tree import department_parents, scoped_department_ids
from resolvers.moderation import moderate, plain_text
from resolvers.patient import my_patient_id
from resolvers.upload import own_upload_id

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 2000


def is_consultation_staff(ctx: Context) -> bool:
    """Holds the consultation-management capability (decided once per role set)."""
    return Capability.CONSULTATION_MANAGE in ctx.services.policy.capabilities(ctx.principal.schema_roles)


def _participant(ctx: Context) -> ColumnElement[bool]:
    me = ctx.principal.user_id
    if me is None:
        return false()
    return or_(Conversation.patient_user_id == me, Conversation.physician_id == me)


async def staff_clause(ctx: Context) -> ColumnElement[bool]:
    """Conversations a consultation manager reaches: departments in their data scope."""
    if not is_consultation_staff(ctx):
        return false()
    return department_filter(Conversation.department_id, await scoped_department_ids(ctx))  # type: ignore[arg-type]


async def conversation_clause(ctx: Context) -> ColumnElement[bool]:
    return or_(_participant(ctx), await staff_clause(ctx))


async def get_conversation(ctx: Context, conversation_id: int, session: AsyncSession | None = None) -> Conversation:
    statement = select(Conversation).where(Conversation.id == conversation_id, await conversation_clause(ctx))
    if session is not None:
        row = (await session.execute(statement)).scalar_one_or_none()
    else:
        async with ctx.db.session() as own:
            row = (await own.execute(statement)).scalar_one_or_none()
    if row is None:
        raise not_found("Conversation")
    return row


def is_participant(ctx: Context, conversation: Conversation) -> bool:
    return ctx.principal.user_id in (conversation.patient_user_id, conversation.physician_id)


def visible_to_participant(user_id: int | None) -> ColumnElement[bool]:
    """A participant sees messages not deleted, visible or (their own) held for review."""
    return and_(
        Message.deleted_at.is_(None),
        or_(
            Message.status == ContentStatus.VISIBLE.value,
            and_(Message.status == ContentStatus.HELD.value, Message.sender_id == user_id),
        ),
    )


def message_visible(ctx: Context, conversation: Conversation, message: Message) -> bool:
    if not is_participant(ctx, conversation):
        return True  # staff in scope: everything, deleted and held messages marked as such
    if message.deleted_at is not None:
        return False
    return message.status == ContentStatus.VISIBLE.value or (
        message.status == ContentStatus.HELD.value and message.sender_id == ctx.principal.user_id
    )


# ---- conversations -------------------------------------------------------------------------------


async def start_consultation(ctx: Context, physician_id: int | None) -> Conversation:
    """The patient's conversation with their attending physician, or a physician who has seen them."""
    patient_id = await my_patient_id(ctx)
    if patient_id is None:
        raise bad_input("Bind your patient record first", "physicianId")
    async with ctx.db.session() as session:
        patient = await session.get(Patient, patient_id)
        assert patient is not None
        seen_by = set(
            (await session.execute(select(Visit.physician_id).where(Visit.patient_id == patient_id))).scalars().all()
        )
        chosen = physician_id if physician_id is not None else patient.attending_physician_id
        if chosen is None or (chosen != patient.attending_physician_id and chosen not in seen_by):
            raise not_found("Physician")
        physician = await session.get(User, chosen)
        if physician is None:
            raise not_found("Physician")
        existing = (
            await session.execute(
                select(Conversation).where(
                    Conversation.patient_user_id == ctx.principal.user_id, Conversation.physician_id == chosen
                )
            )
        ).scalar_one_or_none()
    if existing is not None:
        return existing
    row = Conversation(
        patient_id=patient_id,
        patient_user_id=ctx.principal.user_id,  # type: ignore[arg-type]
        physician_id=chosen,
        department_id=physician.department_id or patient.department_id,
    )
    async with write_unit(
        ctx,
        operation="startConsultation",
        action="create",
        entity_type="Conversation",
        conflict_message="The conversation already exists",
    ) as unit:
        unit.session.add(row)
        await unit.session.flush()
        unit.entity_id = str(row.id)
        unit.patient_id = patient_id
    return row


async def my_conversations(ctx: Context, *, first: int | None, after: str | None) -> Page[Conversation]:
    return await paginate(
        ctx.reads,
        select(Conversation).where(_participant(ctx)),
        keys=[Conversation.last_message_id, Conversation.id],
        key_of=lambda row: [row.last_message_id, row.id],
        first=first,
        after=after,
        descending=True,
    )


async def conversation_messages(
    ctx: Context, conversation: Conversation, *, first: int | None, after: str | None
) -> Page[Message]:
    statement = select(Message).where(Message.conversation_id == conversation.id)
    if is_participant(ctx, conversation):
        statement = statement.where(visible_to_participant(ctx.principal.user_id))
    page = await paginate(
        ctx.reads, statement, keys=[Message.id], key_of=lambda r: [r.id], first=first, after=after, descending=True
    )
    if page.items and ctx.principal.user_id != conversation.patient_user_id:
        # Staff reading a patient's messages read the patient's record: recorded like any other read.
        await ctx.data.record_reads([conversation.patient_id], action="read", operation="conversationMessages")
    return page


# ---- messages ------------------------------------------------------------------------------------


async def _append(session: AsyncSession, conversation: Conversation, message: Message) -> None:
    session.add(message)
    await session.flush()
    await session.execute(
        update(Conversation)
        .where(Conversation.id == conversation.id)
        .values(last_message_id=message.id, last_message_at=message.sent_at)
    )


async def send_message(ctx: Context, conversation_id: int, *, text: str | None, image_id: int | None) -> Message:
    body = plain_text(text, "text", limit=MESSAGE_LIMIT, required=image_id is None)
    moderated = await moderate(ctx, body, "text")
    async with write_unit(ctx, operation="sendMessage", action="create", entity_type="Message") as unit:
        conversation = await get_conversation(ctx, conversation_id, unit.session)
        if not is_participant(ctx, conversation):
            raise not_found("Conversation")
        if image_id is not None:
            await own_upload_id(ctx, unit.session, image_id)
        me = ctx.principal.user_id
        message = Message(
            conversation_id=conversation.id,  # type: ignore[arg-type]
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
        await _append(unit.session, conversation, message)
        unit.entity_id = str(message.id)
        unit.patient_id = conversation.patient_id
        unit.detail = {"conversation": conversation.id, "status": message.status, "image": image_id is not None}
    if message.status == ContentStatus.VISIBLE.value:
        await broker(ctx.services).publish(conversation.id, message.id)  # type: ignore[arg-type]
    return message


async def mark_read(ctx: Context, conversation_id: int) -> int:
    """Mark every message to me in this conversation read; how many were unread."""
    async with write_unit(ctx, operation="markConversationRead", action="update", entity_type="Conversation") as unit:
        conversation = await get_conversation(ctx, conversation_id, unit.session)
        if not is_participant(ctx, conversation):
            raise not_found("Conversation")
        result: Any = await unit.session.execute(
            update(Message)
            .where(
                Message.conversation_id == conversation.id,
                Message.recipient_id == ctx.principal.user_id,
                Message.read_at.is_(None),
            )
            .values(read_at=utcnow())
        )
        unit.entity_id = str(conversation.id)
        unit.patient_id = conversation.patient_id
        unit.detail = {"marked": int(result.rowcount or 0)}
    return int(result.rowcount or 0)


# ---- staff: search, delete, system messages, department notices ----------------------------------


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
    statement = (
        select(Message).join(Conversation, Conversation.id == Message.conversation_id).where(await staff_clause(ctx))
    )
    if filters.sender_id is not None:
        statement = statement.where(Message.sender_id == filters.sender_id)
    if filters.recipient_id is not None:
        statement = statement.where(Message.recipient_id == filters.recipient_id)
    if filters.conversation_id is not None:
        statement = statement.where(Message.conversation_id == filters.conversation_id)
    if filters.sender_name and filters.sender_name.strip():
        statement = statement.where(
            Message.sender_id.in_(
                select(User.id).where(User.display_name.like(_like(filters.sender_name), escape="\\"))
            )
        )
    if filters.text and filters.text.strip():
        statement = statement.where(Message.body.like(_like(filters.text), escape="\\"))
    if filters.since is not None:
        statement = statement.where(Message.sent_at >= filters.since)
    if filters.until is not None:
        statement = statement.where(Message.sent_at < filters.until)
    if filters.status is not None:
        statement = statement.where(Message.status == filters.status)
    page = await paginate(
        ctx.reads, statement, keys=[Message.id], key_of=lambda r: [r.id], first=first, after=after, descending=True
    )
    conversation_ids = {message.conversation_id for message in page.items}
    if conversation_ids:
        patients = select(Conversation.patient_id).where(Conversation.id.in_(conversation_ids))  # type: ignore[attr-defined]
        async with ctx.reads() as session:
            patient_ids = sorted(set((await session.execute(patients)).scalars().all()))
        await ctx.data.record_reads(patient_ids, action="search", operation="consultationMessages")
    return page


async def _staff_message(ctx: Context, session: AsyncSession, message_id: int) -> tuple[Message, Conversation]:
    row = (
        await session.execute(
            select(Message, Conversation)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(Message.id == message_id, await staff_clause(ctx))
        )
    ).first()
    if row is None:
        raise not_found("Message")
    return row[0], row[1]


async def delete_message(ctx: Context, message_id: int) -> Message:
    """Kept, marked deleted: participants no longer see it, managers see it marked."""
    async with write_unit(ctx, operation="deleteMessage", action="delete", entity_type="Message") as unit:
        message, conversation = await _staff_message(ctx, unit.session, message_id)
        if message.deleted_at is None:
            message.deleted_at = utcnow()
            message.deleted_by_id = ctx.principal.user_id
        unit.entity_id = str(message.id)
        unit.patient_id = conversation.patient_id
    return message


async def review_message(ctx: Context, message_id: int, *, approve: bool) -> Message:
    """A held message is released to its recipient or hidden for good."""
    async with write_unit(ctx, operation="reviewMessage", action="update", entity_type="Message") as unit:
        message, conversation = await _staff_message(ctx, unit.session, message_id)
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
    async with write_unit(ctx, operation="postSystemMessage", action="create", entity_type="Message") as unit:
        conversation = await get_conversation(ctx, conversation_id, unit.session)
        if not is_consultation_staff(ctx):
            raise not_found("Conversation")
        message = _system_message(ctx, conversation, text)
        await _append(unit.session, conversation, message)
        unit.entity_id = str(message.id)
        unit.patient_id = conversation.patient_id
    await broker(ctx.services).publish(conversation.id, message.id)  # type: ignore[arg-type]
    return message


async def post_department_notice(ctx: Context, department_id: int, content: str) -> int:
    """A system message in every conversation of the department and the departments below it."""
    text = plain_text(content, "content", limit=MESSAGE_LIMIT)
    allowed = await scoped_department_ids(ctx)
    if not is_consultation_staff(ctx) or (allowed is not None and department_id not in allowed):
        raise not_found("Department")
    departments = subtree(department_id, await department_parents(ctx))
    if allowed is not None:
        departments &= allowed
    posted: list[tuple[int, int]] = []
    async with write_unit(ctx, operation="postDepartmentNotice", action="create", entity_type="Message") as unit:
        if department_id not in await department_parents(ctx):
            raise not_found("Department")
        conversations = (
            (
                await unit.session.execute(
                    select(Conversation).where(Conversation.department_id.in_(sorted(departments)))
                )
            )
            .scalars()
            .all()
        )
        now = utcnow()
        for conversation in conversations:
            message = _system_message(ctx, conversation, text)
            message.sent_at = now
            await _append(unit.session, conversation, message)
            posted.append((conversation.id, message.id))  # type: ignore[arg-type]
        unit.entity_id = str(department_id)
        unit.detail = {"conversations": len(posted)}
    for conversation_id, message_id in posted:
        await broker(ctx.services).publish(conversation_id, message_id)
    return len(posted)


async def message_in_conversation(ctx: Context, conversation: Conversation, message_id: int) -> Message | None:
    """One message as this viewer may see it (for the subscription), or None."""
    async with ctx.db.session() as session:
        message = await session.get(Message, message_id)
    if message is None or message.conversation_id != conversation.id or not message_visible(ctx, conversation, message):
        return None
    return message


# ---- per-request loaders -------------------------------------------------------------------------


class ConsultationLoaders:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self.unread_by_conversation_id: DataLoader[int, int] = DataLoader(self._unread)
        self.last_message_by_id: DataLoader[int, Message | None] = DataLoader(self._messages)

    async def _unread(self, ids: Sequence[int]) -> list[int]:
        me = self._ctx.principal.user_id
        async with self._ctx.db.session() as session:
            rows = await session.execute(
                select(Message.conversation_id, func.count())
                .where(
                    Message.conversation_id.in_(list(ids)),
                    Message.recipient_id == me,
                    Message.read_at.is_(None),
                    visible_to_participant(me),
                )
                .group_by(Message.conversation_id)
            )
        counts = dict(rows.all())
        return [int(counts.get(pk, 0)) for pk in ids]

    async def _messages(self, ids: Sequence[int]) -> list[Message | None]:
        async with self._ctx.db.session() as session:
            rows = (await session.execute(select(Message).where(Message.id.in_(list(ids))))).scalars().all()
        found = {row.id: row for row in rows}
        return [found.get(pk) for pk in ids]


def consultation_loaders(ctx: Context) -> ConsultationLoaders:
    loaders = ctx.loaders_of(ConsultationLoaders)
    return loaders  # type: ignore[no-any-return]


# ---- fan-out: in process, or through Redis pub/sub when REDIS_URL is set ------------------------

_CHANNEL = "followup:consultation"


class MessageBroker:
    """Tells subscribers of a conversation that a message was added (by id; each subscriber loads it
    through its own access rules). Redis carries the notice to the other instances."""

    def __init__(self, redis_url: str | None) -> None:
        self.redis_url = redis_url
        self.instance = uuid.uuid4().hex
        self._queues: dict[int, set[asyncio.Queue[int]]] = defaultdict(set)
        self._redis: Any = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    def _deliver(self, conversation_id: int, message_id: int) -> None:
        for queue in list(self._queues.get(conversation_id, ())):
            queue.put_nowait(message_id)

    async def publish(self, conversation_id: int, message_id: int) -> None:
        self._deliver(conversation_id, message_id)
        if self.redis_url:
            try:
                await self._start()
                await self._redis.publish(_CHANNEL, f"{self.instance}:{conversation_id}:{message_id}")
            except Exception:
                log.exception("could not broadcast a consultation message notice")

    @contextlib.asynccontextmanager
    async def listen(self, conversation_id: int) -> AsyncIterator[asyncio.Queue[int]]:
        queue: asyncio.Queue[int] = asyncio.Queue()
        self._queues[conversation_id].add(queue)
        try:
            if self.redis_url:
                await self._start()
                await asyncio.wait_for(self._ready.wait(), timeout=5)
            yield queue
        finally:
            self._queues[conversation_id].discard(queue)
            if not self._queues[conversation_id]:
                del self._queues[conversation_id]

    async def _start(self) -> None:
        if self._task is not None:
            return
        from redis.asyncio import Redis

        self._redis = Redis.from_url(self.redis_url, client_name=f"followup-consultation-{self.instance}")
        self._task = asyncio.create_task(self._listen())

    async def _listen(self) -> None:
        delay = 0.2
        while True:
            pubsub = None
            try:
                pubsub = self._redis.pubsub()
                await pubsub.subscribe(_CHANNEL)
                self._ready.set()
                async for notice in pubsub.listen():
                    delay = 0.2
                    if notice.get("type") != "message":
                        continue
                    data = notice["data"]
                    sender, conversation_id, message_id = (
                        data.decode() if isinstance(data, bytes) else str(data)
                    ).split(":")
                    if sender != self.instance:
                        self._deliver(int(conversation_id), int(message_id))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("consultation fan-out connection lost; reconnecting in %.1f s", delay)
            finally:
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None


def broker(services: Services) -> MessageBroker:
    found = services.message_broker
    if found is None:
        found = services.message_broker = MessageBroker(services.settings.redis_url)
    return found  # type: ignore[no-any-return]

"""Conversations and what a viewer reads of them.

Who reaches a conversation, and which of its messages, is the tables' reach (policies/tables.py): its two
people, and holders of `capability:consultation.manage` for conversations of departments in their data
scope. Anyone else gets NOT_FOUND. A participant sees the messages shown to them (not deleted; visible, or
their own held ones); a manager who is not a participant sees every message, deleted and held ones marked.
"""

from __future__ import annotations

from core.errors import bad_input, not_found
from models.clinical import Visit
from models.consultation import Conversation, Message
from models.patient import Patient
from models.user import User
from resolvers.consultation.loaders import MANAGED, SHOWN, LastMessageKey, consultation_loaders
from resolvers.data.context import Context
from resolvers.data.pagination import Page
from resolvers.patient import my_patient_id


def is_participant(ctx: Context, conversation: Conversation) -> bool:
    return ctx.principal.user_id in (conversation.patient_user_id, conversation.physician_id)


def view_of(ctx: Context, conversation: Conversation) -> str:
    """The purpose this viewer reads the conversation's messages with."""
    return SHOWN if is_participant(ctx, conversation) else MANAGED


async def get_conversation(ctx: Context, conversation_id: int) -> Conversation:
    conversation: Conversation = await ctx.data.get(Conversation, conversation_id)
    return conversation


async def my_conversations(ctx: Context, *, first: int | None, after: str | None) -> Page[Conversation]:
    statement = await ctx.data.select(Conversation, purpose="participate")
    return await ctx.data.page(
        statement,
        keys=[Conversation.last_message_id, Conversation.id],
        key_of=lambda row: [row.last_message_id, row.id],
        first=first,
        after=after,
        descending=True,
    )


async def start_consultation(ctx: Context, physician_id: int | None) -> Conversation:
    """The patient's conversation with their attending physician, or a physician who has seen them."""
    patient_id = await my_patient_id(ctx)
    if patient_id is None:
        raise bad_input("Bind your patient record first", "physicianId")
    data = ctx.data
    patient = await data.rows(
        await data.select(
            Patient,
            Patient.attending_physician_id,
            Patient.department_id,
            then=lambda s: s.where(Patient.id == patient_id),
        )
    )
    if not patient:
        raise not_found("Patient")
    attending, patient_department = patient[0]
    seen_by = set(
        await data.scalars(
            await data.select(Visit, Visit.physician_id, then=lambda s: s.where(Visit.patient_id == patient_id))
        )
    )
    chosen = physician_id if physician_id is not None else attending
    if chosen is None or (chosen != attending and chosen not in seen_by):
        raise not_found("Physician")
    # The physician's account and department: a patient's reach covers no staff but their names ("name").
    physician = await data.rows(
        await data.select(User, User.department_id, purpose="name", then=lambda s: s.where(User.id == chosen))
    )
    if not physician:
        raise not_found("Physician")
    me = ctx.principal.user_id
    existing: Conversation | None = await data.first(
        await data.select(
            Conversation,
            purpose="participate",
            then=lambda s: s.where(Conversation.patient_user_id == me, Conversation.physician_id == chosen),
        )
    )
    if existing is not None:
        return existing
    row = Conversation(
        patient_id=patient_id,
        patient_user_id=me,  # type: ignore[arg-type]
        physician_id=chosen,
        department_id=physician[0].department_id or patient_department,
    )
    async with data.write(
        operation="startConsultation",
        action="create",
        entity_type="Conversation",
        conflict_message="The conversation already exists",
    ) as unit:
        unit.add(row)
        await unit.flush()
        unit.entity_id = str(row.id)
        unit.patient_id = patient_id
    return row


# ---- what a viewer reads of a conversation -------------------------------------------------------


async def conversation_messages(
    ctx: Context, conversation: Conversation, *, first: int | None, after: str | None
) -> Page[Message]:
    statement = await ctx.data.select(
        Message, purpose=view_of(ctx, conversation), then=lambda s: s.where(Message.conversation_id == conversation.id)
    )
    page = await ctx.data.page(statement, keys=[Message.id], first=first, after=after, descending=True)
    if page.items and ctx.principal.user_id != conversation.patient_user_id:
        # Staff reading a patient's messages read the patient's record: recorded like any other read.
        await ctx.data.record_reads([conversation.patient_id], action="read", operation="conversationMessages")
    return page


async def last_message(ctx: Context, conversation: Conversation) -> Message | None:
    """The newest message, where this viewer may see it (its read recorded, as the messages list's)."""
    if not conversation.last_message_id:
        return None
    loader = consultation_loaders(ctx).last_message(view_of(ctx, conversation))
    key = LastMessageKey(conversation.last_message_id, conversation.patient_id, conversation.patient_user_id)
    return await loader.load(key)


async def unread_count(ctx: Context, conversation: Conversation) -> int:
    return await consultation_loaders(ctx).unread_by_conversation_id.load(conversation.id)  # type: ignore[arg-type]


async def message_in_conversation(ctx: Context, conversation: Conversation, message_id: int) -> Message | None:
    """One message as this viewer may see it, or None."""
    statement = await ctx.data.select(
        Message,
        purpose=view_of(ctx, conversation),
        then=lambda s: s.where(Message.id == message_id, Message.conversation_id == conversation.id),
    )
    found: Message | None = await ctx.data.first(statement)
    return found


async def delivered_message(ctx: Context, conversation: Conversation, message_id: int) -> Message | None:
    """A message the subscription delivers to this viewer, or None; delivered to anyone but the patient, it
    is a read of the patient's record, recorded like the messages list's."""
    found = await message_in_conversation(ctx, conversation, message_id)
    if found is not None and ctx.principal.user_id != conversation.patient_user_id:
        await ctx.data.record_reads([conversation.patient_id], action="read", operation="messageAdded")
    return found

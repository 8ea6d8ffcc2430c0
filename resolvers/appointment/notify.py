"""Telling a patient about their appointment: a system message in their consultation with the session's
physician (made if they have none yet). Only patients bound to the mini-program can be told.

This is the platform's work on behalf of whoever cancels a session (or of a reminder job): the patient's
conversation is found whoever's reach it lies in, so it is system work (`data.unscoped`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from core.timeutil import utcnow
from models.consultation import Conversation, Message, MessageKind
from models.patient import Patient
from resolvers.audit.unit import WriteUnit
from resolvers.consultation.broker import broker
from resolvers.data.context import Context


async def tell_patient(
    ctx: Context, unit: WriteUnit, *, patient_id: int, physician_id: int, department_id: int | None, text: str
) -> bool:
    """Post `text` as a system message to the patient in this unit; False when the patient has no mini-program
    account to tell."""
    system = ctx.data.unscoped("a system message to a booked patient, in their conversation with the physician")
    account = (await unit.scalars(system.select(Patient.wechat_user_id).where(Patient.id == patient_id)))[0:1]
    if not account or account[0] is None:
        return False
    patient_user = int(account[0])
    conversation = await unit.first(
        system.select(Conversation).where(
            Conversation.patient_user_id == patient_user, Conversation.physician_id == physician_id
        )
    )
    if conversation is None:
        conversation = Conversation(
            patient_id=patient_id, patient_user_id=patient_user, physician_id=physician_id, department_id=department_id
        )
        unit.add(conversation)
        await unit.flush()
    message = Message(
        conversation_id=conversation.id,  # type: ignore[arg-type]
        sender_id=ctx.principal.user_id,  # who caused it, for the record; shown as a system message
        recipient_id=patient_user,
        kind=MessageKind.SYSTEM.value,
        body=text,
        sent_at=utcnow(),
    )
    unit.add(message)
    await unit.flush()
    await unit.execute(
        system.update(Conversation)
        .where(Conversation.id == conversation.id)
        .values(last_message_id=message.id, last_message_at=message.sent_at)
    )
    unit.on_commit(_publisher(ctx, conversation.id, message.id))  # type: ignore[arg-type]
    return True


def _publisher(ctx: Context, conversation_id: int, message_id: int) -> Callable[[], Awaitable[None]]:
    async def publish() -> None:
        await broker(ctx.services).publish(conversation_id, message_id)

    return publish

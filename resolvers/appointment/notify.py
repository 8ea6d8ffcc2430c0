"""Telling a patient about their appointment: a system message in their consultation with the session's
physician (made if they have none yet). Only patients bound to the mini-program can be told.

This is the platform's work on behalf of whoever cancels a session (or of a reminder job): the patient's
conversation is found whoever's reach it lies in, so it is system work (`data.unscoped`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import case, func

from core.timeutil import utcnow
from models.consultation import Conversation, Message, MessageKind
from models.moderation import ContentStatus
from models.patient import Patient
from resolvers.audit.unit import WriteUnit
from resolvers.consultation.broker import broker
from resolvers.data.context import Context


async def tell_patient(
    ctx: Context, unit: WriteUnit, *, patient_id: int, physician_id: int, department_id: int | None, text: str
) -> bool:
    """Post `text` as a system message to the patient in this unit; False when the patient has no mini-program
    account to tell."""
    told = await tell_patients(
        ctx, unit, patient_ids=[patient_id], physician_id=physician_id, department_id=department_id, text=text
    )
    return patient_id in told


async def tell_patients(
    ctx: Context,
    unit: WriteUnit,
    *,
    patient_ids: Sequence[int],
    physician_id: int,
    department_id: int | None,
    text: str,
) -> set[int]:
    """Post `text` as a system message to each of these patients (in their conversation with the physician) in
    this unit, in a constant number of statements however many they are; the patients told (those with a
    mini-program account)."""
    system = ctx.data.unscoped("a system message to booked patients, in their conversations with the physician")
    wanted = sorted(set(patient_ids))
    if not wanted:
        return set()
    accounts: dict[int, int] = {
        int(pid): int(user)
        for pid, user in await unit.rows(
            system.select(Patient.id, Patient.wechat_user_id).where(
                Patient.id.in_(wanted), Patient.wechat_user_id.is_not(None)
            )
        )
    }
    if not accounts:
        return set()
    users = sorted(set(accounts.values()))
    conversations = await _conversations(system, unit, users, physician_id)
    missing = [user for user in users if user not in conversations]
    if missing:
        first_patient = {user: pid for pid, user in sorted(accounts.items(), reverse=True)}
        now = utcnow()
        await unit.insert_many(
            Conversation,
            [
                {
                    "patient_id": first_patient[user],
                    "patient_user_id": user,
                    "physician_id": physician_id,
                    "department_id": department_id,
                    "created_at": now,
                    "last_message_id": 0,
                    "last_message_at": now,
                }
                for user in missing
            ],
        )
        conversations = await _conversations(system, unit, users, physician_id)
    sent_at = utcnow()
    await unit.insert_many(
        Message,
        [
            {
                "conversation_id": conversations[user],
                "sender_id": ctx.principal.user_id,  # who caused it, for the record; shown as a system message
                "recipient_id": user,
                "kind": MessageKind.SYSTEM.value,
                "body": text,
                "image_id": None,
                "status": ContentStatus.VISIBLE.value,
                "moderation_reason": None,
                "sent_at": sent_at,
                "read_at": None,
                "deleted_at": None,
                "deleted_by_id": None,
            }
            for _pid, user in sorted(accounts.items())
        ],
    )
    # This unit's own messages are each conversation's newest: its reads see no later commit (MariaDB's snapshot;
    # SQLite's write lock is held since the unit's first write).
    newest: dict[int, int] = {
        int(conversation): int(message)
        for conversation, message in await unit.rows(
            system.select(Message.conversation_id, func.max(Message.id))
            .where(Message.conversation_id.in_(sorted(set(conversations.values()))))
            .group_by(Message.conversation_id)
        )
    }
    await unit.execute(
        system.update(Conversation)
        .where(Conversation.id.in_(sorted(newest)))
        .values(last_message_id=case(newest, value=Conversation.id), last_message_at=sent_at)
        .execution_options(synchronize_session=False)
    )
    for conversation, message in newest.items():
        unit.on_commit(_publisher(ctx, conversation, message))
    return set(accounts)


async def _conversations(system: Any, unit: WriteUnit, users: list[int], physician_id: int) -> dict[int, int]:
    """patient account -> their conversation with the physician."""
    rows = await unit.rows(
        system.select(Conversation.patient_user_id, Conversation.id).where(
            Conversation.patient_user_id.in_(users), Conversation.physician_id == physician_id
        )
    )
    return {int(user): int(pk) for user, pk in rows}


def _publisher(ctx: Context, conversation_id: int, message_id: int) -> Callable[[], Awaitable[None]]:
    async def publish() -> None:
        await broker(ctx.services).publish(conversation_id, message_id)

    return publish

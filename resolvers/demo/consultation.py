"""Demo data of consultations: the demo patient's conversation with the chief, one message read, one not."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.consultation import Conversation, Message, MessageKind
from models.patient import Patient


async def seed_consultation(
    session: AsyncSession, *, users: dict[str, int], department_id: int, earlier: datetime
) -> None:
    patient = (
        await session.execute(select(Patient).where(Patient.wechat_user_id == users["patient"]))
    ).scalar_one_or_none()
    if patient is None:  # seeded without demo patients (the benchmark data set): no conversation
        return
    conversation = Conversation(
        patient_id=patient.id,  # type: ignore[arg-type]
        patient_user_id=users["patient"],
        physician_id=users["chief"],
        department_id=department_id,
        created_at=earlier,
        last_message_at=earlier,
    )
    session.add(conversation)
    await session.flush()
    for offset, (sender, recipient, text) in enumerate(
        [
            (users["patient"], users["chief"], "张主任您好，复查结果出来了，需要再来门诊吗？"),
            (users["chief"], users["patient"], "结果正常，三个月后复查即可。"),
        ]
    ):
        message = Message(
            conversation_id=conversation.id,  # type: ignore[arg-type]
            sender_id=sender,
            recipient_id=recipient,
            kind=MessageKind.USER.value,
            body=text,
            sent_at=earlier + timedelta(minutes=30 * offset),
            read_at=earlier + timedelta(minutes=30 * offset + 5) if offset == 0 else None,
        )
        session.add(message)
        await session.flush()
        conversation.last_message_id, conversation.last_message_at = message.id, message.sent_at  # type: ignore[assignment]

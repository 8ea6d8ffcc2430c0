"""Per-request loaders of the consultation fields: unread counts and each conversation's newest message.

Both start from the repository, so a batch reaches only what the caller could read one by one. Showing a
patient's message to anyone but the patient is a read of their record, recorded like the messages list's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import NamedTuple

from sqlalchemy import func
from strawberry.dataloader import DataLoader

from models.consultation import Message
from resolvers.data.context import Context

# How a viewer sees a conversation's messages: as a participant (what is shown to them) or as a manager.
SHOWN = "shown"
MANAGED = "manage"


class LastMessageKey(NamedTuple):
    message_id: int
    patient_id: int
    patient_user_id: int


class ConsultationLoaders:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self.unread_by_conversation_id: DataLoader[int, int] = DataLoader(self._unread)
        self._last: dict[str, DataLoader[LastMessageKey, Message | None]] = {
            view: DataLoader(self._last_messages(view)) for view in (SHOWN, MANAGED)
        }

    def last_message(self, view: str) -> DataLoader[LastMessageKey, Message | None]:
        """Messages by id as that view shows them (None where it does not)."""
        return self._last[view]

    async def _unread(self, ids: Sequence[int]) -> list[int]:
        data = self._ctx.data
        statement = await data.select(
            Message,
            Message.conversation_id,
            func.count(),
            purpose=SHOWN,
            then=lambda s: s.where(
                Message.conversation_id.in_(list(ids)),
                Message.recipient_id == self._ctx.principal.user_id,
                Message.read_at.is_(None),
            ).group_by(Message.conversation_id),
        )
        counts = dict(await data.rows(statement))
        return [int(counts.get(pk, 0)) for pk in ids]

    def _last_messages(self, view: str) -> Callable[[Sequence[LastMessageKey]], Awaitable[list[Message | None]]]:
        async def load(keys: Sequence[LastMessageKey]) -> list[Message | None]:
            data = self._ctx.data
            ids = sorted({key.message_id for key in keys})
            statement = await data.select(Message, purpose=view, then=lambda s: s.where(Message.id.in_(ids)))
            found = {row.id: row for row in await data.objects(statement)}
            me = self._ctx.principal.user_id
            read = [key.patient_id for key in keys if key.message_id in found and key.patient_user_id != me]
            await data.record_reads(read, action="read", operation="conversationLastMessage")
            return [found.get(key.message_id) for key in keys]

        return load


def consultation_loaders(ctx: Context) -> ConsultationLoaders:
    return ctx.loaders_of(ConsultationLoaders)

"""Consultation messages as Communication resources, where the caller may read them.

The messages come through the caller's reach for conversations and messages (policies/tables.py): their own
conversations, or with `capability:consultation.manage` those of their departments (deleted and held messages
then marked); and only where the caller's schema shows a message's text.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from models.consultation import Conversation, Message
from resolvers.fhir.common import Built, Shared, View, ref
from resolvers.fhir.registry import ResourceKind, register

if TYPE_CHECKING:
    from resolvers.data.context import Context

MESSAGE = "ConsultationMessage"
STATUS = {"visible": "completed", "held": "on-hold"}


async def _load(ctx: Context, patient_ids: Sequence[int], shared: Shared) -> dict[int, list[Any]]:
    data = ctx.data
    statement = await data.select(
        Conversation,
        columns=("id", "patient_id", "patient_user_id", "physician_id"),
        then=lambda s: s.where(Conversation.patient_id.in_(list(patient_ids))),
    )
    conversations = {
        row.id: row
        for row in data.rows_as(
            Conversation, ("id", "patient_id", "patient_user_id", "physician_id"), await data.rows(statement)
        )
    }
    by_patient: dict[int, list[Any]] = defaultdict(list)
    if not conversations:
        return by_patient
    columns = (
        "id",
        "conversation_id",
        "sender_id",
        "recipient_id",
        "kind",
        "body",
        "status",
        "sent_at",
        "read_at",
        "deleted_at",
    )
    messages = await data.select(
        Message,
        columns=columns,
        then=lambda s: s.where(Message.conversation_id.in_(list(conversations))).order_by(Message.id),
    )
    for message in data.rows_as(Message, columns, await data.rows(messages)):
        conversation = conversations[message.conversation_id]
        by_patient[conversation.patient_id].append((conversation, message))
        for user_id in (message.sender_id, message.recipient_id):
            if user_id is not None and user_id != conversation.patient_user_id:
                shared.want_staff.add(user_id)
    return by_patient


def _party(user_id: int | None, conversation: Any, view: View, *, names: bool) -> dict[str, Any] | None:
    if user_id is None:
        return None
    if user_id == conversation.patient_user_id:
        return ref("Patient", conversation.patient_id)
    return view.staff(user_id, shown=names)


def _communications(rows: list[Any], view: View) -> list[Built]:
    shown = view.shown(MESSAGE)
    names = shown.visible("senderName")
    built = []
    for conversation, message in rows:
        status = "entered-in-error" if message.deleted_at is not None else STATUS.get(message.status, "unknown")
        resource: dict[str, Any] = {
            "resourceType": "Communication",
            "id": str(message.id),
            "meta": {
                "lastUpdated": max(m for m in (message.sent_at, message.read_at, message.deleted_at) if m).isoformat()
            },
            "status": status,
            "category": [{"coding": [{"system": view.systems.code("communication-kind"), "code": message.kind}]}],
            "subject": ref("Patient", conversation.patient_id),
        }
        sent = shown("sentAt", message.sent_at)
        if sent:
            resource["sent"] = sent.isoformat()
        read = shown("readAt", message.read_at)
        if read:
            resource["received"] = read.isoformat()
        sender = _party(message.sender_id, conversation, view, names=names)
        if sender:
            resource["sender"] = sender
        if message.recipient_id is None:  # both participants
            recipients = [
                _party(conversation.patient_user_id, conversation, view, names=names),
                _party(conversation.physician_id, conversation, view, names=names),
            ]
        else:
            recipients = [_party(message.recipient_id, conversation, view, names=names)]
        resource["recipient"] = [party for party in recipients if party]
        text = shown("text", message.body)
        if text:
            resource["payload"] = [{"contentString": text}]
        built.append(Built(resource, None))
    return built


register(
    ResourceKind("consultationMessages", ("Communication",), _load, _communications, gate=(MESSAGE, "text"), order=60)
)

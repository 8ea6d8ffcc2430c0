"""Consultations: a patient (their mini-program account) and a physician exchange messages; managers of the
conversation's department (`capability:consultation.manage`) search, delete, review and post system messages.

conversations.py: reaching conversations and reading them; messages.py: sending and managing messages;
loaders.py: per-request loaders; broker.py: the fan-out to `messageAdded` subscribers.
"""

from __future__ import annotations

from resolvers.consultation.broker import MessageBroker, broker
from resolvers.consultation.conversations import (
    conversation_messages,
    delivered_message,
    get_conversation,
    last_message,
    message_in_conversation,
    my_conversations,
    start_consultation,
    unread_count,
)
from resolvers.consultation.messages import (
    MessageFilter,
    delete_message,
    mark_read,
    post_department_notice,
    post_system_message,
    review_message,
    search_messages,
    send_message,
)

__all__ = [
    "MessageBroker",
    "MessageFilter",
    "broker",
    "conversation_messages",
    "delete_message",
    "delivered_message",
    "get_conversation",
    "last_message",
    "mark_read",
    "message_in_conversation",
    "my_conversations",
    "post_department_notice",
    "post_system_message",
    "review_message",
    "search_messages",
    "send_message",
    "start_consultation",
    "unread_count",
]

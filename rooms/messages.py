"""The messages the room itself writes: a person's message as accepted, and the
server's own lines."""

from __future__ import annotations

import time
import uuid

from rooms.protocol import ChatMessage
from rooms.protocol import MessageFields

SYSTEM_NAME = "Threadroom"  # who system lines are from


def now_ms() -> int:
    """Return the time as the protocol carries it: milliseconds since the epoch."""
    return int(time.time() * 1000)


def user_message(fields: MessageFields, user_id: str, name: str) -> ChatMessage:
    """Stamp validated fields with the sender's registered identity and the time."""
    return ChatMessage(
        id=fields["id"],
        user_id=user_id,
        name=name,
        content=fields["content"],
        role="user",
        created_at=now_ms(),
    )


def system_message(content: str, level: str = "info") -> ChatMessage:
    """Build a system line for the room; ``level`` "error" marks a failure."""
    return ChatMessage(
        level=level,
        id="sys_" + uuid.uuid4().hex,
        user_id="system",
        name=SYSTEM_NAME,
        content=content,
        role="system",
        created_at=now_ms(),
    )

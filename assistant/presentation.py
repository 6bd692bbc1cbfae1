"""What people see of the assistant: thread messages as chat messages, and sentences.

Every sentence the assistant side shows in a room is here, so wording is reviewed in
one place and none of it carries a key, a raw error body or a message text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openai.types.beta.threads import Message
from openai.types.beta.threads import TextContentBlock
from openai.types.beta.threads.run_create_params import AdditionalMessage

# Why a turn produced no (complete) reply, by the turn's status.
FAILURE_SENTENCES = {
    "failed": "The assistant could not answer: {error}",
    "expired": "The assistant's reply expired before it finished.",
    "cancelled": "The assistant's reply was stopped.",
    "incomplete": "The assistant's reply was cut short (it reached its length limit).",
    "timeout": "The assistant took over {timeout} s, so the reply was cancelled.",
}
MODEL_FAILED = "the model failed."
# How a reply that did not complete is shown, by the engine's incomplete reason.
INCOMPLETE_STATUSES = {
    "run_cancelled": "stopped",
    "run_failed": "failed",
    "run_expired": "expired",
}
# What the room is told when the backend itself fails.
BACKEND_UNREACHABLE = "The assistant backend cannot be reached right now."
STORE_BUSY = "The conversation store is busy; the messages will be answered shortly."
BACKEND_REFUSED = "The assistant backend refused the request ({status})."
BACKEND_UNEXPECTED = "The assistant backend sent an unexpected answer."
STREAM_ENDED = "The assistant's stream ended without a result."


def to_chat_message(message: Message, assistant_name: str) -> dict[str, Any]:
    """Convert a thread message into the room's chat message shape."""
    if message.role == "user":
        return _user_chat_message(message)
    chat: dict[str, Any] = {
        "id": message.id,
        "user_id": "assistant",
        "name": assistant_name,
        "content": text_of(message),
        "role": "assistant",
        "created_at": message.created_at * 1000,
    }
    if message.status == "incomplete":
        details = message.incomplete_details
        reason = details.reason if details is not None else ""
        chat["status"] = INCOMPLETE_STATUSES.get(reason, "incomplete")
    return chat


def in_thread_order(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Make ``created_at`` (ms) follow the thread's order.

    A person's message carries the millisecond it was accepted; a reply only the
    second its run gave it (the wire's whole seconds), so a reply written in the
    same second as its question would sort before it in a client that orders by
    time (the original one does).  The thread's order is the true one: each time
    becomes at least the one before it plus 1 ms.
    """
    previous = 0
    for message in messages:
        message["created_at"] = previous = max(message["created_at"], previous + 1)
    return messages


def _user_chat_message(message: Message) -> dict[str, Any]:
    """Rebuild a person's chat message from the metadata it was stored with."""
    meta = message.metadata or {}
    return {
        "id": meta.get("id") or message.id,
        "user_id": meta.get("user_id", ""),
        "name": meta.get("name", "someone"),
        "content": text_of(message),
        "role": "user",
        "created_at": int(meta.get("created_at") or message.created_at * 1000),
        **({"reply_to": meta["reply_to"]} if meta.get("reply_to") else {}),
    }


def thread_message(message: Mapping[str, Any]) -> AdditionalMessage:
    """Shape a chat message as an ``additional_messages`` entry with metadata
    (``reply_to``: the message it answers, when the sender said so)."""
    metadata = {
        "id": message["id"],
        "name": message["name"],
        "user_id": message["user_id"],
        "created_at": str(message["created_at"]),
    }
    if message.get("reply_to"):
        metadata["reply_to"] = message["reply_to"]
    return {"role": "user", "content": message["content"], "metadata": metadata}


def text_of(message: Message) -> str:
    """Join the text blocks of a thread message."""
    return "\n".join(
        part.text.value
        for part in message.content
        if isinstance(part, TextContentBlock)
    )


def failure_sentence(status: str, error: str | None, timeout_s: float) -> str | None:
    """Say in one plain sentence why a turn produced no (complete) reply."""
    template = FAILURE_SENTENCES.get(status)
    if template is None:
        return None
    return template.format(error=error or MODEL_FAILED, timeout=int(timeout_s))

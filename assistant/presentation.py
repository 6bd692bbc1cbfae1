"""What people see of the assistant: thread messages as chat messages, and sentences.

Every sentence the assistant side shows in a room is here, so wording is reviewed in
one place and none of it carries a key, a raw error body or a message text.
"""

from __future__ import annotations

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
    }


def thread_message(message: dict[str, Any]) -> AdditionalMessage:
    """Shape a chat message as an ``additional_messages`` entry with metadata."""
    return {
        "role": "user",
        "content": message["content"],
        "metadata": {
            "id": message["id"],
            "name": message["name"],
            "user_id": message["user_id"],
            "created_at": str(message["created_at"]),
        },
    }


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

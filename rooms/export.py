"""A room's conversation as Markdown, for people to take away."""

from __future__ import annotations

import datetime

from rooms.protocol import ChatMessage

NOTES = {
    "stopped": "stopped",
    "timeout": "timed out",
    "failed": "failed",
    "interrupted": "interrupted",
    "replaced": "replaced by a newer reply",
    "incomplete": "incomplete",
}


def transcript_markdown(
    room: str, messages: list[ChatMessage], now: datetime.datetime
) -> str:
    """Write the conversation as Markdown: a heading, then each message with its
    sender and time (UTC); system lines in italics; how a reply ended, if not
    complete.  People's words are quoted so their Markdown cannot restyle the
    transcript; the assistant's replies keep theirs."""
    lines = [f"# Threadroom: {room}", "", f"Exported {_stamp(now)} (UTC).", ""]
    for message in messages:
        when = _stamp(_time_of(message))
        if message["role"] == "system":
            lines += [f"*{_escape(message['content'])} ({when})*", ""]
            continue
        note = NOTES.get(message.get("status", ""), "")
        suffix = f" ({note})" if note else ""
        lines += [f"**{_escape(message['name'])}** · {when}{suffix}", ""]
        if message["role"] == "assistant":
            lines += [message["content"], ""]
        else:
            lines += [*(f"> {line}" for line in message["content"].split("\n")), ""]
    return "\n".join(lines)


def _time_of(message: ChatMessage) -> datetime.datetime:
    """Return when a message was written (``created_at`` is in milliseconds)."""
    return datetime.datetime.fromtimestamp(message["created_at"] / 1000, datetime.UTC)


def _stamp(moment: datetime.datetime) -> str:
    """Format a time as people read it in a transcript."""
    return moment.strftime("%Y-%m-%d %H:%M")


def _escape(text: str) -> str:
    """Keep a name or a system line from turning into Markdown markup."""
    return "".join("\\" + ch if ch in "\\`*_[]<>#|" else ch for ch in text)

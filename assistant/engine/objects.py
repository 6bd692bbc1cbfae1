"""Build the engine's wire objects (WIRE.md 1.3) with ids and timestamps."""

from __future__ import annotations

import time
import uuid
from typing import Any


def new_id(prefix: str) -> str:
    """Return a fresh id such as ``run_3f2a…``."""
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


def now() -> int:
    """Return the current Unix time in seconds."""
    return int(time.time())


def now_ms() -> int:
    """Return the current Unix time in milliseconds."""
    return int(time.time() * 1000)


def assistant(fields: dict[str, Any]) -> dict[str, Any]:
    """Return a new Assistant."""
    return {
        "id": new_id("asst"),
        "object": "assistant",
        "created_at": now(),
        "name": None,
        "description": None,
        "model": "",
        "instructions": None,
        "tools": [],
        "tool_resources": {},
        "metadata": {},
        "temperature": 1.0,
        "top_p": 1.0,
        "response_format": "auto",
        **fields,
    }


def thread(metadata: dict | None, tool_resources: dict | None) -> dict[str, Any]:
    """Return a new Thread."""
    return {
        "id": new_id("thread"),
        "object": "thread",
        "created_at": now(),
        "metadata": metadata or {},
        "tool_resources": tool_resources or {},
    }


def message(
    thread_id: str,
    role: str,
    content: list[dict],
    created_ms: int | None = None,
    **fields: Any,
) -> dict:
    """Return a new Message made at ``created_ms`` (default: now); user messages
    are ``completed`` at once."""
    created = (now_ms() if created_ms is None else created_ms) // 1000
    return {
        "id": new_id("msg"),
        "object": "thread.message",
        "created_at": created,
        "thread_id": thread_id,
        "status": "completed",
        "incomplete_details": None,
        "completed_at": created,
        "incomplete_at": None,
        "role": role,
        "content": content,
        "assistant_id": None,
        "run_id": None,
        "attachments": [],
        "metadata": {},
        **fields,
    }


def run(thread_id: str, fields: dict[str, Any], expiry_s: int) -> dict[str, Any]:
    """Return a new ``queued`` Run."""
    created = now()
    return {
        "id": new_id("run"),
        "object": "thread.run",
        "created_at": created,
        "thread_id": thread_id,
        "status": "queued",
        "required_action": None,
        "last_error": None,
        "expires_at": created + expiry_s,
        "started_at": None,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": None,
        "incomplete_details": None,
        "usage": None,
        "max_prompt_tokens": None,
        "max_completion_tokens": None,
        "truncation_strategy": {"type": "auto", "last_messages": None},
        "response_format": "auto",
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        **fields,
    }


def step(run: dict[str, Any], details: dict[str, Any]) -> dict[str, Any]:
    """Return a new ``in_progress`` RunStep of ``run``."""
    return {
        "id": new_id("step"),
        "object": "thread.run.step",
        "created_at": now(),
        "run_id": run["id"],
        "assistant_id": run["assistant_id"],
        "thread_id": run["thread_id"],
        "type": details["type"],
        "status": "in_progress",
        "step_details": details,
        "last_error": None,
        "expired_at": None,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": None,
        "metadata": {},
        "usage": None,
    }


def message_text(msg: dict[str, Any]) -> str:
    """Return a message's text blocks joined by newlines; images become "[image]"."""
    parts = []
    for block in msg["content"]:
        if block["type"] == "text":
            parts.append(block["text"]["value"])
        else:
            parts.append("[image]")
    return "\n".join(parts)


def text_block(value: str) -> dict[str, Any]:
    """Return a stored text content block."""
    return {"type": "text", "text": {"value": value, "annotations": []}}


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    """Return a wire usage object."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def add_usage(total: dict | None, more: dict | None) -> dict | None:
    """Return the sum of two usage objects (either may be None)."""
    if not total or not more:
        return total or more
    return usage(
        total["prompt_tokens"] + more["prompt_tokens"],
        total["completion_tokens"] + more["completion_tokens"],
    )

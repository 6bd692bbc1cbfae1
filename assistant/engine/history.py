"""Turn a thread's stored history into the provider's ``ModelRequest``."""

from __future__ import annotations

from typing import Any

from . import objects
from .providers.base import ModelRequest
from .providers.base import ToolCall
from .providers.base import Turn
from .store import Store


def build_request(store: Store, run: dict[str, Any]) -> ModelRequest:
    """Return the model input for the next model call of ``run``."""
    turns: list[Turn] = []
    for item in store.history(run["thread_id"]):
        if item["object"] == "thread.message":
            turns.extend(_message_turns(item))
        elif item["type"] == "tool_calls" and item["status"] == "completed":
            turns.extend(_tool_turns(item))
    functions = tuple(tool for tool in run["tools"] if tool["type"] == "function")
    return ModelRequest(
        model=run["model"],
        instructions=run["instructions"],
        turns=tuple(turns),
        tools=functions,
        temperature=run.get("temperature"),
        top_p=run.get("top_p"),
        max_completion_tokens=run.get("max_completion_tokens"),
        tool_choice=run.get("tool_choice") or "auto",
    )


def _message_turns(message: dict[str, Any]) -> list[Turn]:
    """Return the turn of a message (none for an empty assistant message)."""
    text = objects.message_text(message)
    if message["role"] == "user":
        speaker = (message.get("metadata") or {}).get("name")
        return [Turn("user", text, speaker=speaker)]
    return [Turn("assistant", text)] if text else []


def _tool_turns(step: dict[str, Any]) -> list[Turn]:
    """Return a completed tool step as the call turn plus one output turn per call."""
    calls = step["step_details"]["tool_calls"]
    call_turn = Turn(
        "assistant",
        "",
        tool_calls=tuple(
            ToolCall(c["id"], c["function"]["name"], c["function"]["arguments"])
            for c in calls
        ),
    )
    outputs = [
        Turn("tool", c["function"]["output"] or "", tool_call_id=c["id"]) for c in calls
    ]
    return [call_turn, *outputs]

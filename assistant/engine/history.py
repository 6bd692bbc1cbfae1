"""Turn a thread's stored history into the provider's ``ModelRequest``.

The run's settings shape it: ``truncation_strategy`` chooses which messages the
model sees, ``max_prompt_tokens`` and ``max_completion_tokens`` bound what the run
may still read and write (less what its earlier model calls used), and a forced
``tool_choice`` applies to the first model call of the run only.
"""

from __future__ import annotations

from typing import Any

from . import objects
from .providers.base import ModelRequest
from .providers.base import ToolCall
from .providers.base import Turn
from .providers.base import count_tokens
from .providers.base import estimate_prompt_tokens
from .store import Store

# A block is a message and the tool rounds that follow it: truncation drops or
# keeps whole blocks, so no tool output is left without its call.
Block = list[dict[str, Any]]


class OverBudget(Exception):
    """The run has used its ``max_prompt_tokens`` or ``max_completion_tokens``.

    ``reason`` is the run's ``incomplete_details.reason``.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def build_request(
    store: Store, run: dict[str, Any], context_chars: int | None = None
) -> ModelRequest:
    """Return the model input for the next model call of ``run``.

    Only the newest part of the thread that the model can be shown is read: as
    many messages as ``truncation_strategy`` keeps, as fit ``max_prompt_tokens``,
    and as fit ``context_chars`` (the model's window; the provider trims to it
    exactly), whichever is fewest.

    :raises OverBudget: when the run may read or write no more tokens.
    """
    blocks = _blocks(_recent_items(store, run, context_chars))
    follow_up = bool(blocks) and _answers_own_tools(blocks[-1], run["id"])
    blocks = _truncated(blocks, run)
    turns = _turns(blocks)
    budget = _prompt_budget(run)
    auto = (run.get("truncation_strategy") or {}).get("type", "auto") == "auto"
    while auto and budget is not None and len(blocks) > 1 and _over(run, turns, budget):
        blocks = blocks[1:]  # the oldest messages go first
        turns = _turns(blocks)
    if budget is not None and _over(run, turns, budget):
        raise OverBudget("max_prompt_tokens")
    tool_choice = run.get("tool_choice") or "auto"
    if follow_up and tool_choice != "none":
        tool_choice = "auto"  # forcing again after the outputs would never end
    return ModelRequest(
        model=run["model"],
        instructions=run["instructions"],
        turns=turns,
        tools=tuple(tool for tool in run["tools"] if tool["type"] == "function"),
        temperature=run.get("temperature"),
        top_p=run.get("top_p"),
        max_completion_tokens=_completion_budget(run),
        tool_choice=tool_choice,
        parallel_tool_calls=run.get("parallel_tool_calls", True),
        response_format=run.get("response_format") or "auto",
    )


def _recent_items(
    store: Store, run: dict[str, Any], context_chars: int | None
) -> list[dict[str, Any]]:
    """Return the newest messages and tool steps of the run's thread, oldest first,
    stopping at the first message (a block's start) once one budget is used up:
    older blocks could not reach the model.

    Past ``max_prompt_tokens`` one block more is kept, so that truncation (or
    the refusal) decides on the same blocks as over the whole thread.
    """
    strategy = run.get("truncation_strategy") or {}
    last = (
        strategy.get("last_messages")
        if strategy.get("type") == "last_messages"
        else None
    )
    budget = _prompt_budget(run)
    tokens = count_tokens(run["instructions"]) if budget is not None else 0
    messages = chars = 0
    newest_first = []
    for item in store.recent_history(run["thread_id"]):
        newest_first.append(item)
        if item["object"] != "thread.message":
            functions = [call["function"] for call in _calls(item)]
            outputs = [f["output"] or "" for f in functions]
            chars += sum(len(f["arguments"]) for f in functions)
            chars += sum(len(output) for output in outputs)
            tokens += sum(map(count_tokens, outputs)) if budget is not None else 0
            continue
        messages += 1
        text = objects.message_text(item)
        chars += len(text)
        tokens += count_tokens(text) if budget is not None else 0
        if (
            (last and messages >= last)
            or (context_chars is not None and chars >= context_chars)
            or (budget is not None and tokens > budget)
        ):
            break
    return newest_first[::-1]


def _calls(step: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the tool calls of a tool-call step."""
    return step["step_details"]["tool_calls"]


def _blocks(items: list[dict[str, Any]]) -> list[Block]:
    """Group the items that reach the model into blocks that start at a message."""
    blocks: list[Block] = []
    for item in items:
        if item["object"] == "thread.message":
            blocks.append([item])
        elif item["type"] == "tool_calls" and item["status"] == "completed":
            if blocks:
                blocks[-1].append(item)
            else:
                blocks.append([item])
    return blocks


def _answers_own_tools(block: Block, run_id: str) -> bool:
    """Tell whether the thread ends with tool outputs given to this run."""
    last = block[-1]
    return last["object"] == "thread.run.step" and last["run_id"] == run_id


def _truncated(blocks: list[Block], run: dict[str, Any]) -> list[Block]:
    """Keep the last ``last_messages`` blocks when the strategy says so."""
    strategy = run.get("truncation_strategy") or {}
    last = strategy.get("last_messages")
    if strategy.get("type") == "last_messages" and last:
        return blocks[-last:]
    return blocks


def _turns(blocks: list[Block]) -> tuple[Turn, ...]:
    """Return the turns of the blocks, oldest first."""
    turns: list[Turn] = []
    for item in (item for block in blocks for item in block):
        if item["object"] == "thread.message":
            turns.extend(_message_turns(item))
        else:
            turns.extend(_tool_turns(item))
    return tuple(turns)


def _used(run: dict[str, Any], key: str) -> int:
    """Return the tokens of kind ``key`` the run's earlier model calls used."""
    return (run.get("usage") or {}).get(key, 0)


def _prompt_budget(run: dict[str, Any]) -> int | None:
    """Return the prompt tokens the run may still read, or None for no limit."""
    limit = run.get("max_prompt_tokens")
    return None if limit is None else limit - _used(run, "prompt_tokens")


def _over(run: dict[str, Any], turns: tuple[Turn, ...], budget: int) -> bool:
    """Tell whether a model call with these turns would exceed ``budget``."""
    return estimate_prompt_tokens(run["instructions"], turns) > budget


def _completion_budget(run: dict[str, Any]) -> int | None:
    """Return the completion tokens the run may still write, or None."""
    limit = run.get("max_completion_tokens")
    if limit is None:
        return None
    left = limit - _used(run, "completion_tokens")
    if left <= 0:
        raise OverBudget("max_completion_tokens")
    return left


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

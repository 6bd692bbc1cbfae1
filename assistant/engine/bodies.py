"""Turn validated request bodies into the fields of new or changed wire objects."""

from __future__ import annotations

from typing import Any

from . import objects
from . import validation as v
from .errors import EngineError


def assistant_fields(body: dict, *, partial: bool) -> dict[str, Any]:
    """Return the Assistant fields set by a create (or, ``partial``, modify) body."""
    fields = {
        "model": v.text_field(body, "model", 256, required=not partial),
        "name": v.text_field(body, "name", 256),
        "description": v.text_field(body, "description", 512),
        "instructions": v.text_field(body, "instructions", 256000),
        "tools": v.tools(body),
        "tool_resources": v.field(body, "tool_resources", "object"),
        "metadata": v.metadata(body),
        "temperature": v.bounded(body, "temperature", "number", 0, 2),
        "top_p": v.bounded(body, "top_p", "number", 0, 1),
        "response_format": v.response_format(body),
    }
    # A modify body changes only what it names; explicit nulls are ignored too.
    return {key: value for key, value in fields.items() if value is not None}


def message_fields(body: dict) -> dict[str, Any]:
    """Return ``role``, ``content``, ``attachments`` and ``metadata`` of a message."""
    return {
        "role": v.role(body),
        "content": v.content(body),
        "attachments": v.attachments(body) or [],
        "metadata": v.metadata(body) or {},
    }


def messages_list(body: dict, key: str) -> list[dict[str, Any]]:
    """Return the checked message fields of a list such as ``additional_messages``."""
    items = v.field(body, key, "array") or []
    result = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise EngineError(
                f"Invalid type for '{key}[{index}]': expected an object, but got"
                f" {v.describe(item)} instead.",
                param=f"{key}[{index}]",
            )
        result.append(prefixed(message_fields, item, f"{key}[{index}]"))
    return result


def thread_fields(body: dict) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Return a new Thread and its checked first ``messages`` from a create body."""
    messages = messages_list(body, "messages")
    metadata = v.metadata(body)
    thread = objects.thread(metadata, v.field(body, "tool_resources", "object"))
    return thread, messages


def prefixed(parse: Any, item: dict, prefix: str) -> Any:
    """Run ``parse(item)``, naming the nested ``param`` of any error it raises."""
    try:
        return parse(item)
    except EngineError as exc:
        if exc.param:
            # OpenAI quotes the full path ("Invalid 'messages[0].content': ...").
            full = f"{prefix}.{exc.param}"
            exc.message = exc.message.replace(f"'{exc.param}'", f"'{full}'", 1)
            exc.param = full
        raise


def run_fields(body: dict, assistant: dict[str, Any]) -> dict[str, Any]:
    """Return the Run fields of a create-run body, defaulting to the assistant's."""
    instructions = v.text_field(body, "instructions", 256000)
    if instructions is None:
        instructions = assistant["instructions"] or ""
    extra = v.text_field(body, "additional_instructions", 256000)
    if extra:
        instructions = f"{instructions}\n\n{extra}" if instructions else extra
    tools = v.tools(body)
    fields = {
        "assistant_id": assistant["id"],
        "model": v.text_field(body, "model", 256) or assistant["model"],
        "instructions": instructions,
        "tools": assistant["tools"] if tools is None else tools,
        "metadata": v.metadata(body) or {},
        "temperature": _or(
            v.bounded(body, "temperature", "number", 0, 2), assistant, "temperature"
        ),
        "top_p": _or(v.bounded(body, "top_p", "number", 0, 1), assistant, "top_p"),
        "max_prompt_tokens": v.bounded(body, "max_prompt_tokens", "integer", 256, None),
        "max_completion_tokens": v.bounded(
            body, "max_completion_tokens", "integer", 256, None
        ),
        "tool_choice": v.tool_choice(body) or "auto",
        "response_format": v.response_format(body) or assistant["response_format"],
    }
    _check_named_tool(fields["tool_choice"], fields["tools"])
    parallel = v.field(body, "parallel_tool_calls", "boolean")
    fields["parallel_tool_calls"] = True if parallel is None else parallel
    strategy = v.field(body, "truncation_strategy", "object")
    if strategy is not None:
        fields["truncation_strategy"] = _truncation(strategy)
    return fields


def _check_named_tool(choice: str | dict, tools: list[dict]) -> None:
    """Refuse a ``tool_choice`` that names a function the run does not have."""
    if not isinstance(choice, dict) or choice.get("type") != "function":
        return
    name = choice["function"]["name"]
    names = [(t.get("function") or {}).get("name") for t in tools]
    if name not in names:
        raise EngineError(
            f"Invalid 'tool_choice': the run has no function named '{name}'.",
            param="tool_choice",
        )


def _or(value: Any, assistant: dict[str, Any], key: str) -> Any:
    """Return ``value``, or the assistant's setting when the body gave none."""
    return assistant.get(key) if value is None else value


def _truncation(strategy: dict) -> dict[str, Any]:
    """Return a checked ``truncation_strategy``."""
    kind = strategy.get("type")
    last = strategy.get("last_messages")
    if kind not in ("auto", "last_messages") or not (
        last is None or (v.is_kind(last, "integer") and last >= 1)
    ):
        raise EngineError(
            "Invalid value for 'truncation_strategy': expected type 'auto' or"
            " 'last_messages' with an integer 'last_messages' of at least 1.",
            param="truncation_strategy",
        )
    return {"type": kind, "last_messages": last}


def tool_outputs(body: dict, expected: list[str]) -> dict[str, str]:
    """Return ``{call_id: output}``, requiring each expected call exactly once."""
    items = v.field(body, "tool_outputs", "array", required=True)
    outputs: dict[str, str] = {}
    given = []
    for index, item in enumerate(items):
        param = f"tool_outputs[{index}]"
        if not isinstance(item, dict):
            raise EngineError(
                f"Invalid type for '{param}': expected an object, but got"
                f" {v.describe(item)} instead.",
                param=param,
            )
        call_id = prefixed(
            lambda i: v.field(i, "tool_call_id", "string", required=True), item, param
        )
        output = prefixed(lambda i: v.field(i, "output", "string"), item, param)
        given.append(call_id)
        outputs[call_id] = output or ""
    if sorted(given) != sorted(expected):
        raise EngineError(
            f"Expected tool outputs for call_ids {expected}, got {given}.",
            param="tool_outputs",
        )
    return outputs

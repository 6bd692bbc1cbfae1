"""Check request bodies and queries, raising 400s worded like OpenAI's."""

from __future__ import annotations

import re
from typing import Any

from .errors import EngineError
from .objects import text_block

# JSON Schema's type names and the Python types json.loads makes of each (the
# function tools' argument checks use this table too).
JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
    "null": (type(None),),
}
_ARTICLE = {"integer": "an", "object": "an", "array": "an"}
TOOL_TYPES = ("function", "code_interpreter", "file_search")
TOOL_CHOICES = ("none", "auto", "required")
# The one value ``include[]`` has in v2: file search result contents.  We have no
# file search, so asking for it changes nothing, but it is not an error either.
INCLUDABLE = ("step_details.tool_calls[*].file_search.results[*].content",)
MAX_MESSAGE_CHARS = 256_000  # OpenAI's cap on a message's text
# json.loads turns a valid escaped pair into one code point, so any code point left
# in this range is a lone surrogate: no UTF-8 encoder (nor the next JSON hop) takes it.
_SURROGATE = re.compile("[\ud800-\udfff]")


def describe(value: Any) -> str:
    """Name a JSON value's type with its article, e.g. "an integer"."""
    if value is None:
        return "null"
    for kind, types in JSON_TYPES.items():
        if isinstance(value, types) and not (
            kind != "boolean" and isinstance(value, bool)
        ):
            return f"{_ARTICLE.get(kind, 'a')} {kind}"
    return "an unknown type"


def is_kind(value: Any, kind: str) -> bool:
    """Tell whether a JSON value has the given type (booleans are not numbers)."""
    if isinstance(value, bool) and kind != "boolean":
        return False
    return isinstance(value, JSON_TYPES[kind])


def field(body: dict, key: str, kind: str, *, required: bool = False) -> Any:
    """Return ``body[key]`` checked against ``kind``; None when absent or null."""
    value = body.get(key)
    if value is None:
        if required:
            raise EngineError(f"Missing required parameter: '{key}'.", param=key)
        return None
    if not is_kind(value, kind):
        raise EngineError(
            f"Invalid type for '{key}': expected {_ARTICLE.get(kind, 'a')} {kind},"
            f" but got {describe(value)} instead.",
            param=key,
        )
    return value


def text_field(body: dict, key: str, max_len: int, *, required: bool = False) -> Any:
    """Return a string field, checking its length."""
    value = field(body, key, "string", required=required)
    if value is not None:
        check_length(value, key, max_len)
    return value


def check_length(value: str, param: str, max_len: int) -> None:
    """Refuse a string longer than ``max_len`` with OpenAI's "string too long"."""
    if len(value) > max_len:
        raise EngineError(
            f"Invalid '{param}': string too long. Expected a string with maximum"
            f" length {max_len}, but got a string with length {len(value)} instead.",
            param=param,
        )


def check_unicode(body: Any) -> None:
    """Refuse a body with a lone surrogate in any string or key, naming where."""
    pending: list[tuple[Any, str]] = [(body, "")]
    while pending:  # a loop, not recursion: nesting depth is not ours to trust
        value, path = pending.pop()
        if isinstance(value, str):
            _refuse_surrogate(value, path)
        elif isinstance(value, dict):
            for key, item in reversed(list(value.items())):
                _refuse_surrogate(key, path, in_key=True)
                pending.append((item, f"{path}.{key}" if path else key))
        elif isinstance(value, list):
            for index in reversed(range(len(value))):
                pending.append((value[index], f"{path}[{index}]"))


def _refuse_surrogate(text: str, path: str, *, in_key: bool = False) -> None:
    """Raise a 400 if ``text`` holds a lone surrogate (wording is ours)."""
    found = None if text.isascii() else _SURROGATE.search(text)
    if found is None:
        return
    where = f"'{path}'" if path else "body"
    what = "a property name" if in_key else "string"
    raise EngineError(
        f"Invalid {where}: {what} contains a lone surrogate"
        f" (U+{ord(found.group()):04X}), which is not valid Unicode. Expected text"
        " that can be encoded as UTF-8.",
        param=path or None,
    )


def bounded(body: dict, key: str, kind: str, low: float, high: float | None) -> Any:
    """Return a number field within ``[low, high]``."""
    value = field(body, key, kind)
    if value is not None and value < low:
        raise EngineError(
            f"Invalid '{key}': {kind} below minimum value. Expected a value >= {low},"
            f" but got {value} instead.",
            param=key,
        )
    if value is not None and high is not None and value > high:
        raise EngineError(
            f"Invalid '{key}': {kind} above maximum value. Expected a value <= {high},"
            f" but got {value} instead.",
            param=key,
        )
    return value


def metadata(body: dict, key: str = "metadata") -> dict[str, str] | None:
    """Return checked metadata: at most 16 string keys ≤ 64 chars, values ≤ 512."""
    value = field(body, key, "object")
    if value is None:
        return None
    if len(value) > 16:
        raise EngineError(
            f"Invalid '{key}': too many properties. Expected an object with at most 16"
            f" properties, but got an object with {len(value)} properties instead.",
            param=key,
        )
    for name, item in value.items():
        if len(name) > 64:
            raise EngineError(
                f"Invalid '{key}': key too long. Expected keys with maximum length 64,"
                f" but got a key with length {len(name)} instead.",
                param=key,
            )
        if not isinstance(item, str):
            raise EngineError(
                f"Invalid type for '{key}.{name}': expected a string, but got"
                f" {describe(item)} instead.",
                param=f"{key}.{name}",
            )
        check_length(item, f"{key}.{name}", 512)
    return value


def tools(body: dict) -> list[dict] | None:
    """Return the checked ``tools`` list (function tools need a name)."""
    value = field(body, "tools", "array")
    for index, tool in enumerate(value or []):
        param = f"tools[{index}]"
        if not isinstance(tool, dict) or tool.get("type") not in TOOL_TYPES:
            raise EngineError(
                f"Invalid value for '{param}.type': expected one of 'function',"
                " 'code_interpreter' or 'file_search'.",
                param=f"{param}.type",
            )
        if tool["type"] == "function":
            function = field(tool, "function", "object", required=True)
            field(function, "name", "string", required=True)
    return value


def tool_choice(body: dict) -> str | dict | None:
    """Return the checked ``tool_choice``."""
    value = body.get("tool_choice")
    if value is None or value in TOOL_CHOICES:
        return value
    if isinstance(value, dict) and value.get("type") in TOOL_TYPES:
        if value["type"] != "function" or is_kind(
            (value.get("function") or {}).get("name"), "string"
        ):
            return value
    raise EngineError(
        "Invalid value for 'tool_choice': expected 'none', 'auto', 'required' or"
        ' {"type": "function", "function": {"name": ...}}.',
        param="tool_choice",
    )


def response_format(body: dict) -> str | dict | None:
    """Return the checked ``response_format``."""
    value = body.get("response_format")
    if value is None or value == "auto":
        return value
    if isinstance(value, dict) and value.get("type") in ("text", "json_object"):
        return value
    if isinstance(value, dict) and value.get("type") == "json_schema":
        if is_kind((value.get("json_schema") or {}).get("name"), "string"):
            return value
    raise EngineError(
        "Invalid value for 'response_format': expected 'auto' or an object with"
        " type 'text', 'json_object' or 'json_schema'.",
        param="response_format",
    )


def content(body: dict) -> list[dict]:
    """Return a message's ``content`` (string or parts) as stored content blocks."""
    value = body.get("content")
    if isinstance(value, str):
        if not value:
            raise EngineError(
                "Invalid 'content': string too short. Expected a string with minimum"
                " length 1, but got an empty string instead.",
                param="content",
            )
        check_length(value, "content", MAX_MESSAGE_CHARS)
        return [text_block(value)]
    if not isinstance(value, list) or not value:
        if value is None:
            raise EngineError("Missing required parameter: 'content'.", param="content")
        raise EngineError(
            "Invalid 'content': expected a non-empty string or a non-empty array of"
            " content parts.",
            param="content",
        )
    return [_part(part, f"content[{i}]") for i, part in enumerate(value)]


def _part(part: Any, param: str) -> dict:
    """Convert one request content part into a stored content block."""
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text" and isinstance(part.get("text"), str):
        check_length(part["text"], f"{param}.text", MAX_MESSAGE_CHARS)
        return text_block(part["text"])
    if kind == "image_url" and is_kind(
        (part.get("image_url") or {}).get("url"), "string"
    ):
        detail = part["image_url"].get("detail") or "auto"
        return {
            "type": kind,
            "image_url": {"url": part["image_url"]["url"], "detail": detail},
        }
    if kind == "image_file" and is_kind(
        (part.get("image_file") or {}).get("file_id"), "string"
    ):
        detail = part["image_file"].get("detail") or "auto"
        file_id = part["image_file"]["file_id"]
        return {"type": kind, "image_file": {"file_id": file_id, "detail": detail}}
    raise EngineError(
        f"Invalid '{param}': expected a text, image_url or image_file content part.",
        param=param,
    )


def role(body: dict) -> str:
    """Return the checked message ``role``."""
    value = field(body, "role", "string", required=True)
    if value not in ("user", "assistant"):
        raise EngineError(
            f"Invalid value: '{value}'. Supported values are: 'user' and 'assistant'.",
            param="role",
        )
    return value


def attachments(body: dict) -> list | None:
    """Return the checked ``attachments`` list."""
    value = field(body, "attachments", "array")
    for index, item in enumerate(value or []):
        if not isinstance(item, dict):
            raise EngineError(
                f"Invalid type for 'attachments[{index}]': expected an object, but got"
                f" {describe(item)} instead.",
                param=f"attachments[{index}]",
            )
    return value


def list_query(args: dict) -> tuple[int, str, str | None, str | None]:
    """Return ``limit``, ``order``, ``after`` and ``before`` of a list request."""
    raw = args.get("limit", "20")
    try:
        limit = int(raw)
    except ValueError:
        raise EngineError(
            f"Invalid 'limit': expected an integer, but got '{raw}' instead.",
            param="limit",
        ) from None
    bounded({"limit": limit}, "limit", "integer", 1, 100)
    order = args.get("order", "desc")
    if order not in ("asc", "desc"):
        raise EngineError(
            f"Invalid value: '{order}'. Supported values are: 'asc' and 'desc'.",
            param="order",
        )
    return limit, order, args.get("after") or None, args.get("before") or None


def include_values(values: list[str]) -> list[str]:
    """Return the checked values of an ``include[]`` query."""
    for value in values:
        if value not in INCLUDABLE:
            raise EngineError(
                f"Invalid value: '{value}'. Supported values are: '{INCLUDABLE[0]}'.",
                param="include",
            )
    return values

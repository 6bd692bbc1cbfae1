"""The offline demo model: deterministic, word by word, and honest about what it is.

It never claims to be a real model.  Its reply greets the latest speaker by name and
repeats, briefly, who said what in the room.  It understands a few requests:

- "who are you" / "what model": it says it is Threadroom's offline demo model;
- the time ("what time is it", "time in Tokyo") -> ``get_current_time``;
- cat trivia or a cat fact -> ``get_daily_cat_trivia``;
- a cat picture or photo -> ``get_cat_picture_of_the_day``;
- arithmetic ("2+3*4", "what is 12 / 4") -> ``calculate``;
- a tool's own name typed in the message -> that tool;
- "count to 300": the numbers, one word each (a long reply, for token limits);
- "your settings": the temperature and top_p it was given.

Tools are called only when the request offers them.  When the last turns are the
outputs of its calls, it answers from them.  "please fail" or "simulate failure"
makes it raise ``ProviderError("The demo model was asked to fail.")``, which tests
use to exercise the failure path of a run.

It follows the run's settings visibly, so an Assistants client can see each one:
``tool_choice`` "none" (no call), "required" (the asked-for tool, else the first
one offered) or a named function (that one); ``parallel_tool_calls`` (several
asked-for tools in one step, else only the first); ``response_format``
``json_object`` (``{"reply": …}``) and ``json_schema`` (an instance of the schema
with the reply in its first string property); ``max_completion_tokens`` (the reply
stops there, ``Finish("max_tokens")``).  Its usage counts words.
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

from assistant.timezones import zone_key

from .base import Finish
from .base import ModelRequest
from .base import ProviderError
from .base import ProviderEvent
from .base import TextDelta
from .base import ToolCall
from .base import ToolCallDelta
from .base import Turn
from .base import Usage
from .base import count_tokens
from .base import estimate_prompt_tokens

# The cities the demo looks for in a message (their zones come from the time
# tool's table); a short list, so words like "female" never find "Malé".
CITIES = (
    "tokyo",
    "london",
    "paris",
    "berlin",
    "new york",
    "los angeles",
    "san francisco",
    "sydney",
    "mumbai",
)
FAIL = re.compile(r"\bplease fail\b|\bsimulate (?:a )?failure\b", re.I)
IDENTITY = re.compile(r"\bwho are you\b|\bwhat model\b|\bwhich model\b", re.I)
TIME = re.compile(
    r"\bwhat time\b|\bwhat's the time\b|\btime in\b|\bcurrent time\b", re.I
)
CAT = re.compile(r"\bcats?\b|\bkitt(?:y|en)s?\b", re.I)
TRIVIA = re.compile(r"\btrivia\b|\bfacts?\b", re.I)
PICTURE = re.compile(r"\bpictures?\b|\bphotos?\b|\bimages?\b|\bpics?\b", re.I)
NUMBER = r"\(*\s*\d+(?:\.\d+)?\s*\)*"
EXPRESSION = re.compile(rf"{NUMBER}(?:\s*[-+*/%^]\s*{NUMBER})+")
MATH_WORDS = re.compile(
    r"\bwhat(?: is|'s)\b|\bcalculate\b|\bcompute\b|\bhow much\b", re.I
)
COUNT = re.compile(r"\bcount to (\d{1,4})\b", re.I)
SETTINGS = re.compile(r"\byour (?:sampling )?settings\b", re.I)
MAX_COUNT = 2000
TOOL_CALL_TOKENS = 10  # the usage the demo reports for a step of tool calls
QUOTE_WORDS = 12
OTHER_SPEAKERS = 2


class DemoProvider:
    """Offline, deterministic stand-in for a model."""

    name = "demo"

    def __init__(self, delay_ms: int = 0) -> None:
        self.delay_s = max(delay_ms, 0) / 1000

    def stream(self, request: ModelRequest) -> Iterator[ProviderEvent]:
        """Yield tool calls or a reply, word by word, then the usage."""
        prompt_tokens = estimate_prompt_tokens(request.instructions, request.turns)
        outputs = trailing_tool_outputs(request.turns)
        if outputs:
            reply = " ".join(answer_tool(call, output) for call, output in outputs)
        else:
            latest = latest_user_turn(request.turns)
            text = latest.content if latest else ""
            if FAIL.search(text):
                raise ProviderError("The demo model was asked to fail.")
            calls = choose_calls(text, request)
            if calls:
                for index, (name, arguments) in enumerate(calls):
                    yield from tool_call_deltas(name, arguments, index)
                yield Usage(prompt_tokens, TOOL_CALL_TOKENS)
                yield Finish("tool_calls")
                return
            reply = compose_reply(request)
        reply = formatted(reply, request.response_format)
        words = re.findall(r"\S+\s*", reply)
        limit = request.max_completion_tokens
        cut = limit is not None and len(words) > limit
        for index, word in enumerate(words[:limit] if cut else words):
            if index and self.delay_s:
                time.sleep(self.delay_s)
            yield TextDelta(word)
        if cut:
            yield Usage(prompt_tokens, limit or 0)
            yield Finish("max_tokens")
            return
        yield Usage(prompt_tokens, count_tokens(reply))


def latest_user_turn(turns: tuple[Turn, ...]) -> Turn | None:
    """Return the most recent user turn."""
    return next((turn for turn in reversed(turns) if turn.role == "user"), None)


def offered_tools(request: ModelRequest) -> list[str]:
    """Return the function names the request allows calling, in its order."""
    if request.tool_choice == "none":
        return []
    return [tool["function"]["name"] for tool in request.tools if tool.get("function")]


def choose_calls(text: str, request: ModelRequest) -> list[tuple[str, dict]]:
    """Return the calls to make, with their arguments, as the settings allow."""
    names = offered_tools(request)
    choice = request.tool_choice
    if isinstance(choice, dict):
        wanted = [choice.get("function", {}).get("name")]
    else:
        wanted = asked_tools(text, names)
        if not wanted and choice == "required":
            wanted = names[:1]
        if not request.parallel_tool_calls:
            wanted = wanted[:1]
    return [(name, tool_arguments(name, text)) for name in wanted if name in names]


def asked_tools(text: str, names: list[str]) -> list[str]:
    """Return the offered tools a message asks for: named ones first, then topics."""
    lowered = text.lower()
    wanted = [name for name in sorted(names) if name.lower() in lowered]
    if TIME.search(text):
        wanted.append("get_current_time")
    if CAT.search(text) and TRIVIA.search(text):
        wanted.append("get_daily_cat_trivia")
    if CAT.search(text) and PICTURE.search(text):
        wanted.append("get_cat_picture_of_the_day")
    if find_expression(text):
        wanted.append("calculate")
    return [name for name in dict.fromkeys(wanted) if name in names]


def tool_arguments(name: str, text: str) -> dict:
    """Return the arguments the demo passes to a tool for a message."""
    if name == "get_current_time":
        return {"timezone": find_timezone(text.lower())}
    if name == "calculate":
        return {"expression": find_expression(text, loose=True) or text}
    return {}


def find_timezone(lowered: str) -> str:
    """Return the IANA zone of a city named in the text, else "UTC"."""
    city = next((city for city in CITIES if city in lowered), None)
    return (zone_key(city) if city else None) or "UTC"


def find_expression(text: str, loose: bool = False) -> str | None:
    """Return an arithmetic expression the text asks to evaluate."""
    match = EXPRESSION.search(text)
    if not match:
        return None
    expression = " ".join(match.group().split())
    bare = text.strip(" ?!.=").strip() == match.group().strip()
    return expression if loose or bare or MATH_WORDS.search(text) else None


def tool_call_deltas(
    name: str, arguments: dict, index: int = 0
) -> Iterator[ToolCallDelta]:
    """Yield one call: id and name first, then the JSON arguments in 2-4 pieces."""
    yield ToolCallDelta(index=index, id=f"call_{uuid.uuid4().hex}", name=name)
    encoded = json.dumps(arguments)
    pieces = min(4, max(2, len(encoded) // 8))
    size = math.ceil(len(encoded) / pieces)
    for start in range(0, len(encoded), size):
        yield ToolCallDelta(index=index, arguments=encoded[start : start + size])


def trailing_tool_outputs(turns: tuple[Turn, ...]) -> list[tuple[ToolCall, str]]:
    """Return (call, output) pairs when the last turns answer the model's calls."""
    outputs: list[Turn] = []
    for turn in reversed(turns):
        if turn.role != "tool":
            calls = {call.id: call for call in turn.tool_calls}
            return [
                (calls[out.tool_call_id], out.content)
                for out in reversed(outputs)
                if out.tool_call_id in calls
            ]
        outputs.append(turn)
    return []


def parse_json(text: str) -> Any:
    """Decode JSON text, or return None."""
    try:
        return json.loads(text)
    except ValueError:
        return None


def answer_tool(call: ToolCall, output: str) -> str:
    """Say what a tool returned, in one sentence."""
    data = parse_json(output)
    data = data if isinstance(data, dict) else {}
    if output.startswith("Error") or "error" in data:
        return f"The tool {call.name} reported an error: {data.get('error', output)}"
    args = parse_json(call.arguments) or {}
    if call.name == "get_current_time":
        zone = data.get("timezone") or args.get("timezone", "UTC")
        when = data.get("time") or output
        date = f" on {data['date']}" if data.get("date") else ""
        return f"The current time in {zone} is {when}{date}."
    if call.name == "calculate":
        expression = data.get("expression") or args.get("expression", "")
        return f"{expression} = {data.get('result', output)}"
    if call.name == "get_daily_cat_trivia":
        return f"Cat trivia: {data.get('trivia', output)}"
    if call.name == "get_cat_picture_of_the_day" and data.get("url"):
        title = f" ({data['title']})" if data.get("title") else ""
        return f"![Cat picture of the day]({data['url']}){title}"
    return f"The tool {call.name} returned: {output}"


def quote(text: str) -> str:
    """Return a short quotation of a message."""
    words = text.split()
    short = " ".join(words[:QUOTE_WORDS])
    return f"“{short}…”" if len(words) > QUOTE_WORDS else f"“{short}”"


def compose_reply(request: ModelRequest) -> str:
    """Answer the latest message: a count, the settings, or a greeting and quotes."""
    latest = latest_user_turn(request.turns)
    text = latest.content if latest else ""
    count = COUNT.search(text)
    if count:
        return " ".join(str(n) for n in range(1, min(int(count[1]), MAX_COUNT) + 1))
    if SETTINGS.search(text):
        return (
            f"For this run I was given temperature {setting(request.temperature)}"
            f" and top_p {setting(request.top_p)}."
        )
    return greet(request.turns)


def setting(value: float | None) -> str:
    """Say a sampling setting: its value, or that none was given."""
    return "default" if value is None else f"{value:g}"


def formatted(reply: str, response_format: str | dict) -> str:
    """Return the reply in the requested response format."""
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "json_object":
        return json.dumps({"reply": reply})
    if kind == "json_schema" and isinstance(response_format, dict):
        schema = (response_format.get("json_schema") or {}).get("schema") or {}
        return json.dumps(schema_instance(schema, [reply]))
    return reply


def schema_instance(schema: dict, texts: list[str]) -> Any:
    """Return a value that fits a JSON schema: the first string gets ``texts[0]``.

    Covers what structured outputs allow: objects (every property given), arrays
    (empty), enums and consts (their first value), strings, numbers, booleans.
    """
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        return {name: schema_instance(sub, texts) for name, sub in properties.items()}
    if kind == "string":
        return texts.pop(0) if texts else ""
    defaults = {"array": [], "integer": 0, "number": 0, "boolean": False}
    return defaults.get(kind) if isinstance(kind, str) else None


def greet(turns: tuple[Turn, ...]) -> str:
    """Greet the latest speaker and show who said what earlier in the room."""
    users = [turn for turn in turns if turn.role == "user"]
    if not users:
        return "Hello! I am the offline demo model. Say something and I will echo it."
    latest = users[-1]
    who = latest.speaker or "there"
    if IDENTITY.search(latest.content):
        return (
            f"Hi {who}! I am Threadroom's offline demo model, not a real AI model: I"
            " repeat what I hear and can call the built-in tools."
        )
    parts = [f"Hi {who}! You said: {quote(latest.content)}."]
    seen = {latest.speaker}
    for turn in reversed(users[:-1]):
        if len(seen) > OTHER_SPEAKERS:
            break
        if turn.speaker not in seen:
            seen.add(turn.speaker)
            parts.append(
                f"Earlier, {turn.speaker or 'someone'} said: {quote(turn.content)}."
            )
    return " ".join(parts)

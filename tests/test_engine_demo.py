"""The offline demo model: replies, tool calls, tool answers, failure."""

from __future__ import annotations

import json

import pytest

from assistant.engine.providers import select_provider
from assistant.engine.providers.base import ModelRequest
from assistant.engine.providers.base import ProviderError
from assistant.engine.providers.base import TextDelta
from assistant.engine.providers.base import ToolCall
from assistant.engine.providers.base import ToolCallDelta
from assistant.engine.providers.base import Turn
from assistant.engine.providers.base import Usage
from assistant.engine.providers.demo import DemoProvider

TOOL_NAMES = ("get_current_time", "calculate", "get_daily_cat_trivia")
TOOLS = tuple(
    {"type": "function", "function": {"name": name}}
    for name in (*TOOL_NAMES, "get_cat_picture_of_the_day")
)


def run_demo(*turns: Turn, tools: tuple = TOOLS) -> list:
    """Return every event the demo model yields for the turns."""
    request = ModelRequest(model="demo", instructions="", turns=turns, tools=tools)
    return list(DemoProvider().stream(request))


def text_of(events: list) -> str:
    """Join the text deltas."""
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def call_of(events: list) -> tuple[str, dict]:
    """Return the name and decoded arguments of the single tool call."""
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert deltas[0].id.startswith("call_") and 3 <= len(deltas) <= 5
    assert all(d.id is None and d.name is None for d in deltas[1:])
    return deltas[0].name, json.loads("".join(d.arguments for d in deltas))


def test_greets_latest_speaker_and_quotes_the_room():
    events = run_demo(
        Turn("user", "I like tea", speaker="Bob"),
        Turn("user", "hello bot", speaker="Alice"),
    )
    assert text_of(events) == (
        "Hi Alice! You said: “hello bot”. Earlier, Bob said: “I like tea”."
    )
    assert sum(isinstance(e, TextDelta) for e in events) > 5
    assert isinstance(events[-1], Usage)


def test_says_it_is_the_demo_model():
    assert "offline demo model" in text_of(run_demo(Turn("user", "who are you?")))


@pytest.mark.parametrize(
    ("text", "call"),
    [
        ("what time is it in Tokyo?", ("get_current_time", {"timezone": "Asia/Tokyo"})),
        ("what time is it?", ("get_current_time", {"timezone": "UTC"})),
        ("tell me a cat fact", ("get_daily_cat_trivia", {})),
        ("show me a cat picture", ("get_cat_picture_of_the_day", {})),
        ("2+3*4", ("calculate", {"expression": "2+3*4"})),
        ("what is 12 / 4?", ("calculate", {"expression": "12 / 4"})),
        ("please run get_current_time", ("get_current_time", {"timezone": "UTC"})),
    ],
)
def test_calls_recognised_tools(text, call):
    assert call_of(run_demo(Turn("user", text))) == call


def test_only_offered_tools_are_called():
    events = run_demo(Turn("user", "what time is it?"), tools=())
    assert not any(isinstance(e, ToolCallDelta) for e in events)


@pytest.mark.parametrize(
    ("name", "output", "answer"),
    [
        ("calculate", '{"expression": "2+3*4", "result": 14}', "2+3*4 = 14"),
        (
            "get_daily_cat_trivia",
            '{"trivia": "Cats sleep."}',
            "Cat trivia: Cats sleep.",
        ),
        (
            "get_cat_picture_of_the_day",
            '{"url": "https://x.test/c.jpg"}',
            "![Cat picture of the day](https://x.test/c.jpg)",
        ),
        ("calculate", '{"error": "Division by zero."}', "reported an error"),
        ("calculate", "Error: bad input", "reported an error: Error: bad input"),
    ],
)
def test_answers_from_tool_outputs(name, output, answer):
    call = ToolCall("call_1", name, "{}")
    events = run_demo(
        Turn("user", "go"),
        Turn("assistant", "", tool_calls=(call,)),
        Turn("tool", output, tool_call_id="call_1"),
    )
    assert answer in text_of(events)


def test_asked_to_fail_raises_provider_error():
    with pytest.raises(ProviderError, match="The demo model was asked to fail."):
        run_demo(Turn("user", "please fail"))


def test_select_provider_prefers_demo_for_demo_models():
    demo, other = DemoProvider(), object()
    assert select_provider("demo", other, demo) is demo
    assert select_provider("demo-large", other, demo) is demo
    assert select_provider("gpt-x", other, demo) is other
    assert select_provider("gpt-x", None, demo) is demo

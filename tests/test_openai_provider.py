"""The Chat Completions provider against a scripted server on loopback."""

from __future__ import annotations

import inspect
import logging
import time
import typing

import pytest
from openai.types import ChatModel
from openai.types.shared import chat_model

from assistant.engine.providers.base import Finish
from assistant.engine.providers.base import ModelRequest
from assistant.engine.providers.base import ProviderError
from assistant.engine.providers.base import TextDelta
from assistant.engine.providers.base import ToolCall
from assistant.engine.providers.base import ToolCallDelta
from assistant.engine.providers.base import Turn
from assistant.engine.providers.base import Usage
from assistant.engine.providers.openai_chat import DEFAULT_MODEL
from assistant.engine.providers.openai_chat import ChatCompletionsProvider
from assistant.engine.providers.openai_chat import safe_name
from assistant.engine.providers.openai_chat import trim_messages
from tests.fake_model_server import ErrorReply
from tests.fake_model_server import FakeCall
from tests.fake_model_server import FakeModelServer
from tests.fake_model_server import Malformed
from tests.fake_model_server import RawResponse
from tests.fake_model_server import Reply
from tests.fake_model_server import ToolCallReply

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
SECRET_KEY = "sk-test-very-secret-0123456789"


@pytest.fixture
def server():
    """Serve a fresh scripted model server for one test."""
    with FakeModelServer() as server:
        yield server


@pytest.fixture
def make_provider(server):
    """Build providers pointed at the fake server, closing them afterwards."""
    built: list[ChatCompletionsProvider] = []

    def make(**overrides: object) -> ChatCompletionsProvider:
        options = {"api_key": "", "base_url": server.url, "model": "fake-model"}
        built.append(ChatCompletionsProvider(**{**options, **overrides}))
        return built[-1]

    yield make
    for provider in built:
        provider.close()


@pytest.fixture
def provider(make_provider):
    """Return a provider with the default settings."""
    return make_provider()


def ask(*turns: Turn, **fields: object) -> ModelRequest:
    """Return a request with short instructions and the given turns."""
    turns = turns or (Turn("user", "Hi!", speaker="Ann"),)
    return ModelRequest(model="", instructions="Be brief.", turns=turns, **fields)


def user(text: str, speaker: str = "Ann") -> Turn:
    """Return a user turn."""
    return Turn("user", text, speaker=speaker)


def message(role: str, content: str | None, **fields: object) -> dict:
    """Return a chat message dict, for the trimming tests."""
    return {"role": role, "content": content, **fields}


def failure(provider: ChatCompletionsProvider, request: ModelRequest) -> ProviderError:
    """Run a request that must fail and return its error."""
    with pytest.raises(ProviderError) as caught:
        list(provider.stream(request))
    return caught.value


# -- Streaming output ----------------------------------------------------------------


def test_plain_reply_streams_text_deltas_then_usage(server, provider):
    server.push(Reply(("Hel", "lo ", "Ann!"), usage=(12, 3)))
    events = list(provider.stream(ask()))
    assert events == [
        TextDelta("Hel"),
        TextDelta("lo "),
        TextDelta("Ann!"),
        Usage(12, 3),
    ]


def test_tool_call_announces_id_and_name_once(server, provider):
    call = FakeCall("get_weather", ('{"ci', 'ty": ', '"Oslo"}'), id="call_1")
    server.push(ToolCallReply((call,), repeat_ids=True))
    events = list(provider.stream(ask(tools=(WEATHER_TOOL,))))
    assert events[:4] == [
        ToolCallDelta(0, '{"ci', id="call_1", name="get_weather"),
        ToolCallDelta(0, 'ty": '),
        ToolCallDelta(0, '"Oslo"}'),
        Finish("tool_calls"),
    ]


def test_whole_arguments_in_one_chunk_and_two_calls(server, provider):
    calls = (FakeCall("a", ("{}",), id="c1"), FakeCall("b", ('{"x": 1}',), id="c2"))
    server.push(ToolCallReply(calls))
    events = list(provider.stream(ask(tools=(WEATHER_TOOL,))))
    assert events[:2] == [
        ToolCallDelta(0, "{}", id="c1", name="a"),
        ToolCallDelta(1, '{"x": 1}', id="c2", name="b"),
    ]


def test_tool_calls_ending_in_stop_still_finish_as_tool_calls(server, provider):
    server.push(ToolCallReply((FakeCall("a", ("{}",)),), finish_reason="stop"))
    assert Finish("tool_calls") in list(provider.stream(ask(tools=(WEATHER_TOOL,))))


def test_length_finish_becomes_max_tokens(server, provider):
    server.push(Reply(("Once upon",), finish_reason="length"))
    events = list(provider.stream(ask(max_completion_tokens=2)))
    assert Finish("max_tokens") in events
    assert server.requests[0]["max_completion_tokens"] == 2


# -- The request the server receives -------------------------------------------------


def two_speaker_history() -> tuple[Turn, ...]:
    """Return a conversation of two people with one answered tool call."""
    call = ToolCall("call_7", "get_weather", '{"city": "Oslo"}')
    return (
        user("What's the weather in Oslo?", "Ann"),
        Turn("assistant", tool_calls=(call,)),
        Turn("tool", '{"temp_c": 3}', tool_call_id="call_7"),
        Turn("assistant", "3 °C in Oslo."),
        user("And should I bring a coat?", "Bob Ó'Neil"),
    )


def test_request_carries_instructions_speakers_history_and_tools(server, provider):
    list(provider.stream(ask(*two_speaker_history(), tools=(WEATHER_TOOL,))))
    body = server.requests[0]
    assert body["model"] == "fake-model"
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "[Ann]: What's the weather in Oslo?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_7",
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "arguments": '{"city": "Oslo"}',
                    },
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_7", "content": '{"temp_c": 3}'},
        {"role": "assistant", "content": "3 °C in Oslo."},
        {"role": "user", "content": "[Bob Ó'Neil]: And should I bring a coat?"},
    ]
    assert body["tools"] == [WEATHER_TOOL]
    assert body["tool_choice"] == "auto"
    assert body["parallel_tool_calls"] is True


def test_optional_parameters_are_omitted_when_unset(server, provider):
    list(provider.stream(ask()))
    body = server.requests[0]
    for key in ("tools", "tool_choice", "parallel_tool_calls", "temperature", "top_p"):
        assert key not in body
    assert "name" not in body["messages"][1]


def test_sampling_parameters_are_sent_when_set(server, provider):
    list(provider.stream(ask(temperature=0.2, top_p=0.9)))
    assert server.requests[0]["temperature"] == 0.2
    assert server.requests[0]["top_p"] == 0.9


def test_request_model_wins_unless_it_is_the_demo_placeholder(server, provider):
    list(provider.stream(ModelRequest(model="llama3.2", instructions="", turns=())))
    list(provider.stream(ModelRequest(model="demo-1", instructions="", turns=())))
    assert [body["model"] for body in server.requests] == ["llama3.2", "fake-model"]


def test_send_names_adds_a_sanitized_name(server, make_provider):
    provider = make_provider(send_names=True)
    list(provider.stream(ask(user("Hi", "Bob Ó'Neil"))))
    assert server.requests[0]["messages"][1]["name"] == "Bob_O_Neil"


def test_safe_name_fits_the_name_pattern():
    assert safe_name("José María") == "Jose_Maria"
    assert safe_name("李") == ""
    assert safe_name("x" * 100) == "x" * 64


def test_empty_api_key_sends_a_placeholder(server, provider):
    list(provider.stream(ask()))
    assert server.headers[0]["Authorization"] == "Bearer not-needed"


def test_default_model_is_a_current_sdk_chat_model():
    assert DEFAULT_MODEL in typing.get_args(ChatModel)
    deprecated = inspect.getsource(chat_model).split("Deprecated values")[1]
    assert f'"{DEFAULT_MODEL}"' not in deprecated


# -- Trimming to the context budget --------------------------------------------------


def test_trim_keeps_everything_within_budget():
    messages = [message("system", "sys"), message("user", "a"), message("user", "b")]
    assert trim_messages(messages, 100) == messages


def test_trim_drops_oldest_turns_first():
    messages = [
        message("system", "s" * 10),
        message("user", "old" * 10),
        message("assistant", "mid" * 10),
        message("user", "new" * 10),
    ]
    assert trim_messages(messages, 75) == [messages[0], messages[2], messages[3]]


def test_trim_drops_a_tool_round_as_a_whole():
    call = {
        "id": "c1",
        "type": "function",
        "function": {"name": "f", "arguments": "{}"},
    }
    messages = [
        message("system", "sys"),
        message("assistant", None, tool_calls=[call]),
        message("tool", "x" * 50, tool_call_id="c1"),
        message("tool", "y" * 5, tool_call_id="c1"),
        message("user", "latest"),
    ]
    assert trim_messages(messages, 30) == [messages[0], messages[4]]


def test_trim_never_leaves_a_leading_tool_message():
    messages = [message("tool", "orphan", tool_call_id="c0"), message("user", "hi")]
    assert trim_messages(messages, 1000) == [messages[1]]


def test_trim_truncates_a_latest_user_turn_that_is_too_long():
    messages = [message("system", "sys"), message("user", "u" * 5000)]
    trimmed = trim_messages(messages, 1000)
    assert trimmed[0] == messages[0]
    assert len(trimmed[1]["content"]) == 997
    assert trimmed[1]["content"].endswith("[…]")


def test_trim_keeps_the_current_tool_round_after_the_latest_user_turn():
    call = {
        "id": "c1",
        "type": "function",
        "function": {"name": "f", "arguments": "{}"},
    }
    messages = [
        message("user", "older " * 50),
        message("user", "weather?"),
        message("assistant", None, tool_calls=[call]),
        message("tool", "sunny", tool_call_id="c1"),
    ]
    assert trim_messages(messages, 30) == messages[1:]


def test_server_receives_a_trimmed_history(server, make_provider):
    provider = make_provider(context_chars=200)
    turns = tuple(user(f"message {n} " + "." * 40) for n in range(20))
    list(provider.stream(ask(*turns)))
    sent = server.requests[0]["messages"]
    assert sent[0]["role"] == "system"
    assert sent[-1]["content"].startswith("[Ann]: message 19")
    assert 1 < len(sent) < 6
    assert sum(len(m["content"]) for m in sent) <= 200


# -- Failures ------------------------------------------------------------------------


def test_rate_limit_is_retried_by_the_sdk(server, provider):
    server.push(ErrorReply(429, "Slow down", "requests"), ErrorReply(429), Reply())
    assert list(provider.stream(ask()))[0] == TextDelta("ok")
    assert len(server.requests) == 3


def test_persistent_rate_limit_fails_with_rate_limit_exceeded(server, provider):
    server.push(*[ErrorReply(429, "Slow down", "requests")] * 3)
    error = failure(provider, ask())
    assert error.code == "rate_limit_exceeded"
    assert error.message == (
        "The model server is rate limiting requests; try again in a moment."
    )


def test_persistent_500_fails_with_server_error(server, provider):
    server.push(*[ErrorReply(500)] * 3)
    error = failure(provider, ask())
    assert (error.code, error.message) == (
        "server_error",
        "The model server failed (HTTP 500).",
    )
    assert len(server.requests) == 3


def test_bad_key_fails_with_a_clear_message_without_the_key(server, make_provider):
    server.api_key = "sk-the-right-key"
    error = failure(make_provider(api_key=SECRET_KEY), ask())
    assert error.code == "server_error"
    assert error.message == (
        "The model server rejected the API key (401). Check OPENAI_API_KEY."
    )
    assert "0123" not in str(error) and error.__cause__ is None


def test_failures_log_neither_the_key_nor_the_conversation(
    server, make_provider, caplog
):
    caplog.set_level(logging.DEBUG, logger="assistant.engine.providers.openai_chat")
    server.push(ErrorReply(400, f"bad request from {SECRET_KEY}"), Malformed())
    provider = make_provider(api_key=SECRET_KEY)
    for _ in range(2):
        failure(provider, ask(user("my secret plan")))
    assert caplog.records
    assert SECRET_KEY not in caplog.text and "secret plan" not in caplog.text


def test_right_key_is_sent_as_bearer(server, make_provider):
    server.api_key = SECRET_KEY
    assert list(make_provider(api_key=SECRET_KEY).stream(ask()))[0] == TextDelta("ok")


def test_unknown_model_fails_naming_the_model(server, make_provider):
    server.models = ("llama3.2",)
    error = failure(make_provider(model="gpt-nope"), ask())
    assert error.message == (
        "The model 'gpt-nope' was not found on the model server. Check MODEL."
    )


def test_wrong_base_url_path_fails_naming_the_setting(server, make_provider):
    provider = make_provider(base_url=server.url.removesuffix("/v1"))
    assert "Check MODEL_BASE_URL." in failure(provider, ask()).message


def test_bad_request_fails_as_invalid_prompt_with_a_short_scrubbed_message(
    server, make_provider
):
    text = f"Context too long for key {SECRET_KEY}. " + "x" * 500
    server.push(ErrorReply(400, text, "invalid_request_error"))
    error = failure(make_provider(api_key=SECRET_KEY), ask())
    assert error.code == "invalid_prompt"
    assert error.message.startswith("The model server refused the request: Context")
    assert len(error.message) <= 300 and SECRET_KEY not in error.message


def test_rejected_stream_options_are_dropped_once(server, provider):
    server.reject_stream_options = True
    assert list(provider.stream(ask())) == [TextDelta("ok")]
    assert list(provider.stream(ask())) == [TextDelta("ok")]
    assert ["stream_options" in body for body in server.requests] == [
        True,
        False,
        False,
    ]


def test_unreachable_server_names_the_host(server, make_provider):
    port = server.url.split(":")[2].split("/")[0]
    server.stop()
    provider = make_provider(max_retries=0, connect_timeout_s=2)
    error = failure(provider, ask())
    assert error.message == f"Could not reach the model server at 127.0.0.1:{port}."


def test_stall_fails_within_the_stall_timeout(server, make_provider):
    server.push(Reply(("Hel", "lo"), stall_after_first_s=30))
    events = make_provider(stall_timeout_s=1).stream(ask())
    started = time.monotonic()
    assert next(events) == TextDelta("Hel")
    with pytest.raises(ProviderError) as caught:
        list(events)
    assert caught.value.message == "The model stopped responding (no data for 1 s)."
    assert time.monotonic() - started < 5


def test_undecodable_chunk_fails_as_malformed(server, provider):
    server.push(Malformed())
    error = failure(provider, ask())
    assert error.message == "The model server sent a malformed response."


def test_chunk_of_the_wrong_shape_fails_as_malformed(server, provider):
    server.push(Malformed('{"id": "x", "object": "chat.completion.chunk"}'))
    assert failure(provider, ask()).message == (
        "The model server sent a malformed response."
    )


def test_a_page_that_is_not_an_event_stream_fails_as_malformed(server, provider):
    server.push(RawResponse("<html>Please log in</html>"))
    assert failure(provider, ask()).message == (
        "The model server sent a malformed response."
    )


def test_error_event_inside_the_stream_fails_as_server_error(server, provider):
    server.push(Malformed('{"error": {"message": "boom", "type": "server_error"}}'))
    error = failure(provider, ask())
    assert error.code == "server_error"


def test_closing_the_generator_mid_stream_closes_the_connection(server, provider):
    server.push(Reply(("word ",) * 500, delay_s=0.01))
    events = provider.stream(ask())
    assert next(events) == TextDelta("word ")
    events.close()
    assert server.client_gone.wait(timeout=5)

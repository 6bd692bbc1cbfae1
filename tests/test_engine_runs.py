"""Runs of the embedded engine: polling, streaming, tools, cancel, expiry, failure."""

from __future__ import annotations

import json

import openai
import pytest
from engine_helpers import TIME_TOOL
from engine_helpers import EventRecorder
from engine_helpers import RecordingProvider
from engine_helpers import ScriptedProvider
from engine_helpers import make_client
from engine_helpers import poll_run
from engine_helpers import say
from engine_helpers import stream_run
from engine_helpers import wait_until

from assistant.engine import create_api
from assistant.engine.providers.base import Finish
from assistant.engine.providers.base import ProviderError
from assistant.engine.providers.base import TextDelta
from assistant.engine.providers.base import Usage
from assistant.engine.providers.demo import DemoProvider

pytest_plugins = ["engine_fixtures"]

TEXT_ORDER = [
    "thread.run.created",
    "thread.run.queued",
    "thread.run.in_progress",
    "thread.run.step.created",
    "thread.run.step.in_progress",
    "thread.message.created",
    "thread.message.in_progress",
]
TAIL = ["thread.message.completed", "thread.run.step.completed", "thread.run.completed"]
TOOL_ORDER = [*TEXT_ORDER[:5], "thread.run.step.delta"]


@pytest.fixture
def client(engine):
    """Return a strict SDK client over the engine."""
    return make_client(create_api(engine))


def reply_text(client, thread):
    """Return the newest message's text."""
    return (
        client.beta.threads.messages.list(thread.id, limit=1)
        .data[0]
        .content[0]
        .text.value
    )


def test_create_and_poll_completes(client, thread, assistant):
    say(client, thread, "hello", name="Bob")
    say(client, thread, "hi everyone")
    run = poll_run(client, thread, assistant)
    assert run.status == "completed" and run.usage.total_tokens > 0
    assert run.completed_at and run.expires_at is None
    text = reply_text(client, thread)
    assert text.startswith("Hi Alice! You said: “hi everyone”.")
    assert "Bob said: “hello”" in text


def test_plain_create_is_queued_and_poll_hint_sent(make_engine):
    engine = make_engine(poll_after_ms=25)
    client = make_client(create_api(engine))
    assistant = client.beta.assistants.create(model="demo")
    thread = client.beta.threads.create()
    say(client, thread, "hi")
    run = client.beta.threads.runs.create(
        thread_id=thread.id, assistant_id=assistant.id
    )
    assert run.status == "queued"
    raw = client.beta.threads.runs.with_raw_response.retrieve(
        run.id, thread_id=thread.id
    )
    assert raw.headers["openai-poll-after-ms"] == "25"
    assert (
        client.beta.threads.runs.poll(run.id, thread_id=thread.id).status == "completed"
    )


def test_stream_event_order_and_deltas(client, thread, assistant):
    say(client, thread, "tell me something nice")
    handler = stream_run(client, thread, assistant)
    assert handler.events == [
        *TEXT_ORDER,
        *["thread.message.delta"] * len(handler.deltas),
        *TAIL,
    ]
    assert len(handler.deltas) > 3 and handler.ended
    assert "".join(handler.deltas) == reply_text(client, thread)
    assert handler.current_run.status == "completed"


def test_tool_round_trip_streamed(client, thread, assistant):
    say(client, thread, "what time is it in Tokyo?")
    first = stream_run(client, thread, assistant)
    assert first.events[: len(TOOL_ORDER)] == TOOL_ORDER
    assert first.events[-1] == "thread.run.requires_action"
    run = first.current_run
    call = run.required_action.submit_tool_outputs.tool_calls[0]
    assert (call.function.name, json.loads(call.function.arguments)) == (
        "get_current_time",
        {"timezone": "Asia/Tokyo"},
    )
    output = json.dumps({"timezone": "Asia/Tokyo", "time": "09:30"})
    second = EventRecorder()
    with client.beta.threads.runs.submit_tool_outputs_stream(
        thread_id=thread.id,
        run_id=run.id,
        tool_outputs=[{"tool_call_id": call.id, "output": output}],
        event_handler=second,
    ) as events:
        events.until_done()
    assert second.events[:3] == [
        "thread.run.step.completed",
        "thread.run.queued",
        "thread.run.in_progress",
    ]
    assert second.current_run.status == "completed"
    assert reply_text(client, thread) == "The current time in Asia/Tokyo is 09:30."


def test_tool_round_trip_polled(client, thread, assistant):
    say(client, thread, "what is the current time?")
    run = poll_run(client, thread, assistant)
    assert run.status == "requires_action"
    call = run.required_action.submit_tool_outputs.tool_calls[0]
    done = client.beta.threads.runs.submit_tool_outputs_and_poll(
        thread_id=thread.id,
        run_id=run.id,
        tool_outputs=[{"tool_call_id": call.id, "output": "12:00"}],
        poll_interval_ms=10,
    )
    assert (
        done.status == "completed" and done.usage.total_tokens > run.usage.total_tokens
    )
    assert reply_text(client, thread) == "The current time in UTC is 12:00."


def test_tool_outputs_must_cover_every_call(client, thread, assistant):
    say(client, thread, "what time is it?")
    run = poll_run(client, thread, assistant)
    with pytest.raises(openai.BadRequestError, match="Expected tool outputs"):
        client.beta.threads.runs.submit_tool_outputs(
            thread_id=thread.id,
            run_id=run.id,
            tool_outputs=[{"tool_call_id": "call_wrong", "output": "x"}],
        )


def test_second_run_sees_the_first_runs_tool_call(make_engine):
    recorder = RecordingProvider()
    engine = make_engine(default_provider=recorder)
    client = make_client(create_api(engine))
    assistant = client.beta.assistants.create(model="gpt-test", tools=[TIME_TOOL])
    thread = client.beta.threads.create()
    say(client, thread, "what time is it?")
    run = poll_run(client, thread, assistant)
    call = run.required_action.submit_tool_outputs.tool_calls[0]
    client.beta.threads.runs.submit_tool_outputs_and_poll(
        thread_id=thread.id,
        run_id=run.id,
        tool_outputs=[{"tool_call_id": call.id, "output": "12:00"}],
        poll_interval_ms=10,
    )
    say(client, thread, "thanks", name="Bob")
    poll_run(client, thread, assistant)
    turns = recorder.requests[-1].turns
    assert [t.role for t in turns] == ["user", "assistant", "tool", "assistant", "user"]
    assert turns[1].tool_calls[0].id == call.id and turns[2].tool_call_id == call.id
    assert (turns[0].speaker, turns[4].speaker, turns[2].content) == (
        "Alice",
        "Bob",
        "12:00",
    )


def test_busy_thread_refuses_messages_and_runs(client, thread, assistant):
    say(client, thread, "what time is it?")
    run = poll_run(client, thread, assistant)
    assert run.status == "requires_action"
    with pytest.raises(openai.BadRequestError) as caught:
        say(client, thread, "me too")
    assert caught.value.body["message"] == (
        f"Can't add messages to {thread.id} while a run {run.id} is active."
    )
    assert caught.value.code == "run_active"  # no need to parse the wording
    with pytest.raises(openai.BadRequestError) as caught:
        client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    assert caught.value.body["message"] == (
        f"Thread {thread.id} already has an active run {run.id}."
    )
    assert caught.value.code == "run_active"


def test_additional_messages_and_instructions(make_engine):
    recorder = RecordingProvider()
    client = make_client(create_api(make_engine(default_provider=recorder)))
    assistant = client.beta.assistants.create(model="m", instructions="Be brief.")
    thread = client.beta.threads.create()
    run = poll_run(
        client,
        thread,
        assistant,
        additional_instructions="Speakers: Ann, Ben.",
        additional_messages=[
            {"role": "user", "content": "one", "metadata": {"name": "Ann"}},
            {"role": "user", "content": "two", "metadata": {"name": "Ben"}},
        ],
    )
    assert run.instructions == "Be brief.\n\nSpeakers: Ann, Ben."
    request = recorder.requests[0]
    assert request.instructions == run.instructions
    assert [(t.speaker, t.content) for t in request.turns] == [
        ("Ann", "one"),
        ("Ben", "two"),
    ]
    listed = client.beta.threads.messages.list(thread.id, order="asc")
    assert [m.metadata["name"] for m in listed.data[:2]] == ["Ann", "Ben"]


def test_cancel_mid_run_keeps_partial_message(make_engine):
    recorder = RecordingProvider(DemoProvider(delay_ms=100))
    client = make_client(create_api(make_engine(default_provider=recorder)))
    assistant = client.beta.assistants.create(model="m")
    thread = client.beta.threads.create()
    say(client, thread, "please say a long and winding sentence for the room today")
    run = client.beta.threads.runs.create(
        thread_id=thread.id, assistant_id=assistant.id
    )
    wait_until(lambda: client.beta.threads.messages.list(thread.id, run_id=run.id).data)
    cancelling = client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    assert cancelling.status == "cancelling"
    final = client.beta.threads.runs.poll(
        run.id, thread_id=thread.id, poll_interval_ms=10
    )
    assert final.status == "cancelled" and final.cancelled_at
    assert recorder.closed.is_set()
    message = client.beta.threads.messages.list(thread.id, run_id=run.id).data[0]
    assert message.status == "incomplete"
    assert message.incomplete_details.reason == "run_cancelled"
    assert message.content[0].text.value.startswith("Hi")  # the partial text
    with pytest.raises(openai.BadRequestError, match="Cannot cancel run with status"):
        client.beta.threads.runs.cancel(run.id, thread_id=thread.id)


def test_cancel_seen_mid_stream(make_engine):
    client = make_client(create_api(make_engine(demo_delay_ms=50)))
    assistant = client.beta.assistants.create(model="demo")
    thread = client.beta.threads.create()
    say(client, thread, "a sentence long enough to take a while to stream out")
    handler = EventRecorder()
    with client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant.id, event_handler=handler
    ) as events:
        for event in events:
            if event.event == "thread.message.delta":
                run_id = handler.current_run.id
                client.beta.threads.runs.cancel(run_id, thread_id=thread.id)
                break
        events.until_done()
    assert handler.events[-4:] == [
        "thread.run.cancelling",
        "thread.message.incomplete",
        "thread.run.step.cancelled",
        "thread.run.cancelled",
    ]


def test_cancel_waiting_run(client, thread, assistant):
    say(client, thread, "what time is it?")
    run = poll_run(client, thread, assistant)
    client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    final = client.beta.threads.runs.poll(
        run.id, thread_id=thread.id, poll_interval_ms=10
    )
    assert final.status == "cancelled" and final.required_action is None
    say(client, thread, "the thread is free again")


def test_unanswered_tool_call_expires(make_engine):
    # expires_at is in whole seconds: 3 s leaves at least 2 s to see requires_action
    client = make_client(create_api(make_engine(run_expiry_s=3)))
    assistant = client.beta.assistants.create(model="demo", tools=[TIME_TOOL])
    thread = client.beta.threads.create()
    say(client, thread, "what time is it?")
    run = poll_run(client, thread, assistant)
    assert run.status == "requires_action"

    def status():
        return client.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status

    assert wait_until(lambda: status() == "expired", timeout_s=8)
    say(client, thread, "anyone there?")


@pytest.mark.parametrize("use_stream", [False, True])
def test_provider_failure_fails_the_run(client, thread, assistant, use_stream):
    say(client, thread, "please fail")
    if use_stream:
        handler = stream_run(client, thread, assistant)
        assert handler.events[-1] == "thread.run.failed"
        run = handler.current_run
    else:
        run = poll_run(client, thread, assistant)
    assert run.status == "failed" and run.failed_at
    assert (run.last_error.code, run.last_error.message) == (
        "server_error",
        "The demo model was asked to fail.",
    )


def test_unexpected_provider_exception_is_server_error(make_engine):
    failing = ScriptedProvider(TextDelta("partial "), RuntimeError("secret detail"))
    client = make_client(create_api(make_engine(default_provider=failing)))
    assistant = client.beta.assistants.create(model="m")
    thread = client.beta.threads.create()
    say(client, thread, "hi")
    handler = stream_run(client, thread, assistant)
    assert handler.events[-2:] == ["thread.run.step.failed", "thread.run.failed"]
    assert "secret" not in handler.current_run.last_error.message
    message = client.beta.threads.messages.list(thread.id).data[0]
    assert (message.status, message.incomplete_details.reason) == (
        "incomplete",
        "run_failed",
    )
    assert message.content[0].text.value == "partial "


def test_rate_limit_error_code_passes_through(make_engine):
    limited = ScriptedProvider(ProviderError("Slow down.", code="rate_limit_exceeded"))
    client = make_client(create_api(make_engine(default_provider=limited)))
    assistant = client.beta.assistants.create(model="m")
    thread = client.beta.threads.create()
    run = poll_run(client, thread, assistant)
    assert (run.status, run.last_error.code) == ("failed", "rate_limit_exceeded")


def test_max_tokens_makes_run_incomplete(make_engine):
    truncated = ScriptedProvider(TextDelta("cut "), Usage(5, 1), Finish("max_tokens"))
    client = make_client(create_api(make_engine(default_provider=truncated)))
    assistant = client.beta.assistants.create(model="m")
    thread = client.beta.threads.create()
    run = poll_run(client, thread, assistant, max_completion_tokens=256)
    assert run.status == "incomplete" and run.max_completion_tokens == 256
    assert run.incomplete_details.reason == "max_completion_tokens"
    assert run.usage.total_tokens == 6
    message = client.beta.threads.messages.list(thread.id).data[0]
    assert message.incomplete_details.reason == "max_tokens"


def test_delete_thread_cancels_its_active_run(client, thread, assistant):
    say(client, thread, "what time is it?")
    poll_run(client, thread, assistant)
    assert client.beta.threads.delete(thread.id).deleted

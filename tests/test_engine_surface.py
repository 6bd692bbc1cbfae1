"""The rest of the Assistants v2 surface, judged by the official SDK (strict)."""

from __future__ import annotations

import json

import openai
import pytest
from engine_helpers import TIME_TOOL
from engine_helpers import EventRecorder
from engine_helpers import RecordingProvider
from engine_helpers import make_client
from engine_helpers import poll_run
from engine_helpers import say

from assistant.engine import create_api
from assistant.engine import objects
from assistant.engine.providers.base import ModelRequest
from assistant.engine.providers.base import Turn
from assistant.engine.providers.openai_chat import ChatCompletionsProvider

pytest_plugins = ["engine_fixtures"]


@pytest.fixture
def client(engine):
    """Return a strict SDK client over the engine."""
    return make_client(create_api(engine))


# runs.list ----------------------------------------------------------------------


def test_runs_list_pages_newest_first(client, thread, assistant):
    ids = []
    for text in ("one", "two", "three"):
        say(client, thread, text)
        ids.append(poll_run(client, thread, assistant).id)
    runs = client.beta.threads.runs
    first = runs.list(thread.id, limit=2)
    assert [r.id for r in first.data] == [ids[2], ids[1]] and first.has_more
    assert [r.id for r in runs.list(thread.id)] == ids[::-1]  # auto-paging
    assert [r.id for r in runs.list(thread.id, order="asc", after=ids[0])] == ids[1:]
    assert [r.id for r in runs.list(thread.id, before=ids[0])] == [ids[2], ids[1]]
    assert all(r.status == "completed" for r in runs.list(thread.id))


def test_runs_list_of_an_unknown_thread_is_404(client):
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.runs.list("thread_nope")


def test_the_newest_run_names_the_active_run_of_a_refusal(client, thread, assistant):
    say(client, thread, "what time is it?")
    waiting = poll_run(client, thread, assistant)
    with pytest.raises(openai.BadRequestError) as caught:
        say(client, thread, "me too")
    assert caught.value.code == "run_active"
    newest = client.beta.threads.runs.list(thread.id, limit=1).data[0]
    assert (newest.id, newest.status) == (waiting.id, "requires_action")


def test_runs_update_sets_metadata(client, thread, assistant):
    say(client, thread, "hello")
    run = poll_run(client, thread, assistant)
    runs = client.beta.threads.runs
    changed = runs.update(run.id, thread_id=thread.id, metadata={"turn": "7"})
    assert changed.metadata == {"turn": "7"} and changed.status == "completed"
    assert runs.retrieve(run.id, thread_id=thread.id).metadata == {"turn": "7"}


# assistants.list / assistants.delete ---------------------------------------------


def test_assistants_list_pages_and_delete_removes(client):
    made = [client.beta.assistants.create(model="demo", name=f"a{i}") for i in range(3)]
    first = client.beta.assistants.list(limit=2)
    assert [a.id for a in first.data] == [made[2].id, made[1].id] and first.has_more
    assert [a.id for a in client.beta.assistants.list(limit=2)] == [
        a.id for a in made[::-1]
    ]
    deleted = client.beta.assistants.delete(made[1].id)
    assert (deleted.id, deleted.deleted, deleted.object) == (
        made[1].id,
        True,
        "assistant.deleted",
    )
    with pytest.raises(openai.NotFoundError, match="No assistant found"):
        client.beta.assistants.retrieve(made[1].id)
    assert [a.id for a in client.beta.assistants.list()] == [made[2].id, made[0].id]
    with pytest.raises(openai.NotFoundError):
        client.beta.assistants.delete(made[1].id)


def test_a_deleted_assistant_starts_no_run(client, thread):
    gone = client.beta.assistants.create(model="demo")
    client.beta.assistants.delete(gone.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.runs.create(thread_id=thread.id, assistant_id=gone.id)


# threads.update -------------------------------------------------------------------


def test_threads_update_changes_only_what_it_names(client):
    thread = client.beta.threads.create(metadata={"room": "lobby"})
    changed = client.beta.threads.update(thread.id, metadata={"room": "den"})
    assert changed.metadata == {"room": "den"}
    assert client.beta.threads.retrieve(thread.id).metadata == {"room": "den"}
    assert client.beta.threads.update(thread.id).metadata == {"room": "den"}
    with pytest.raises(openai.BadRequestError, match="too many properties"):
        client.beta.threads.update(thread.id, metadata={str(i): "x" for i in range(17)})


# messages retrieve / update / delete ------------------------------------------------


def test_messages_retrieve_update_delete(client, thread):
    first = say(client, thread, "first")
    second = say(client, thread, "second")
    messages = client.beta.threads.messages
    got = messages.retrieve(first.id, thread_id=thread.id)
    assert got.content[0].text.value == "first"
    changed = messages.update(first.id, thread_id=thread.id, metadata={"seen": "1"})
    assert changed.metadata == {"seen": "1"}
    deleted = messages.delete(first.id, thread_id=thread.id)
    assert (deleted.id, deleted.deleted, deleted.object) == (
        first.id,
        True,
        "thread.message.deleted",
    )
    assert [m.id for m in messages.list(thread.id)] == [second.id]
    with pytest.raises(openai.NotFoundError, match="No message found"):
        messages.retrieve(first.id, thread_id=thread.id)


def test_a_busy_thread_keeps_its_messages_but_takes_metadata(client, thread, assistant):
    question = say(client, thread, "what time is it?")
    run = poll_run(client, thread, assistant)
    assert run.status == "requires_action"
    messages = client.beta.threads.messages
    with pytest.raises(openai.BadRequestError) as caught:
        messages.delete(question.id, thread_id=thread.id)
    assert caught.value.code == "run_active"
    assert caught.value.message.endswith(
        f"Can't delete messages in {thread.id} while a run {run.id} is active."
    )
    tagged = messages.update(question.id, thread_id=thread.id, metadata={"k": "v"})
    assert tagged.metadata == {"k": "v"}


def test_a_message_of_another_thread_is_not_found(client, thread):
    other = client.beta.threads.create()
    message = say(client, other, "elsewhere")
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.delete(message.id, thread_id=thread.id)


# run steps ------------------------------------------------------------------------

FILE_SEARCH_CONTENT = "step_details.tool_calls[*].file_search.results[*].content"


def tool_round_trip(client, thread, assistant):
    """Ask for the time, answer the call, and return the finished run."""
    say(client, thread, "what time is it in Tokyo?")
    run = poll_run(client, thread, assistant)
    call = run.required_action.submit_tool_outputs.tool_calls[0]
    outputs = [{"tool_call_id": call.id, "output": '{"time": "09:30"}'}]
    return client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=thread.id, tool_outputs=outputs, poll_interval_ms=10
    )


def test_steps_list_and_retrieve_a_tool_round_trip(client, thread, assistant):
    run = tool_round_trip(client, thread, assistant)
    steps = client.beta.threads.runs.steps
    listed = steps.list(run.id, thread_id=thread.id, include=[FILE_SEARCH_CONTENT])
    reply, tools = listed.data  # newest first
    assert (reply.type, tools.type) == ("message_creation", "tool_calls")
    call = tools.step_details.tool_calls[0]
    assert (call.function.name, call.function.output) == (
        "get_current_time",
        '{"time": "09:30"}',
    )
    assert json.loads(call.function.arguments) == {"timezone": "Asia/Tokyo"}
    newest = client.beta.threads.messages.list(thread.id, limit=1).data[0]
    assert reply.step_details.message_creation.message_id == newest.id
    assert all(s.status == "completed" and s.usage for s in listed.data)
    asc = steps.list(run.id, thread_id=thread.id, order="asc", limit=1)
    assert [s.id for s in asc.data] == [tools.id] and asc.has_more
    got = steps.retrieve(
        tools.id, thread_id=thread.id, run_id=run.id, include=[FILE_SEARCH_CONTENT]
    )
    assert got == tools


def test_steps_of_an_unknown_run_or_step_are_404(client, thread, assistant):
    say(client, thread, "hello")
    run = poll_run(client, thread, assistant)
    steps = client.beta.threads.runs.steps
    with pytest.raises(openai.NotFoundError):
        steps.list("run_nope", thread_id=thread.id)
    with pytest.raises(openai.NotFoundError, match="No run step found"):
        steps.retrieve("step_nope", thread_id=thread.id, run_id=run.id)


def test_an_unknown_include_is_refused(http, client, thread, assistant):
    say(client, thread, "hello")
    run = poll_run(client, thread, assistant)
    path = f"/v1/threads/{thread.id}/runs/{run.id}/steps"
    response = http.get(path, params={"include[]": "step_details.nope"})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "include"


# threads.create_and_run: plain, polled, streamed ----------------------------------


def test_create_and_run_makes_the_thread_and_queues_the_run(client, assistant):
    run = client.beta.threads.create_and_run(
        assistant_id=assistant.id,
        thread={
            "messages": [
                {"role": "user", "content": "hi", "metadata": {"name": "Ann"}}
            ],
            "metadata": {"room": "new"},
        },
        metadata={"turn": "1"},
    )
    assert (run.status, run.metadata) == ("queued", {"turn": "1"})
    thread = client.beta.threads.retrieve(run.thread_id)
    assert thread.metadata == {"room": "new"}
    done = client.beta.threads.runs.poll(
        run.id, thread_id=thread.id, poll_interval_ms=10
    )
    texts = [
        m.content[0].text.value
        for m in client.beta.threads.messages.list(thread.id, order="asc")
    ]
    assert done.status == "completed" and texts[0] == "hi"
    assert texts[1].startswith("Hi Ann!")


def test_create_and_run_poll(client, assistant):
    run = client.beta.threads.create_and_run_poll(
        assistant_id=assistant.id,
        thread={"messages": [{"role": "user", "content": "what time is it?"}]},
        poll_interval_ms=10,
    )
    assert run.status == "requires_action"
    call = run.required_action.submit_tool_outputs.tool_calls[0]
    assert call.function.name == "get_current_time"


def test_create_and_run_stream_opens_with_the_thread(client, assistant):
    handler = EventRecorder()
    with client.beta.threads.create_and_run_stream(
        assistant_id=assistant.id,
        thread={"messages": [{"role": "user", "content": "stream this, please"}]},
        event_handler=handler,
    ) as events:
        events.until_done()
    assert handler.events[:4] == [
        "thread.created",
        "thread.run.created",
        "thread.run.queued",
        "thread.run.in_progress",
    ]
    assert handler.events[-1] == "thread.run.completed"
    assert "".join(handler.deltas).startswith("Hi there! You said")


def test_create_and_run_checks_everything_before_making_anything(
    engine, client, assistant
):
    with pytest.raises(openai.BadRequestError) as caught:
        client.beta.threads.create_and_run(
            assistant_id=assistant.id,
            thread={"messages": [{"role": "user", "content": ""}]},
        )
    assert caught.value.param == "thread.messages[0].content"
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.create_and_run(
            assistant_id="asst_nope", thread={"metadata": {"k": "v"}}
        )
    assert engine.store.select("threads") == []  # neither request made one


# What the run request carries -------------------------------------------------------

CAT_TOOL = {
    "type": "function",
    "function": {
        "name": "get_daily_cat_trivia",
        "description": "Today's cat fact.",
        "parameters": {"type": "object", "properties": {}},
    },
}


def call_names(run) -> list[str]:
    """Return the names of the calls a waiting run asks for."""
    calls = run.required_action.submit_tool_outputs.tool_calls
    return [call.function.name for call in calls]


def reply_text(client, thread) -> str:
    """Return the newest message's text."""
    newest = client.beta.threads.messages.list(thread.id, limit=1).data[0]
    return newest.content[0].text.value


def test_tool_choice_none_answers_without_tools(client, thread, assistant):
    say(client, thread, "what time is it?")
    run = poll_run(client, thread, assistant, tool_choice="none")
    assert (run.status, run.tool_choice) == ("completed", "none")


def test_tool_choice_required_calls_a_tool_once(client, thread, assistant):
    say(client, thread, "hello there")
    run = poll_run(client, thread, assistant, tool_choice="required")
    assert run.status == "requires_action" and call_names(run) == ["get_current_time"]
    call = run.required_action.submit_tool_outputs.tool_calls[0]
    done = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id,
        thread_id=thread.id,
        tool_outputs=[{"tool_call_id": call.id, "output": "12:00"}],
        poll_interval_ms=10,
    )
    assert done.status == "completed"  # forced on the first call only: no loop
    assert done.tool_choice == "required"


def test_tool_choice_naming_a_function_calls_it(client, thread):
    assistant = client.beta.assistants.create(model="demo", tools=[TIME_TOOL, CAT_TOOL])
    say(client, thread, "hello there")
    named = {"type": "function", "function": {"name": "get_daily_cat_trivia"}}
    run = poll_run(client, thread, assistant, tool_choice=named)
    assert call_names(run) == ["get_daily_cat_trivia"]
    assert run.tool_choice.function.name == "get_daily_cat_trivia"


def test_tool_choice_naming_an_unknown_function_is_refused(client, thread, assistant):
    named = {"type": "function", "function": {"name": "nope"}}
    with pytest.raises(openai.BadRequestError) as caught:
        poll_run(client, thread, assistant, tool_choice=named)
    assert caught.value.param == "tool_choice"


@pytest.mark.parametrize(
    ("parallel", "names"),
    [
        (True, ["get_current_time", "get_daily_cat_trivia"]),
        (False, ["get_current_time"]),
    ],
)
def test_parallel_tool_calls(client, thread, parallel, names):
    assistant = client.beta.assistants.create(model="demo", tools=[TIME_TOOL, CAT_TOOL])
    say(client, thread, "what time is it, and what is today's cat fact?")
    run = poll_run(client, thread, assistant, parallel_tool_calls=parallel)
    assert (run.parallel_tool_calls, call_names(run)) == (parallel, names)
    step = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data[0]
    assert [c.function.name for c in step.step_details.tool_calls] == names


def test_response_format_json_object(client, thread, assistant):
    say(client, thread, "hello", name="Ann")
    run = poll_run(client, thread, assistant, response_format={"type": "json_object"})
    assert run.response_format.type == "json_object"
    assert json.loads(reply_text(client, thread)) == {
        "reply": "Hi Ann! You said: “hello”."
    }


def test_response_format_json_schema(client, thread, assistant):
    schema = {
        "type": "object",
        "properties": {
            "answer": {"type": "string"},
            "mood": {"type": "string", "enum": ["calm", "busy"]},
            "confidence": {"type": "number"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["answer", "mood", "confidence", "tags"],
        "additionalProperties": False,
    }
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "reply", "schema": schema, "strict": True},
    }
    say(client, thread, "hello", name="Ann")
    run = poll_run(client, thread, assistant, response_format=response_format)
    assert run.response_format.json_schema.name == "reply"
    assert json.loads(reply_text(client, thread)) == {
        "answer": "Hi Ann! You said: “hello”.",
        "mood": "calm",
        "confidence": 0,
        "tags": [],
    }


def test_temperature_and_top_p_reach_the_model(client, thread, assistant):
    say(client, thread, "what are your settings?")
    run = poll_run(client, thread, assistant, temperature=0.2, top_p=0.9)
    assert (run.temperature, run.top_p) == (0.2, 0.9)
    assert reply_text(client, thread) == (
        "For this run I was given temperature 0.2 and top_p 0.9."
    )


def test_max_completion_tokens_ends_the_run_incomplete(client, thread, assistant):
    say(client, thread, "count to 300")
    run = poll_run(client, thread, assistant, max_completion_tokens=256)
    assert run.status == "incomplete" and run.max_completion_tokens == 256
    assert run.incomplete_details.reason == "max_completion_tokens"
    assert run.usage.completion_tokens == 256
    message = client.beta.threads.messages.list(thread.id, limit=1).data[0]
    assert message.status == "incomplete"
    assert message.incomplete_details.reason == "max_tokens"
    assert message.content[0].text.value.split()[-1] == "256"


def test_a_reply_within_max_completion_tokens_completes(client, thread, assistant):
    say(client, thread, "count to 100")
    run = poll_run(client, thread, assistant, max_completion_tokens=256)
    assert run.status == "completed" and run.usage.completion_tokens == 100


def words(count: int, word: str = "word") -> str:
    """Return a message of ``count`` words."""
    return " ".join([word] * count)


def recorded(make_engine):
    """Return a recording provider, and a client, assistant and thread using it."""
    recorder = RecordingProvider()
    client = make_client(create_api(make_engine(default_provider=recorder)))
    assistant = client.beta.assistants.create(model="m")
    return recorder, client, assistant, client.beta.threads.create()


def test_max_prompt_tokens_ends_the_run_before_the_model_runs(make_engine):
    recorder, client, assistant, thread = recorded(make_engine)
    say(client, thread, words(300))
    run = poll_run(client, thread, assistant, max_prompt_tokens=256)
    assert run.status == "incomplete"
    assert run.incomplete_details.reason == "max_prompt_tokens"
    assert recorder.requests == [] and run.usage is None


def test_auto_truncation_drops_the_oldest_messages_to_fit(make_engine):
    recorder, client, assistant, thread = recorded(make_engine)
    for word in ("one", "two", "three"):
        say(client, thread, words(120, word))
    run = poll_run(client, thread, assistant, max_prompt_tokens=256)
    assert run.status == "completed"
    seen = [turn.content.split()[0] for turn in recorder.requests[-1].turns]
    assert seen == ["two", "three"]
    assert run.usage.prompt_tokens == 240


def test_last_messages_truncation(make_engine):
    recorder, client, assistant, thread = recorded(make_engine)
    for text in ("one", "two", "three"):
        say(client, thread, text)
    strategy = {"type": "last_messages", "last_messages": 2}
    run = poll_run(client, thread, assistant, truncation_strategy=strategy)
    assert run.truncation_strategy.type == "last_messages"
    assert [t.content for t in recorder.requests[-1].turns] == ["two", "three"]
    with pytest.raises(openai.BadRequestError):
        poll_run(
            client,
            thread,
            assistant,
            truncation_strategy={"type": "last_messages", "last_messages": 0},
        )


def test_usage_on_runs_and_steps_adds_up(client, thread, assistant):
    run = tool_round_trip(client, thread, assistant)
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data
    reply, tools = steps
    assert tools.usage.completion_tokens == 10  # the demo's count for a call
    reply_words = len(reply_text(client, thread).split())
    assert reply.usage.completion_tokens == reply_words
    assert run.usage.completion_tokens == 10 + reply_words
    assert run.usage.prompt_tokens == (
        tools.usage.prompt_tokens + reply.usage.prompt_tokens
    )
    assert run.usage.total_tokens == (
        run.usage.prompt_tokens + run.usage.completion_tokens
    )


def test_the_chat_provider_passes_the_run_settings_on():
    provider = ChatCompletionsProvider(api_key="k", base_url="http://x/v1", model="m")
    response_format = {"type": "json_schema", "json_schema": {"name": "r"}}
    named = {"type": "function", "function": {"name": "get_current_time"}}
    request = ModelRequest(
        model="gpt-x",
        instructions="",
        turns=(Turn("user", "hi"),),
        tools=(TIME_TOOL,),
        temperature=0.2,
        top_p=0.9,
        max_completion_tokens=300,
        tool_choice=named,
        parallel_tool_calls=False,
        response_format=response_format,
    )
    params = provider.build_params(request)
    provider.close()
    assert {key: params[key] for key in SETTINGS} == {
        "temperature": 0.2,
        "top_p": 0.9,
        "max_completion_tokens": 300,
        "tool_choice": named,
        "parallel_tool_calls": False,
        "response_format": response_format,
    }


SETTINGS = (
    "temperature",
    "top_p",
    "max_completion_tokens",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
)


# created_at -----------------------------------------------------------------------


def test_a_reply_is_never_older_than_its_question(client, thread, assistant):
    question = say(client, thread, "hello")
    poll_run(client, thread, assistant)
    reply = client.beta.threads.messages.list(thread.id, limit=1).data[0]
    assert reply.created_at >= question.created_at


def test_message_times_keep_increasing_when_the_clock_steps_back(
    engine, client, thread, monkeypatch
):
    monkeypatch.setattr(objects, "now_ms", lambda: 2_000_000_001_500)
    first = say(client, thread, "first")
    monkeypatch.setattr(objects, "now_ms", lambda: 2_000_000_000_000)  # NTP step
    second = say(client, thread, "second")
    assert (first.created_at, second.created_at) == (2_000_000_001, 2_000_000_001)
    assert engine.store.message_clock(thread.id, 0) == 2_000_000_001_502


def test_parallel_calls_stream_and_resume_in_one_submit(client, thread):
    assistant = client.beta.assistants.create(model="demo", tools=[TIME_TOOL, CAT_TOOL])
    say(client, thread, "what time is it, and what is today's cat fact?")
    first = EventRecorder()
    with client.beta.threads.runs.stream(
        thread_id=thread.id,
        assistant_id=assistant.id,
        event_handler=first,
        include=[FILE_SEARCH_CONTENT],
    ) as events:
        events.until_done()
    run = first.current_run
    calls = run.required_action.submit_tool_outputs.tool_calls
    step = first.get_final_run_steps()[0]
    assert [c.id for c in step.step_details.tool_calls] == [c.id for c in calls]
    outputs = [
        {"tool_call_id": calls[0].id, "output": '{"time": "09:30"}'},
        {"tool_call_id": calls[1].id, "output": '{"trivia": "Cats nap."}'},
    ]
    second = EventRecorder()
    with client.beta.threads.runs.submit_tool_outputs_stream(
        run_id=run.id, thread_id=thread.id, tool_outputs=outputs, event_handler=second
    ) as events:
        events.until_done()
    assert second.current_run.status == "completed"
    assert "".join(second.deltas) == (
        "The current time in UTC is 09:30. Cat trivia: Cats nap."
    )

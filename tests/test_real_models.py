"""The room on the ``openai`` provider, against a scripted model server on loopback.

Everything between the browser and the model is real: the Socket.IO handlers, the
turn queue, the service, the embedded engine, the provider, the SDK and an HTTP
server that speaks Chat Completions.  No real model API is ever called.
"""

from __future__ import annotations

import json
import threading

import pytest

from tests.conftest import Person
from tests.conftest import wait_for
from tests.fake_model_server import ErrorReply
from tests.fake_model_server import FakeCall
from tests.fake_model_server import FakeModelServer
from tests.fake_model_server import Malformed
from tests.fake_model_server import Reply
from tests.fake_model_server import ToolCallReply

KEY = "sk-threadroom-test-0123456789abcdef"
MODEL = "fake-llama-3.2"
SSE = {"Accept": "text/event-stream"}
CLOCK_CALL = FakeCall("get_current_time", ('{"timezone":', ' "UTC"}'), id="call_utc1")


@pytest.fixture
def server():
    """Serve a scripted model server that wants ``KEY``."""
    with FakeModelServer(api_key=KEY) as server:
        yield server


@pytest.fixture
def app(make_app, server):
    """An app whose embedded engine answers through the fake model server."""
    return make_app(
        MODEL_BASE_URL=server.url,
        OPENAI_API_KEY=KEY,
        MODEL=MODEL,
        ASSISTANT_INSTRUCTIONS="Be brief.",
    )


def system_lines(person: Person) -> list[str]:
    """Return the text of every system ``message`` a person received."""
    return [m["content"] for m in person.payloads("message") if m["role"] == "system"]


def replies(person: Person) -> list[str]:
    """Return the assistant messages a person was sent, oldest first."""
    return [
        m["content"]
        for batch in person.payloads("message-list")
        for m in batch
        if m["role"] == "assistant"
    ]


def roles(request: dict) -> list[str]:
    """Return the roles of a model request's messages."""
    return [m["role"] for m in request["messages"]]


def post_stream(app, person: Person, content: str) -> threading.Thread:
    """POST /stream as ``person`` in a thread (the response body is drained)."""

    def post() -> None:
        response = app.test_client().post(
            "/stream",
            json={"content": content},
            headers={**SSE, "X-Socket-Id": person.sid},
        )
        response.get_data()

    thread = threading.Thread(target=post)
    thread.start()
    return thread


# -- replies ---------------------------------------------------------------------


def test_a_plain_reply_reaches_everyone_in_the_room(server, people):
    alice, bob = people("Alice"), people("Bob")
    server.push(Reply(("Hello ", "Alice", "!")))
    assert alice.say("Hi, model!")["ok"]
    for person in (alice, bob):
        assert person.wait("ai-end")[0]["status"] == "completed"
        assert replies(person) == ["Hello Alice!"]
    request = server.requests[0]
    assert request["model"] == MODEL and request["stream"] is True
    assert server.headers[0]["Authorization"] == f"Bearer {KEY}"
    assert request["messages"][0]["role"] == "system"
    assert request["messages"][0]["content"].startswith("Be brief.")
    assert request["messages"][-1] == {"role": "user", "content": "[Alice]: Hi, model!"}
    assert {t["function"]["name"] for t in request["tools"]} >= {"get_current_time"}


def test_stream_relays_the_model_chunks_as_ai_delta(app, server, people):
    alice, bob = people("Alice"), people("Bob")
    chunks = ("Once ", "upon ", "a ", "time.")
    server.push(Reply(chunks))
    post_stream(app, alice, "Tell me a story").join(timeout=20)
    assert bob.wait("ai-end")[0]["status"] == "completed"
    assert [d["delta"] for d in bob.payloads("ai-delta")] == list(chunks)
    assert replies(bob) == ["Once upon a time."]


def test_a_tool_call_is_answered_and_the_follow_up_reaches_the_room(server, people):
    alice, bob = people("Alice"), people("Bob")
    server.push(ToolCallReply((CLOCK_CALL,)), Reply(("It is noon ", "in UTC.")))
    alice.say("What time is it in UTC?")
    bob.wait("ai-end")
    tools = [(t["name"], t["status"]) for t in bob.payloads("ai-tool")]
    assert tools == [("get_current_time", "running"), ("get_current_time", "done")]
    assert replies(bob) == ["It is noon in UTC."]
    follow_up = server.requests[1]["messages"]
    assert roles(server.requests[1])[-3:] == ["user", "assistant", "tool"]
    call = follow_up[-2]["tool_calls"][0]
    assert (call["id"], call["function"]["name"]) == ("call_utc1", "get_current_time")
    assert json.loads(call["function"]["arguments"]) == {"timezone": "UTC"}
    output = follow_up[-1]
    assert output["tool_call_id"] == "call_utc1"
    assert json.loads(output["content"])["timezone"] == "UTC"


def test_the_next_turn_carries_speakers_and_the_past_tool_round(server, people):
    alice, bob = people("Alice"), people("Bob")
    server.push(ToolCallReply((CLOCK_CALL,)), Reply(("It is noon in UTC.",)))
    alice.say("What time is it in UTC?")
    alice.wait("ai-end")
    server.push(Reply(("You're welcome, Bob.",)))
    bob.say("Thanks!")
    alice.wait("ai-end", 2)
    request = server.requests[2]
    print(json.dumps(request["messages"], indent=1))
    assert roles(request) == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
    ]
    messages = request["messages"]
    assert messages[1]["content"] == "[Alice]: What time is it in UTC?"
    assert messages[2]["tool_calls"][0]["id"] == messages[3]["tool_call_id"]
    assert messages[4] == {"role": "assistant", "content": "It is noon in UTC."}
    assert messages[5] == {"role": "user", "content": "[Bob]: Thanks!"}
    assert '["Bob"]' in messages[0]["content"]  # who is speaking now
    assert replies(alice)[-1] == "You're welcome, Bob."


def test_a_long_history_is_trimmed_to_the_context_budget(make_app, server):
    app = make_app(
        MODEL_BASE_URL=server.url,
        OPENAI_API_KEY=KEY,
        MODEL=MODEL,
        ASSISTANT_INSTRUCTIONS="Be brief.",
        MODEL_CONTEXT_CHARS=1200,
    )
    alice = Person(app, app.test_client())
    alice.register("Alice")
    for number in range(1, 6):
        alice.say(f"turn {number} " + "x" * 300)
        alice.wait("ai-end", number)
    last = server.requests[-1]["messages"]
    contents = [m["content"] or "" for m in last]
    assert sum(len(text) for text in contents) <= 1200
    assert contents[-1].startswith("[Alice]: turn 5 ")
    assert not any("turn 1 " in text for text in contents)
    assert len(last) < 1 + 9  # the system message plus fewer than all nine turns
    assert last[1]["role"] != "tool"  # never a tool output without its call
    alice.close()


# -- failures --------------------------------------------------------------------

FAILURES = {
    "persistent-500": (
        [ErrorReply(500)] * 3,
        {},
        "The model server failed (HTTP 500).",
    ),
    "bad-key-401": (
        [],
        {"OPENAI_API_KEY": "sk-wrong-key-9876543210"},
        "The model server rejected the API key (401). Check OPENAI_API_KEY.",
    ),
    "stall": (
        [Reply(("Hel", "lo"), stall_after_first_s=30)],
        {"MODEL_STALL_TIMEOUT_S": 1},
        "The model stopped responding (no data for 1 s).",
    ),
    "malformed-chunk": (
        [Malformed()],
        {},
        "The model server sent a malformed response.",
    ),
}


@pytest.mark.parametrize("mode", ["poll", "stream"])
@pytest.mark.parametrize("failure", list(FAILURES))
def test_a_model_failure_is_one_readable_line_and_the_room_goes_on(
    make_app, server, failure, mode
):
    behaviours, overrides, reason = FAILURES[failure]
    app = make_app(
        **{"MODEL_BASE_URL": server.url, "OPENAI_API_KEY": KEY, "MODEL": MODEL}
        | overrides
    )
    alice, bob = Person(app, app.test_client()), Person(app, app.test_client())
    alice.register("Alice")
    bob.register("Bob")
    server.push(*behaviours)
    if mode == "poll":
        alice.say("Are you there?")
    else:
        post_stream(app, alice, "Are you there?").join(timeout=20)
    assert bob.wait("ai-end")[0]["status"] == "failed"
    sentence = f"The assistant could not answer: {reason}"
    assert system_lines(bob) == [sentence] and system_lines(alice) == [sentence]
    assert "sk-" not in sentence
    server.api_key = None  # the operator fixed the key; the server recovered
    server.push(Reply(("Back ", "again.")))
    bob.say("And now?")
    assert bob.wait("ai-end", 2)[-1]["status"] == "completed"
    assert replies(bob)[-1] == "Back again."
    assert len(system_lines(bob)) == 1
    for person in (alice, bob):
        person.close()


def test_rate_limits_are_retried_and_the_room_just_gets_the_answer(server, people):
    alice, bob = people("Alice"), people("Bob")
    server.push(ErrorReply(429, "Slow down"), ErrorReply(429), Reply(("Finally.",)))
    alice.say("Hello?")
    assert bob.wait("ai-end")[0]["status"] == "completed"
    assert replies(bob) == ["Finally."]
    assert system_lines(bob) == [] and system_lines(alice) == []
    assert len(server.requests) == 3


# -- what the page says ----------------------------------------------------------


def test_healthz_and_page_name_the_backend_and_model_but_never_the_key(client):
    health = client.get("/healthz")
    assert health.get_json() == {"status": "ok", "backend": "openai", "model": MODEL}
    page = client.get("/").get_data(as_text=True)
    assert MODEL in page and "openai" in page
    for text in (health.get_data(as_text=True), page):
        assert KEY not in text and KEY[:12] not in text


def test_the_welcome_names_the_model_but_not_the_key(people):
    welcome = people("Alice").wait("welcome")[0]
    assert welcome["assistant"]["backend"] == "openai"
    assert welcome["assistant"]["model"] == MODEL
    assert welcome["assistant"]["is_demo"] is False
    assert KEY not in json.dumps(welcome)


def test_the_model_calls_wait_for_nothing_but_the_model(server, people):
    """A slow model delays the reply, never the room's other traffic."""
    alice = people("Alice")
    server.push(Reply(tuple("abcdefgh"), delay_s=0.1))
    alice.say("slowly, please")
    alice.wait("ai-start")
    bob = people("Bob")
    assert alice.wait("join")[0]["name"] == "Bob"
    assert bob.say("hi while it types")["ok"]
    assert alice.wait("message")[0]["content"] == "hi while it types"
    assert "ai-end" not in alice.names()  # the reply was still being written
    wait_for(lambda: len(alice.payloads("ai-end")) == 2, timeout=20)

"""Remote Assistants mode: this Threadroom drives another Threadroom's ``/v1``.

The remote side is a real process (``python app.py`` on eventlet, engine mounted
because ``ENGINE_API_KEY`` is set, demo model).  Its assistant is created over HTTP
with the official SDK, as an operator would; the app under test only gets its id.
"""

from __future__ import annotations

import itertools
import time

import openai
import pytest

from app import create_app
from assistant.errors import AssistantError
from assistant.setup import get_assistant
from assistant.tools import default_registry
from rooms.rooms import get_rooms
from tests.conftest import TEST_CONFIG
from tests.conftest import Person
from tests.conftest import wait_for
from tests.live_server import LiveServer

ENGINE_KEY = "sk-engine-test-remote-0123456789"
SSE = {"Accept": "text/event-stream"}


@pytest.fixture(scope="module")
def remote(tmp_path_factory):
    """Run a second Threadroom with its engine mounted at ``/v1``."""
    tmp_path = tmp_path_factory.mktemp("remote")
    with LiveServer(tmp_path, ENGINE_API_KEY=ENGINE_KEY, DEMO_DELAY_MS="5") as server:
        yield server


@pytest.fixture(scope="module")
def sdk(remote):
    """An SDK client for the remote engine, as an operator would use it."""
    client = openai.OpenAI(base_url=remote.url + "/v1", api_key=ENGINE_KEY)
    yield client
    client.close()


@pytest.fixture(scope="module")
def assistant_id(sdk):
    """Create the assistant the room will use, with the built-in tools."""
    created = sdk.beta.assistants.create(
        model="demo",
        name="Remote helper",
        instructions="Be brief.",
        tools=default_registry().definitions(),
    )
    return created.id


@pytest.fixture
def remote_app(make_app, remote, assistant_id):
    """Build an app that talks to the remote engine; close its client after."""
    built = []

    def build(**overrides):
        app = make_app(
            ASSISTANTS_BASE_URL=remote.url + "/v1",
            OPENAI_ASSISTANT_ID=assistant_id,
            OPENAI_API_KEY=ENGINE_KEY,
            **overrides,
        )
        built.append(app)
        return app

    yield build
    for app in built:
        get_assistant(app).client.close()


def record_run_calls(app) -> list[tuple[str, float]]:
    """Note when the app's SDK client creates (``POST``) or polls (``GET``) a run."""
    calls: list[tuple[str, float]] = []

    def on_request(request) -> None:
        path = request.url.path.rstrip("/")
        if "/runs" in path and "/steps" not in path and "/submit" not in path:
            calls.append((request.method, time.monotonic()))

    get_assistant(app).client._client.event_hooks["request"].append(on_request)
    return calls


def test_the_room_completes_a_turn_with_a_tool_call_on_the_remote_engine(
    remote_app, remote
):
    app = remote_app()
    calls = record_run_calls(app)
    health = app.test_client().get("/healthz").get_json()
    assert health == {"status": "ok", "backend": "remote", "model": "demo"}
    alice = Person(app, app.test_client())
    bob = Person(app, app.test_client())
    alice.register("Alice")
    bob.register("Bob")
    assert alice.wait("welcome")[0]["assistant"]["name"] == "Remote helper"
    alice.say("What time is it in Tokyo?")
    assert bob.wait("ai-end", timeout=20)[0]["status"] == "completed"
    tools = [(t["name"], t["status"]) for t in bob.payloads("ai-tool")]
    assert tools == [("get_current_time", "running"), ("get_current_time", "done")]
    reply = bob.payloads("message-list")[-1][0]
    assert reply["role"] == "assistant" and "Asia/Tokyo" in reply["content"]
    assert reply["name"] == "Remote helper"
    methods = [method for method, _ in calls]
    assert methods[0] == "POST" and methods.count("GET") >= 1
    gaps = [round(b[1] - a[1], 3) for a, b in itertools.pairwise(calls)]
    print(f"remote run calls: {methods}, gaps (s): {gaps}")
    # The first poll comes after POLL_INTERVAL_MS (20 ms), not the SDK's 1 s.
    assert gaps[0] < 0.5
    for person in (alice, bob):
        person.close()


def test_the_remote_stream_reaches_the_room_as_ai_delta(remote_app):
    app = remote_app()
    alice = Person(app, app.test_client())
    bob = Person(app, app.test_client())
    alice.register("Alice")
    bob.register("Bob")
    response = app.test_client().post(
        "/stream",
        json={"content": "what is 6*7?"},
        headers={**SSE, "X-Socket-Id": alice.sid},
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "event: done" in body
    assert bob.wait("ai-end", timeout=20)[0]["status"] == "completed"
    deltas = "".join(d["delta"] for d in bob.payloads("ai-delta"))
    assert "42" in deltas
    assert bob.payloads("message-list")[-1][0]["content"] == deltas
    assert [t["name"] for t in bob.payloads("ai-tool")] == ["calculate", "calculate"]
    for person in (alice, bob):
        person.close()


def test_an_empty_room_deletes_its_remote_thread_with_ttl_zero(remote_app, sdk):
    app = remote_app(EMPTY_ROOM_TTL_S=0)
    alice = Person(app, app.test_client())
    alice.register("Alice")
    alice.say("hello remote")
    alice.wait("ai-end", timeout=20)
    thread_id = get_rooms(app).room("lobby").thread_id
    assert sdk.beta.threads.retrieve(thread_id).id == thread_id
    alice.close()
    wait_for(lambda: get_rooms(app).room("lobby").thread_id is None)

    def gone() -> bool:
        try:
            sdk.beta.threads.retrieve(thread_id)
        except openai.NotFoundError:
            return True
        return False

    wait_for(gone)


def test_a_kept_room_keeps_its_remote_thread(remote_app, sdk):
    app = remote_app(EMPTY_ROOM_TTL_S=-1)
    alice = Person(app, app.test_client())
    alice.register("Alice")
    alice.say("keep me")
    alice.wait("ai-end", timeout=20)
    thread_id = get_rooms(app).room("lobby").thread_id
    alice.close()
    messages = sdk.beta.threads.messages.list(thread_id, order="asc")
    assert [m.role for m in messages] == ["user", "assistant"]
    assert messages.data[0].metadata["name"] == "Alice"


def test_an_unknown_assistant_id_stops_the_start(remote):
    config = {
        **TEST_CONFIG,
        "ASSISTANTS_BASE_URL": remote.url + "/v1",
        "OPENAI_ASSISTANT_ID": "asst_does_not_exist",
        "OPENAI_API_KEY": ENGINE_KEY,
    }
    with pytest.raises(AssistantError) as caught:
        create_app(config)
    message = caught.value.message
    assert "asst_does_not_exist" in message and remote.url + "/v1" in message
    assert ENGINE_KEY not in message


def test_a_wrong_engine_key_stops_the_start(remote, assistant_id):
    config = {
        **TEST_CONFIG,
        "ASSISTANTS_BASE_URL": remote.url + "/v1",
        "OPENAI_ASSISTANT_ID": assistant_id,
        "OPENAI_API_KEY": "sk-not-the-engine-key",
    }
    with pytest.raises(AssistantError) as caught:
        create_app(config)
    assert "AuthenticationError" in caught.value.message
    assert "sk-not-the-engine-key" not in caught.value.message


def test_a_base_url_without_an_assistant_id_stops_the_start():
    config = {**TEST_CONFIG, "ASSISTANTS_BASE_URL": "http://127.0.0.1:9/v1"}
    with pytest.raises(AssistantError) as caught:
        create_app(config)
    assert caught.value.message == (
        "ASSISTANTS_BASE_URL is set but OPENAI_ASSISTANT_ID is not."
    )

"""A retrieve that asks to wait (``Prefer: wait=N``) is held until the run stops
moving on its own; one that does not ask is answered at once, as before."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from engine_helpers import TIME_TOOL
from engine_helpers import make_client
from engine_helpers import say
from engine_helpers import wait_until

from assistant.engine import create_api
from assistant.engine.providers.base import ModelRequest
from assistant.engine.providers.base import ProviderEvent
from assistant.engine.providers.base import TextDelta

pytest_plugins = ["engine_fixtures"]


class GatedProvider:
    """Writes one word, then waits for ``gate`` before finishing the reply."""

    name = "gated"

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.writing = threading.Event()

    def stream(self, request: ModelRequest) -> Iterator[ProviderEvent]:
        """Yield a word, wait for the gate, yield the rest."""
        yield TextDelta("Hello ")
        self.writing.set()
        self.gate.wait(10)
        yield TextDelta("there.")


@pytest.fixture
def gated():
    """Return the gated provider (its gate opened after the test)."""
    provider = GatedProvider()
    yield provider
    provider.gate.set()


@pytest.fixture
def gated_engine(make_engine, gated):
    """Return an engine whose model waits for the test's go, with a poll hint."""
    return make_engine(default_provider=gated, poll_after_ms=250)


@pytest.fixture
def client(gated_engine):
    """Return a strict SDK client over the gated engine."""
    return make_client(create_api(gated_engine))


def start_run(client, gated):
    """Start a run on a new thread and wait until the model is writing."""
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[TIME_TOOL])
    thread = client.beta.threads.create()
    say(client, thread, "Hi")
    run = client.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
    assert gated.writing.wait(5)
    return thread, run


def retrieve(client, thread, run, **headers):
    """Retrieve a run with extra headers; return it and the response headers."""
    raw = client.beta.threads.runs.with_raw_response.retrieve(
        run.id, thread_id=thread.id, extra_headers=headers
    )
    return raw.parse(), raw.headers


def test_a_retrieve_without_prefer_is_answered_at_once(client, gated):
    thread, run = start_run(client, gated)
    seen, headers = retrieve(client, thread, run)
    assert seen.status == "in_progress"
    assert headers["openai-poll-after-ms"] == "250"
    assert "preference-applied" not in headers


def held_retrieve(client, thread, run, engine) -> tuple[threading.Thread, list]:
    """Start a ``retrieve`` asking to wait, in a thread; return once the engine
    holds it, with the list its answer will be put in."""
    answers: list = []
    waiter = threading.Thread(
        target=lambda: answers.append(retrieve(client, thread, run, Prefer="wait=30"))
    )
    waiter.start()
    wait_until(lambda: run.id in engine.runner._watchers)
    return waiter, answers


def test_a_waiting_retrieve_answers_when_the_run_completes(client, gated, gated_engine):
    thread, run = start_run(client, gated)
    waiter, answers = held_retrieve(client, thread, run, gated_engine)
    # The request is in, held: the run is still being written.
    assert not answers
    gated.gate.set()
    waiter.join(10)
    seen, headers = answers[0]
    assert seen.status == "completed"
    assert headers["preference-applied"] == "wait=30"
    assert headers["openai-poll-after-ms"] == "0"  # ask again at once, if ever


def test_a_waiting_retrieve_answers_when_the_run_wants_tools(client):
    assistant = client.beta.assistants.create(model="demo", tools=[TIME_TOOL])
    thread = client.beta.threads.create()
    say(client, thread, "What time is it in Tokyo?")
    run = client.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
    seen, headers = retrieve(client, thread, run, Prefer="wait=30")
    assert seen.status == "requires_action"
    assert headers["preference-applied"] == "wait=30"


def test_a_waiting_retrieve_answers_at_its_bound_if_the_run_goes_on(client, gated):
    thread, run = start_run(client, gated)
    seen, headers = retrieve(client, thread, run, Prefer="respond-async, wait=1")
    assert seen.status == "in_progress"
    assert headers["preference-applied"] == "wait=1"


def test_a_waiting_retrieve_answers_a_cancel(client, gated, gated_engine):
    thread, run = start_run(client, gated)
    waiter, answers = held_retrieve(client, thread, run, gated_engine)
    client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    gated.gate.set()  # the model yields once more and sees the cancel
    waiter.join(10)
    assert answers[0][0].status == "cancelled"

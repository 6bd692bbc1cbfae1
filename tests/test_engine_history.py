"""A run reads only the newest part of its thread that the model can be shown:
the rows it decodes stay the same however long the thread grows."""

from __future__ import annotations

import json

import pytest
from engine_helpers import RecordingProvider
from engine_helpers import make_client

from assistant.engine import create_api
from assistant.engine import store as store_module

pytest_plugins = ["engine_fixtures"]

FILLER = "a message of exactly eight words, filler text"  # 46 characters


class CountingJson:
    """Stands in for the store's ``json``, counting what it decodes."""

    def __init__(self) -> None:
        self.loads_count = 0

    def loads(self, text: str):
        """Decode ``text``, counting it."""
        self.loads_count += 1
        return json.loads(text)

    dumps = staticmethod(json.dumps)


@pytest.fixture
def provider():
    """Return a demo model that records its requests."""
    return RecordingProvider()


def fill(engine, count: int) -> tuple[str, str]:
    """Make a thread of ``count`` user messages; return its id and an assistant's."""
    client = make_client(create_api(engine))
    assistant = client.beta.assistants.create(model="gpt-4o")
    messages = [{"role": "user", "content": f"{n}: {FILLER}"} for n in range(count)]
    thread = client.beta.threads.create(messages=messages)
    return thread.id, assistant.id


def decoded_by_one_run(engine, monkeypatch, thread_id, assistant_id, **settings):
    """Run once on the thread; return how many stored rows the run decoded."""
    client = make_client(create_api(engine))
    counting = CountingJson()
    monkeypatch.setattr(store_module, "json", counting)
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread_id, assistant_id=assistant_id, poll_interval_ms=10, **settings
    )
    monkeypatch.undo()
    assert run.status == "completed"
    return counting.loads_count


@pytest.mark.parametrize("length", [100, 400])
def test_a_run_decodes_only_what_fits_the_models_window(
    make_engine, provider, monkeypatch, length
):
    engine = make_engine(default_provider=provider, context_chars=2000)
    thread_id, assistant_id = fill(engine, length)
    decoded = decoded_by_one_run(engine, monkeypatch, thread_id, assistant_id)
    # 2,000 characters are about 40 messages: one page of the history (64) and
    # the run's own objects, whatever the thread's length.
    assert decoded <= 64 + 20
    turns = provider.requests[-1].turns
    assert turns[-1].content == f"{length - 1}: {FILLER}"  # the newest is there
    assert 2000 <= sum(len(turn.content) for turn in turns) < 2000 + 64


def test_last_messages_reads_that_many(make_engine, provider, monkeypatch):
    engine = make_engine(default_provider=provider)
    thread_id, assistant_id = fill(engine, 400)
    decoded = decoded_by_one_run(
        engine,
        monkeypatch,
        thread_id,
        assistant_id,
        truncation_strategy={"type": "last_messages", "last_messages": 3},
    )
    assert decoded <= 64 + 20
    assert len(provider.requests[-1].turns) == 3


def test_max_prompt_tokens_reads_what_fits_it(make_engine, provider, monkeypatch):
    engine = make_engine(default_provider=provider)
    thread_id, assistant_id = fill(engine, 400)
    decoded = decoded_by_one_run(
        engine, monkeypatch, thread_id, assistant_id, max_prompt_tokens=300
    )
    assert decoded <= 64 + 20
    turns = provider.requests[-1].turns
    assert 0 < len(turns) <= 300 // 9  # nine words a message
    assert turns[-1].content == f"399: {FILLER}"


def test_the_whole_thread_is_read_when_it_fits(make_engine, provider):
    engine = make_engine(default_provider=provider, context_chars=48000)
    thread_id, assistant_id = fill(engine, 150)  # 7,500 characters
    client = make_client(create_api(engine))
    client.beta.threads.runs.create_and_poll(
        thread_id=thread_id, assistant_id=assistant_id, poll_interval_ms=10
    )
    contents = [turn.content for turn in provider.requests[-1].turns]
    assert contents == [f"{n}: {FILLER}" for n in range(150)]

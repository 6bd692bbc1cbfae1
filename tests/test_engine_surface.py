"""The rest of the Assistants v2 surface, judged by the official SDK (strict)."""

from __future__ import annotations

import openai
import pytest
from engine_helpers import TIME_TOOL
from engine_helpers import make_client
from engine_helpers import poll_run
from engine_helpers import say

from assistant.engine import create_api

pytest_plugins = ["engine_fixtures"]


@pytest.fixture
def client(engine):
    """Return a strict SDK client over the engine."""
    return make_client(create_api(engine))


@pytest.fixture
def assistant(client):
    """Return a demo assistant with the time tool."""
    return client.beta.assistants.create(model="demo", tools=[TIME_TOOL])


@pytest.fixture
def thread(client):
    """Return an empty thread."""
    return client.beta.threads.create()


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

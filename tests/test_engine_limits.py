"""Input caps of the engine's ``/v1``: message length."""

from __future__ import annotations

import openai
import pytest
from engine_helpers import make_client
from engine_helpers import raw_client

from assistant.engine import create_engine

JSON = {"content-type": "application/json"}
TOO_LONG = (
    "Invalid '{param}': string too long. Expected a string with maximum length"
    " 256000, but got a string with length 256001 instead."
)


@pytest.fixture
def engine():
    """Return an in-memory engine, closed after the test."""
    engine = create_engine()
    yield engine
    engine.close()


@pytest.fixture
def client(engine):
    """Return a strict SDK client over the engine."""
    return make_client(engine.wsgi_app)


@pytest.fixture
def http(engine):
    """Return a plain HTTP client over the engine (it sends bytes as they are)."""
    with raw_client(engine.wsgi_app) as http:
        yield http


@pytest.fixture
def thread_id(client):
    """Return the id of an empty thread."""
    return client.beta.threads.create().id


def test_message_text_is_capped_at_256000_characters(client, thread_id):
    messages = client.beta.threads.messages
    longest = messages.create(thread_id, role="user", content="x" * 256_000)
    assert len(longest.content[0].text.value) == 256_000
    with pytest.raises(openai.BadRequestError) as caught:
        messages.create(thread_id, role="user", content="x" * 256_001)
    assert caught.value.param == "content"
    assert caught.value.body["message"] == TOO_LONG.format(param="content")
    assert [m.id for m in messages.list(thread_id)] == [longest.id]


def test_the_cap_applies_to_new_threads_and_additional_messages(
    engine, client, thread_id
):
    part = {"type": "text", "text": "y" * 256_001}
    with pytest.raises(openai.BadRequestError) as caught:
        client.beta.threads.create(messages=[{"role": "user", "content": [part]}])
    assert caught.value.param == "messages[0].content[0].text"
    assert caught.value.body["message"] == TOO_LONG.format(
        param="messages[0].content[0].text"
    )
    assistant = client.beta.assistants.create(model="demo")
    with pytest.raises(openai.BadRequestError) as caught:
        client.beta.threads.runs.create(
            thread_id=thread_id,
            assistant_id=assistant.id,
            additional_messages=[{"role": "user", "content": "z" * 256_001}],
        )
    assert caught.value.param == "additional_messages[0].content"
    assert engine.store.select("runs") == []
    assert client.beta.threads.messages.list(thread_id).data == []

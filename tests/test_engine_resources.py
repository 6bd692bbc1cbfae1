"""Assistants, threads and messages of the embedded engine, judged by the SDK."""

from __future__ import annotations

import openai
import pytest
from engine_helpers import make_client
from engine_helpers import say

from assistant.engine import create_api

pytest_plugins = ["engine_fixtures"]


@pytest.fixture
def client(engine):
    """Return a strict SDK client over the engine."""
    return make_client(create_api(engine))


@pytest.fixture
def assistant(client):
    """Return a demo assistant."""
    return client.beta.assistants.create(model="demo", name="Bot", instructions="Hi.")


def test_assistant_create_retrieve_modify(client, assistant):
    got = client.beta.assistants.retrieve(assistant.id)
    assert (got.name, got.model, got.instructions) == ("Bot", "demo", "Hi.")
    changed = client.beta.assistants.update(
        assistant.id, name="Bot 2", metadata={"k": "v"}, temperature=0.5
    )
    assert (changed.name, changed.metadata, changed.temperature) == (
        "Bot 2",
        {"k": "v"},
        0.5,
    )
    assert changed.instructions == "Hi."


def test_assistant_list_pages_both_orders(client):
    ids = [client.beta.assistants.create(model="demo").id for _ in range(5)]
    page = client.beta.assistants.list(limit=2, order="asc")
    assert [a.id for a in page.data] == ids[:2] and page.has_more
    assert [a.id for a in client.beta.assistants.list(order="asc", limit=2)] == ids
    newest = client.beta.assistants.list(limit=2, before=ids[2], order="desc")
    assert [a.id for a in newest.data] == [ids[4], ids[3]]


def test_thread_create_retrieve_delete(client):
    thread = client.beta.threads.create(
        metadata={"room": "lobby"}, messages=[{"role": "user", "content": "first"}]
    )
    assert client.beta.threads.retrieve(thread.id).metadata == {"room": "lobby"}
    assert len(client.beta.threads.messages.list(thread.id).data) == 1
    deleted = client.beta.threads.delete(thread.id)
    assert (deleted.id, deleted.deleted) == (thread.id, True)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.retrieve(thread.id)


def test_message_create_parts_and_retrieve(client, thread):
    content = [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": "https://x.test/c.png"}},
    ]
    msg = client.beta.threads.messages.create(
        thread.id, role="user", content=content, metadata={"name": "Bob"}
    )
    got = client.beta.threads.messages.retrieve(msg.id, thread_id=thread.id)
    assert got.content[0].text.value == "look"
    assert got.content[1].image_url.url == "https://x.test/c.png"
    assert (got.status, got.run_id, got.metadata) == (
        "completed",
        None,
        {"name": "Bob"},
    )


def test_message_pagination_both_orders(client, thread):
    ids = [say(client, thread, f"m{i}").id for i in range(5)]
    first = client.beta.threads.messages.list(thread.id, limit=2)
    assert [m.id for m in first.data] == [ids[4], ids[3]] and first.has_more
    after = client.beta.threads.messages.list(thread.id, limit=2, after=ids[3])
    assert [m.id for m in after.data] == [ids[2], ids[1]]
    asc = client.beta.threads.messages.list(thread.id, order="asc", limit=2)
    assert [m.id for m in asc] == ids  # auto-pagination over 3 pages
    before = client.beta.threads.messages.list(
        thread.id, order="asc", limit=2, before=ids[3]
    )
    assert [m.id for m in before.data] == [ids[1], ids[2]] and before.has_more
    last = client.beta.threads.messages.list(thread.id, limit=2, after=ids[1])
    assert [m.id for m in last.data] == [ids[0]] and not last.has_more


def test_message_list_filters_by_run(client, thread, assistant):
    say(client, thread, "hello")
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=10
    )
    listed = client.beta.threads.messages.list(thread.id, run_id=run.id)
    assert [m.role for m in listed.data] == ["assistant"]


@pytest.mark.parametrize(
    ("metadata", "wording"),
    [
        ({f"k{i}": "v" for i in range(17)}, "at most 16 properties, but got"),
        ({"k" * 65: "v"}, "maximum length 64"),
        ({"k": "v" * 513}, "maximum length 512"),
    ],
)
def test_metadata_limits(client, thread, metadata, wording):
    with pytest.raises(openai.BadRequestError) as caught:
        client.beta.threads.messages.create(
            thread.id, role="user", content="x", metadata=metadata
        )
    assert wording in caught.value.message
    assert caught.value.param.startswith("metadata")


def test_metadata_seventeen_keys_wording(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.beta.threads.create(metadata={f"k{i}": "v" for i in range(17)})
    assert caught.value.body["message"] == (
        "Invalid 'metadata': too many properties. Expected an object with at most 16"
        " properties, but got an object with 17 properties instead."
    )


@pytest.mark.parametrize(
    ("call", "wording"),
    [
        (lambda c: c.beta.threads.retrieve("thread_x"), "No thread found with id"),
        (lambda c: c.beta.assistants.retrieve("asst_x"), "No assistant found with id"),
        (
            lambda c: c.beta.threads.runs.retrieve("run_x", thread_id="thread_x"),
            "No thread found with id 'thread_x'.",
        ),
    ],
)
def test_unknown_ids_are_404(client, call, wording):
    with pytest.raises(openai.NotFoundError) as caught:
        call(client)
    assert wording in caught.value.message
    assert caught.value.type == "invalid_request_error"


def test_unknown_run_and_message_are_404(client, thread):
    with pytest.raises(openai.NotFoundError, match="No run found with id 'run_x'."):
        client.beta.threads.runs.retrieve("run_x", thread_id=thread.id)
    with pytest.raises(openai.NotFoundError, match="No message found with id 'msg_x'."):
        client.beta.threads.messages.retrieve("msg_x", thread_id=thread.id)


def test_missing_required_field_names_param(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.beta.assistants.create(model=None)
    assert caught.value.param == "model"
    assert caught.value.message.endswith("Missing required parameter: 'model'.")

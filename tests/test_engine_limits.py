"""Input caps of the engine's ``/v1``: lone surrogates, message length, body size."""

from __future__ import annotations

import json

import openai
import pytest
from engine_helpers import make_client

from assistant.engine import create_api
from assistant.engine.api import MAX_BODY_BYTES

pytest_plugins = ["engine_fixtures"]

LONE = "\\ud800"  # a JSON escape json.loads turns into an unpaired surrogate
JSON = {"content-type": "application/json"}
TOO_LONG = (
    "Invalid '{param}': string too long. Expected a string with maximum length"
    " 256000, but got a string with length 256001 instead."
)


@pytest.fixture
def client(engine):
    """Return a strict SDK client over the engine."""
    return make_client(create_api(engine))


@pytest.fixture
def thread_id(client):
    """Return the id of an empty thread."""
    return client.beta.threads.create().id


def post_raw(http, path: str, text: str):
    """POST a JSON body written by hand, so escapes reach the server unchanged."""
    return http.post(path, content=text.encode("ascii"), headers=JSON)


def assert_refused(response, param: str) -> None:
    """Check a 400 that names ``param`` and says why."""
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"
    assert "lone surrogate (U+D800)" in error["message"]
    assert response.headers["x-should-retry"] == "false"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (f'{{"role": "user", "content": "hi {LONE}"}}', "content"),
        (
            f'{{"role": "user", "content": [{{"type": "text", "text": "{LONE}"}}]}}',
            "content[0].text",
        ),
        (
            f'{{"role": "user", "content": "hi", "metadata": {{"name": "A{LONE}"}}}}',
            "metadata.name",
        ),
        (
            f'{{"role": "user", "content": "hi", "metadata": {{"{LONE}": "v"}}}}',
            "metadata",
        ),
    ],
)
def test_a_lone_surrogate_in_a_message_is_refused_and_not_stored(
    client, http, thread_id, body, param
):
    response = post_raw(http, f"/v1/threads/{thread_id}/messages", body)
    assert_refused(response, param)
    assert client.beta.threads.messages.list(thread_id).data == []


def test_a_lone_surrogate_is_refused_on_every_create(engine, client, http, thread_id):
    assistant = client.beta.assistants.create(model="demo")
    cases = [
        ("/v1/assistants", f'{{"model": "demo", "name": "B{LONE}"}}', "name"),
        (
            "/v1/assistants",
            f'{{"model": "demo", "instructions": "{LONE}"}}',
            "instructions",
        ),
        (
            "/v1/threads",
            f'{{"messages": [{{"role": "user", "content": "{LONE}"}}]}}',
            "messages[0].content",
        ),
        (
            f"/v1/threads/{thread_id}/runs",
            f'{{"assistant_id": "{assistant.id}", "additional_messages":'
            f' [{{"role": "user", "content": "ok"}}, {{"role": "user",'
            f' "content": [{{"type": "text", "text": "x{LONE}"}}]}}]}}',
            "additional_messages[1].content[0].text",
        ),
        (
            f"/v1/threads/{thread_id}/runs",
            f'{{"assistant_id": "{assistant.id}", "instructions": "{LONE}"}}',
            "instructions",
        ),
    ]
    for path, body, param in cases:
        assert_refused(post_raw(http, path, body), param)
    assert [a.id for a in client.beta.assistants.list()] == [assistant.id]
    assert client.beta.threads.messages.list(thread_id).data == []
    assert engine.store.select("runs") == []


def test_an_escaped_surrogate_pair_is_one_valid_character(client, http, thread_id):
    body = '{"role": "user", "content": "cat \\ud83d\\ude3a"}'
    response = post_raw(http, f"/v1/threads/{thread_id}/messages", body)
    assert response.status_code == 200, response.text
    stored = client.beta.threads.messages.list(thread_id).data[0]
    assert stored.content[0].text.value == "cat \U0001f63a"


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


def test_an_oversized_body_is_a_json_413_not_retried(http):
    padding = "p" * MAX_BODY_BYTES
    body = json.dumps({"model": "demo", "metadata": {"pad": padding}})
    response = http.post("/v1/assistants", content=body.encode(), headers=JSON)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-should-retry"] == "false"
    assert response.json()["error"] == {
        "message": f"Maximum content size limit ({MAX_BODY_BYTES}) exceeded"
        f" ({len(body)} bytes read)",
        "type": "server_error",
        "param": None,
        "code": None,
    }


def test_the_sdk_sees_the_413_once(engine):
    requests = []
    api = create_api(engine)

    def counting(environ, start_response):
        requests.append(environ["PATH_INFO"])
        return api(environ, start_response)

    client = make_client(counting)
    client = client.with_options(max_retries=2)
    with pytest.raises(openai.APIStatusError) as caught:
        client.beta.threads.create(metadata={"pad": "p" * MAX_BODY_BYTES})
    assert caught.value.status_code == 413
    assert caught.value.type == "server_error"
    assert requests == ["/v1/threads"]


def test_the_mounted_v1_answers_413_as_json(make_app):
    app = make_app(ENGINE_API_KEY="sk-engine-test")
    response = app.test_client().post(
        "/v1/threads",
        data=b"{" + b" " * MAX_BODY_BYTES + b"}",
        headers={"Authorization": "Bearer sk-engine-test", **JSON},
    )
    assert response.status_code == 413
    assert response.is_json and response.json["error"]["type"] == "server_error"

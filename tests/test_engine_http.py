"""The engine over real HTTP (with its API key) and its JSON errors."""

from __future__ import annotations

import threading

import httpx2
import openai
import pytest
from engine_helpers import make_client
from engine_helpers import stream_run
from werkzeug.serving import make_server

from assistant.engine import create_api

pytest_plugins = ["engine_fixtures"]


@pytest.fixture
def base_url(engine):
    """Serve ``create_api(engine, api_key="secret")`` on a free loopback port."""
    server = make_server(
        "127.0.0.1", 0, create_api(engine, api_key="secret"), threaded=True
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()
    thread.join()


def test_streamed_turn_over_real_http(base_url):
    with openai.OpenAI(api_key="secret", base_url=base_url, max_retries=0) as client:
        assistant = client.beta.assistants.create(model="demo")
        thread = client.beta.threads.create()
        client.beta.threads.messages.create(thread.id, role="user", content="hi there")
        handler = stream_run(client, thread, assistant)
    assert handler.current_run.status == "completed" and len(handler.deltas) > 2


def test_wrong_key_is_401_without_echoing_it(base_url):
    with openai.OpenAI(
        api_key="sk-wrong-key-1234", base_url=base_url, max_retries=0
    ) as c:
        with pytest.raises(openai.AuthenticationError) as caught:
            c.beta.threads.create()
    assert caught.value.code == "invalid_api_key"
    assert "sk-wrong-key-1234" not in caught.value.message
    assert "Incorrect API key provided: sk-****1234." in caught.value.message


def test_missing_key_is_401(base_url):
    response = httpx2.post(base_url + "/threads", json={})
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("content", "wording"),
    [
        (b"{not json", "could not parse the JSON body"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"model": 5}', "Invalid type for 'model': expected a string"),
    ],
)
def test_malformed_bodies_are_json_400(http, content, wording):
    response = http.post(
        "/v1/assistants", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert wording in response.json()["error"]["message"]
    assert response.headers["x-should-retry"] == "false"


def test_wrong_types_name_their_param(http):
    thread = http.post("/v1/threads", json={}).json()
    response = http.post(
        f"/v1/threads/{thread['id']}/messages", json={"role": "user", "content": 3}
    )
    assert response.json()["error"]["param"] == "content"
    response = http.post(f"/v1/threads/{thread['id']}/runs", json={})
    assert response.json()["error"]["param"] == "assistant_id"


def test_unknown_route_and_method_are_json(http):
    missing = http.get("/v1/nothing-here")
    assert missing.status_code == 404 and missing.json()["error"]["message"]
    wrong = http.put("/v1/threads")
    assert wrong.status_code == 405 and "error" in wrong.json()


def test_unexpected_exception_is_json_500(engine, http, monkeypatch):
    def explode(thread_id):
        raise RuntimeError("boom")

    monkeypatch.setattr(engine, "get_thread", explode)
    response = http.get("/v1/threads/thread_x")
    assert response.status_code == 500
    assert response.headers["x-should-retry"] == "false"
    assert response.json()["error"]["type"] == "server_error"


def test_empty_body_cancel_is_accepted(engine, http):
    client = make_client(create_api(engine))
    assistant = client.beta.assistants.create(model="demo", tools=[])
    thread = client.beta.threads.create()
    run = client.beta.threads.runs.create(
        thread_id=thread.id, assistant_id=assistant.id
    )
    response = http.post(
        f"/v1/threads/{thread.id}/runs/{run.id}/cancel",
        headers={"content-type": "application/json"},
    )
    assert response.status_code in (200, 400)
    assert "error" not in response.json() or "Cannot cancel" in response.text

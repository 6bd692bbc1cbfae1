"""JSON bodies nested thousands deep get a 400, never a 500, on /stream and /v1."""

from __future__ import annotations

import json

import pytest

from assistant.engine.jsonbounds import JSONTooDeep
from assistant.engine.jsonbounds import loads
from assistant.engine.jsonbounds import nesting_depth

DEEP = 10_000
KEY = "k3y"
AUTH = {"Authorization": f"Bearer {KEY}"}
COULD_NOT_PARSE = (
    "We could not parse the JSON body of your request. The OpenAI API expects a"
    " JSON payload, but what was sent was not valid JSON."
)


def deep_object(depth: int) -> str:
    """Return a JSON object nested ``depth`` levels deep."""
    return '{"content":' * depth + '"hi"' + "}" * depth


def deep_array(depth: int) -> str:
    """Return a JSON array nested ``depth`` levels deep."""
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("body", [deep_object(DEEP), deep_array(DEEP)])
def test_stream_answers_a_deep_body_with_a_400_and_serves_another_room(
    client, people, body
):
    bystander = people("Bystander", room="elsewhere")
    response = client.post("/stream", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json() == {"error": "Send the message as a JSON object."}
    assert bystander.say("still served?")["ok"]
    bystander.wait("ai-end")
    reply = bystander.payloads("message-list")[-1][-1]
    assert reply["role"] == "assistant" and "Bystander" in reply["content"]


def test_stream_accepts_an_ordinary_body_beside_the_bound(client):
    body = {"content": "hi", "user_id": "u1", "name": "Ann", "extra": [[[[{}]]]]}
    response = client.post("/stream", json=body)
    assert response.status_code == 200 and "Ann" in response.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/v1/threads", "/v1/assistants"])
@pytest.mark.parametrize("body", [deep_object(DEEP), deep_array(DEEP)])
def test_v1_answers_a_deep_body_with_an_openai_400(make_app, path, body):
    client = make_app(ENGINE_API_KEY=KEY).test_client()
    response = client.post(path, data=body, headers=AUTH, content_type="text/plain")
    assert response.status_code == 400
    assert response.headers["x-should-retry"] == "false"
    assert response.get_json() == {
        "error": {
            "message": COULD_NOT_PARSE,
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }
    thread = client.post("/v1/threads", json={"metadata": {"a": "b"}}, headers=AUTH)
    assert thread.status_code == 200 and thread.get_json()["object"] == "thread"


def test_nesting_depth_skips_brackets_inside_strings():
    assert nesting_depth('{"a": "[[[{{{", "b": ["\\"]]["]}') == 2
    assert nesting_depth("3") == 0


def test_loads_refuses_past_the_bound_and_accepts_up_to_it():
    assert loads(deep_array(64)) == json.loads(deep_array(64))
    with pytest.raises(JSONTooDeep):
        loads(deep_array(65))
    with pytest.raises(JSONTooDeep):  # UTF-16 bytes are decoded first, as json does
        loads(deep_array(65).encode("utf-16"), 64)

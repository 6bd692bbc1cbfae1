"""POST /stream: SSE frames or plain text, through the room's turn queue."""

from __future__ import annotations

import json
import threading

import pytest

from rooms.rooms import get_rooms
from tests.conftest import wait_for

SSE = {"Accept": "text/event-stream"}
NOT_A_MEMBER = "Only people in this room can stop its reply."


def _frames(body: str) -> list[tuple[str, dict]]:
    """Parse SSE text into (event, data) pairs, skipping comments."""
    frames = []
    for block in body.strip().split("\n\n"):
        lines = [line for line in block.split("\n") if not line.startswith(":")]
        if lines:
            event = lines[0].removeprefix("event: ")
            frames.append((event, json.loads(lines[1].removeprefix("data: "))))
    return frames


def test_sse_streams_deltas_then_done_and_the_room_sees_it(client, people):
    bob = people("Bob")
    alice = people("Alice")
    body = {"content": "hello from the stream"}
    response = client.post(
        "/stream", json=body, headers={**SSE, "X-Socket-Id": alice.sid}
    )
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    frames = _frames(response.get_data(as_text=True))
    deltas = [data["text"] for event, data in frames if event == "delta"]
    assert len(deltas) > 3 and frames[-1] == ("done", {})
    reply = bob.wait("message-list", 2)[-1][0]
    assert reply["content"] == "".join(deltas)
    assert "".join(d["delta"] for d in bob.payloads("ai-delta")) == reply["content"]
    assert bob.payloads("message")[0]["content"] == "hello from the stream"


def test_each_delta_says_where_it_starts_as_javascript_counts(client, people):
    """``at`` lets a page that joined mid-reply skip what its partial text already
    holds; it counts UTF-16 code units, as the page's string lengths do."""
    bob = people("Bob")
    alice = people("Alice")
    body = {"content": "emoji 🎉👩‍💻 and é count"}  # the demo quotes it back
    response = client.post(
        "/stream", json=body, headers={**SSE, "X-Socket-Id": alice.sid}
    )
    assert response.status_code == 200
    reply = bob.wait("message-list", 2)[-1][0]
    assert "🎉" in reply["content"]
    written = ""
    for delta in bob.payloads("ai-delta"):
        assert delta["at"] == len(written.encode("utf-16-le")) // 2
        written += delta["delta"]
    assert written == reply["content"]


def test_plain_text_for_the_original_client(client):
    body = {"content": "hi there", "user_id": "legacy-1", "name": "Legacy"}
    response = client.post("/stream", json=body, headers={"Accept": "application/json"})
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert "Legacy" in response.get_data(as_text=True)


def test_sse_reports_tool_calls(client):
    body = {"content": "what is 2+3*4?", "user_id": "u1", "name": "Ann"}
    frames = _frames(
        client.post("/stream", json=body, headers=SSE).get_data(as_text=True)
    )
    tools = [data for event, data in frames if event == "tool"]
    assert [(t["name"], t["status"]) for t in tools] == [
        ("calculate", "running"),
        ("calculate", "done"),
    ]
    assert "14" in "".join(data["text"] for event, data in frames if event == "delta")


def test_failure_is_an_error_frame_in_sse_and_json_in_plain_text(client):
    body = {"content": "please fail", "user_id": "u1", "name": "Ann"}
    frames = _frames(
        client.post("/stream", json=body, headers=SSE).get_data(as_text=True)
    )
    assert [e for e, _ in frames] == ["error", "done"]
    plain = client.post("/stream", json={**body, "content": "please fail again"})
    assert plain.status_code == 502 and "could not answer" in plain.get_json()["error"]


@pytest.mark.parametrize(
    "body, error",
    [
        ("not json", "Send the message as a JSON object."),
        ({"content": "hi"}, "Please choose a nickname."),
        ({"content": "", "name": "Ann"}, "A message cannot be empty."),
        (
            {"content": "x" * 4001, "name": "Ann"},
            "A message can be at most 4000 characters long.",
        ),
    ],
)
def test_bad_input_is_a_json_400(client, body, error):
    if isinstance(body, str):
        response = client.post("/stream", data=body, content_type="application/json")
    else:
        response = client.post("/stream", json=body, headers=SSE)
    assert response.status_code == 400
    assert response.get_json() == {"error": error}


def test_unknown_socket_id_is_refused(client):
    response = client.post(
        "/stream", json={"content": "hi"}, headers={**SSE, "X-Socket-Id": "nope"}
    )
    assert response.status_code == 400


def test_mock_mode_replays_a_polled_reply_word_by_word(make_app):
    app = make_app(STREAM_MODE="mock")
    body = {"content": "hello mock", "user_id": "u1", "name": "Ann"}
    frames = _frames(
        app.test_client().post("/stream", json=body, headers=SSE).get_data(as_text=True)
    )
    deltas = [data["text"] for event, data in frames if event == "delta"]
    assert len(deltas) > 3 and "Ann" in "".join(deltas)


def test_healthz_and_page(client):
    health = client.get("/healthz").get_json()
    assert health == {"status": "ok", "backend": "demo", "model": "demo"}
    page = client.get("/").get_data(as_text=True)
    assert "Threadroom demo (offline)" in page
    assert '"websocket_only": false' in page  # one process: polling, then upgrade
    assert client.get("/nope").get_json() == {
        "error": client.get("/nope").get_json()["error"]
    }


def test_stop_over_http_cancels_a_streamed_reply(make_app):
    app = make_app(DEMO_DELAY_MS=200)
    ann = {"user_id": "u1", "name": "Ann"}
    results = {}

    def post_message():
        response = app.test_client().post(
            "/stream", json={**ann, "content": "a long story"}, headers=SSE
        )
        results["token"] = response.headers["X-Threadroom-Token"]
        results["frames"] = _frames(response.get_data(as_text=True))

    streaming = threading.Thread(target=post_message)
    streaming.start()
    wait_for(lambda: (turn := get_rooms(app).room("lobby").turn) and turn.partial)
    intruder = app.test_client().post("/stream/stop", json=ann)
    assert intruder.status_code == 403  # knowing someone's user_id is not enough
    token = wait_for(lambda: results.get("token"))
    stopped = app.test_client().post("/stream/stop", json={**ann, "token": token})
    assert stopped.status_code == 200 and stopped.get_json() == {"ok": True}
    streaming.join()
    assert ("error", {"error": "Ann stopped the reply."}) in results["frames"]
    again = app.test_client().post("/stream/stop", json={**ann, "token": token})
    assert again.status_code == 409
    assert again.get_json() == {"error": "The assistant is not answering right now."}


def test_a_present_persons_id_cannot_be_borrowed_over_http(client, people):
    alice = people("Alice")
    body = {"content": "I am Alice", "user_id": "u-Alice", "name": "Alice"}
    response = client.post("/stream", json=body)
    assert response.headers["X-Threadroom-User-Id"] != "u-Alice"
    heard = alice.wait("message")[0]
    assert heard["name"] == "Alice (2)" and heard["user_id"] != "u-Alice"


def test_a_stop_for_an_unknown_room_creates_nothing(app, client):
    token = client.post(
        "/stream", json={"content": "hi", "user_id": "u9", "name": "Kit"}
    )
    token = token.headers["X-Threadroom-Token"]
    body = {"user_id": "u9", "name": "Kit", "token": token, "room": "nowhere"}
    refused = client.post("/stream/stop", json=body)
    assert refused.status_code == 403  # Kit is not a person of that room
    assert refused.get_json() == {
        "error": "Only people in this room can stop its reply."
    }
    assert get_rooms(app).existing_room("nowhere") is None

"""Start Threadroom as users do (``python app.py``, gunicorn with the eventlet or the
gevent worker) and finish a turn with a real python-socketio client over a real
socket."""

from __future__ import annotations

import queue

import pytest
import requests
import socketio

from tests.conftest import wait_for
from tests.live_server import LiveServer

# How users start it: the default entry point, and gunicorn with each worker.
SERVERS = {
    "python-app.py": {},
    "gunicorn-eventlet": {"gunicorn": True, "worker": "eventlet"},
    "gunicorn-gevent": {"gunicorn": True, "worker": "gevent"},
}


def complete_a_turn(url: str) -> dict:
    """Register, send a message, and return the assistant's reply."""
    events: queue.Queue = queue.Queue()
    client = socketio.Client()
    for name in ("welcome", "message-list", "ai-start", "ai-end"):
        client.on(name, lambda data, name=name: events.put((name, data)))
    client.connect(url, transports=["websocket"])
    try:
        ack = client.call("register", {"user_id": "live-1", "name": "Live"}, timeout=10)
        assert ack["ok"], ack
        assert client.call("message", {"content": "hello over a real socket"})["ok"]
        seen = []
        while "ai-end" not in seen:
            name, data = events.get(timeout=20)
            seen.append(name)
            if name == "message-list" and data and data[-1]["role"] == "assistant":
                reply = data[-1]
        assert seen == ["welcome", "message-list", "ai-start", "message-list", "ai-end"]
        return reply
    finally:
        client.disconnect()


@pytest.mark.parametrize("server_kind", SERVERS, ids=list(SERVERS))
def test_a_real_server_completes_a_turn(tmp_path, server_kind):
    with LiveServer(tmp_path, **SERVERS[server_kind]) as server:
        assert requests.get(server.url + "/healthz").json()["backend"] == "demo"
        assert "Threadroom" in requests.get(server.url + "/").text
        reply = complete_a_turn(server.url)
        assert "Live" in reply["content"]
        # The operators' line for that turn (gunicorn's workers log it too).
        wait_for(lambda: "speakers='Live' status=completed" in server.log())


@pytest.mark.parametrize("server_kind", SERVERS, ids=list(SERVERS))
def test_stream_frames_arrive_while_the_reply_is_written(tmp_path, server_kind):
    """A buffering server would deliver the first frame only after every word was
    written (and broadcast); a streaming one delivers it while most are to come."""
    server_options = SERVERS[server_kind]
    with LiveServer(tmp_path, **server_options, DEMO_DELAY_MS="150") as server:
        deltas: list[str] = []
        watcher = socketio.Client()
        watcher.on("ai-delta", lambda data: deltas.append(data["delta"]))
        watcher.connect(server.url, transports=["websocket"])
        assert watcher.call("register", {"user_id": "w-1", "name": "Watcher"})["ok"]
        body = {"content": "stream to me", "user_id": "s-1", "name": "Streamer"}
        headers = {"Accept": "text/event-stream"}
        with requests.post(
            server.url + "/stream", json=body, headers=headers, stream=True, timeout=30
        ) as response:
            lines = response.iter_lines(decode_unicode=True)
            next(line for line in lines if line == "event: delta")
            broadcast_before_first_frame = len(deltas)
            assert "event: done" in list(lines)
        total = len(deltas)
        assert total >= 6 and broadcast_before_first_frame <= total // 2
        watcher.disconnect()

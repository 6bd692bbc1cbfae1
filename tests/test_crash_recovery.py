"""``kill -9`` mid-reply: what everyone saw stays in the record, marked interrupted,
and the room says that the server restarted."""

from __future__ import annotations

import time

import requests
import socketio

from tests.conftest import wait_for
from tests.live_server import LiveServer

RESTART_LINE = (
    "The server restarted while the assistant was answering; the reply was interrupted."
)


def _history(url: str, user_id: str) -> list[dict]:
    """Register on a real socket and return the history the server sends."""
    histories: list = []
    client = socketio.Client()
    client.on("message-list", histories.append)
    client.connect(url, transports=["websocket"])
    try:
        assert client.call("register", {"user_id": user_id, "name": user_id})["ok"]
        return wait_for(lambda: histories and histories[0])
    finally:
        client.disconnect()


def test_a_crash_mid_reply_keeps_the_text_seen_and_says_so(tmp_path):
    server = LiveServer(tmp_path, DEMO_DELAY_MS="400").start()
    try:
        seen: list[str] = []
        watcher = socketio.Client()
        watcher.on("ai-delta", lambda data: seen.append(data["delta"]))
        watcher.connect(server.url, transports=["websocket"])
        assert watcher.call("register", {"user_id": "w-1", "name": "Watcher"})["ok"]
        body = {"id": "q-1", "content": "tell me a story", "name": "Asker"}
        with requests.post(
            server.url + "/stream",
            json=body,
            headers={"Accept": "text/event-stream"},
            stream=True,
            timeout=30,
        ):
            wait_for(lambda: len(seen) >= 3)
            time.sleep(1.5)  # the growing text is saved about once a second
            server.process.kill()  # SIGKILL: nothing gets to clean up
            server.process.wait()
        watcher.disconnect()
        text_seen = "".join(seen)

        server.start()
        history = _history(server.url, "late-1")
        assert [m["role"] for m in history] == ["user", "assistant", "system"]
        question, reply, line = history
        assert question["id"] == "q-1"
        assert reply["status"] == "interrupted"
        assert reply["content"] and text_seen.startswith(reply["content"])
        assert line["content"] == RESTART_LINE and line["level"] == "error"
        assert _history(server.url, "late-2") == history  # told once, not per start
    finally:
        server.stop()

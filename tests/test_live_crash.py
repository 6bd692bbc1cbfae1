"""A real ``python app.py`` killed with ``kill -9`` mid-reply keeps, after a
restart on the same ENGINE_DB, the part of the reply everyone already saw."""

from __future__ import annotations

import json
import queue
import time

import requests
import socketio

from tests.live_server import LiveServer

# 16 words at 300 ms each: about 4.5 s of reply, cut at 2 s.
QUESTION = "please tell me a long story about the sea and the stars tonight my friend"
KILL_AFTER_S = 2.0


def stream_until_killed(server: LiveServer) -> str:
    """Stream a reply, ``kill -9`` the server mid-way; return the text seen."""
    body = {"content": QUESTION, "user_id": "k-1", "name": "Kim"}
    headers = {"Accept": "text/event-stream"}
    seen: list[str] = []
    first_at = None
    with requests.post(
        server.url + "/stream", json=body, headers=headers, stream=True, timeout=30
    ) as response:
        lines = response.iter_lines(decode_unicode=True)
        for line in lines:
            if line.startswith("data:"):
                data = json.loads(line[len("data:") :])
                if "text" in data:
                    seen.append(data["text"])
                    first_at = first_at or time.monotonic()
            if first_at and time.monotonic() - first_at > KILL_AFTER_S:
                server.process.kill()  # SIGKILL: no cleanup of any kind
                server.process.wait()
                break
    assert first_at, "no delta arrived"
    return "".join(seen)


def history_of(url: str) -> list[dict]:
    """Register over Socket.IO and return the room's history."""
    events: queue.Queue = queue.Queue()
    client = socketio.Client()
    client.on("message-list", events.put)
    client.connect(url, transports=["websocket"])
    try:
        ack = client.call("register", {"user_id": "r-1", "name": "Reader"}, timeout=10)
        assert ack["ok"], ack
        return events.get(timeout=10)
    finally:
        client.disconnect()


def test_kill_9_mid_reply_keeps_the_text_already_seen(tmp_path):
    server = LiveServer(tmp_path, DEMO_DELAY_MS="300").start()
    try:
        seen = stream_until_killed(server)
    finally:
        server.stop()
    assert seen and not seen.endswith("."), "the reply finished before the kill"

    with LiveServer(tmp_path) as again:  # same tmp_path: the same ENGINE_DB
        history = history_of(again.url)
    question, reply = history[-2], history[-1]
    assert question["content"] == QUESTION
    assert reply["role"] == "assistant" and reply["status"] == "incomplete"
    assert reply["content"].startswith("Hi Kim! You said:")
    assert seen.startswith(reply["content"])

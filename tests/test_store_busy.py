"""A locked SQLite file stalls only the turns that need it: the server keeps
answering, the room is told, and the waiting message is answered, not dropped."""

from __future__ import annotations

import queue
import sqlite3
import threading
import time

import requests
import socketio

from tests.conftest import wait_for
from tests.live_server import LiveServer

LOCK_S = 8.0  # longer than the store's 5 s busy timeout


def _hold_exclusive_lock(path: str, seconds: float, held: threading.Event) -> None:
    """Lock the whole database file from another connection, as a backup tool would."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN EXCLUSIVE")
    held.set()
    time.sleep(seconds)
    db.execute("ROLLBACK")
    db.close()


def test_a_locked_store_delays_the_turn_and_freezes_nothing(tmp_path):
    with LiveServer(tmp_path) as server:
        events: queue.Queue = queue.Queue()
        client = socketio.Client()
        for name in ("message", "ai-end", "message-list"):
            client.on(name, lambda data, name=name: events.put((name, data)))
        client.connect(server.url, transports=["websocket"])
        assert client.call("register", {"user_id": "b-1", "name": "Bea"})["ok"]
        held = threading.Event()
        locker = threading.Thread(
            target=_hold_exclusive_lock,
            args=(server.env["ENGINE_DB"], LOCK_S, held),
        )
        locker.start()
        held.wait(5)
        started = time.monotonic()
        assert client.call("message", {"id": "m-1", "content": "anyone?"})["ok"]
        ack_s = time.monotonic() - started
        health = requests.get(server.url + "/healthz", timeout=5)
        health_s = time.monotonic() - started
        seen: list = []
        wait_for(  # a deferred turn ends too; wait for the one that answers
            lambda: (
                seen.append(events.get(timeout=30))
                or seen[-1] == ("ai-end", seen[-1][1])
                and seen[-1][1]["status"] == "completed"
            ),
            timeout=40,
        )
        lines = [data["content"] for name, data in seen if name == "message"]
        locker.join()
        client.disconnect()
    assert health.ok and health_s < 2.0 and ack_s < 2.0, (ack_s, health_s)
    assert any("conversation store is busy" in line for line in lines), lines
    ends = [data["status"] for name, data in seen if name == "ai-end"]
    assert ends[0] == "deferred" and ends[-1] == "completed"
    replies = [data for name, data in seen if name == "message-list"]
    assert replies and replies[-1][0]["role"] == "assistant"

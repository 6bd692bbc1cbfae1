"""Shared fixtures: apps built through ``create_app`` with a test configuration."""

from __future__ import annotations

import time

import pytest

from app import create_app
from sockets import get_socketio
from tests.live_server import BLANK_SETTINGS

TEST_CONFIG = {
    "TESTING": True,
    "SECRET_KEY": "test",
    "ASYNC_MODE": "threading",  # the Socket.IO test client needs no eventlet
    "ENGINE_DB": ":memory:",
    "DEMO_DELAY_MS": 0,
    "POLL_INTERVAL_MS": 20,
    "RUN_TIMEOUT_S": 30,
    "EMPTY_ROOM_TTL_S": -1,
    "STREAM_MODE": "stream",
    # No real model, no remote server, no message queue (the test client refuses one).
    **dict.fromkeys(BLANK_SETTINGS, ""),
}


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.01):
    """Return ``predicate()``'s first truthy value, failing after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


class Person:
    """One browser in the room, seen through the Socket.IO test client."""

    def __init__(self, app, flask_client) -> None:
        self.sio = get_socketio(app).test_client(app, flask_test_client=flask_client)
        self.events: list[tuple[str, object]] = []

    @property
    def sid(self) -> str:
        """Return this connection's Socket.IO session id (what X-Socket-Id carries)."""
        return self.sio.socketio.server.manager.sid_from_eio_sid(self.sio.eio_sid, "/")

    def pull(self) -> list[tuple[str, object]]:
        """Collect what arrived since the last look."""
        for packet in self.sio.get_received():
            args = packet["args"]
            self.events.append((packet["name"], args[0] if len(args) == 1 else args))
        return self.events

    def emit(self, event: str, *args):
        """Send an event and return its ack."""
        return self.sio.emit(event, *args, callback=True)

    def register(self, name: str, user_id: str | None = None, **extra) -> dict:
        """Register a nickname and return the ack."""
        return self.emit(
            "register", {"user_id": user_id or f"u-{name}", "name": name, **extra}
        )

    def say(self, content: str, message_id: str | None = None) -> dict:
        """Send a chat message and return the ack."""
        payload = {"content": content}
        if message_id:
            payload["id"] = message_id
        return self.emit("message", payload)

    def payloads(self, name: str) -> list:
        """Return the payloads of every ``name`` event received so far."""
        return [data for event, data in self.pull() if event == name]

    def wait(self, name: str, count: int = 1, timeout: float = 10.0) -> list:
        """Wait until ``count`` ``name`` events have arrived; return their payloads."""
        wait_for(lambda: len(self.payloads(name)) >= count, timeout)
        return self.payloads(name)

    def names(self) -> list[str]:
        """Return the names of the events received so far, in order."""
        return [event for event, _ in self.pull()]

    def close(self) -> None:
        """Disconnect, as a closed tab does."""
        if self.sio.is_connected():
            self.sio.disconnect()


@pytest.fixture
def make_app(tmp_path):
    """Build apps with test settings (plus overrides); close their engines after."""
    built = []

    def build(**overrides):
        app = create_app({**TEST_CONFIG, **overrides})
        built.append(app)
        return app

    yield build
    for app in built:
        settle(app)
        engine = app.extensions.get("threadroom.engine")
        if engine is not None:
            engine.close()


def settle(app, timeout: float = 10.0) -> None:
    """Let the turns a test left running end before its engine closes, so none
    outlives its test and fails against a closed store during the next one."""
    rooms = app.extensions.get("threadroom.rooms")
    deadline = time.monotonic() + timeout
    while rooms is not None and not rooms.idle() and time.monotonic() < deadline:
        time.sleep(0.01)


@pytest.fixture
def app(make_app):
    """An app on the demo model with an in-memory store."""
    return make_app()


@pytest.fixture
def client(app):
    """An HTTP test client."""
    return app.test_client()


@pytest.fixture
def people(app, client):
    """Open browsers in the room: ``people("Alice")`` registers and returns one."""
    opened: list[Person] = []

    def open_person(name: str | None = None, **extra) -> Person:
        person = Person(app, client)
        opened.append(person)
        if name is not None:
            assert person.register(name, **extra)["ok"]
        return person

    yield open_person
    for person in opened:
        person.close()

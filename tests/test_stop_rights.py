"""Stop belongs to the people of a room, and the room names them as it knows them."""

from __future__ import annotations

import pytest

from rooms.rooms import get_rooms
from tests.conftest import Person
from tests.conftest import wait_for

NOT_A_MEMBER = "Only people in this room can stop its reply."
ROOM = "private"


@pytest.fixture
def slow_app(make_app):
    """An app whose demo replies take a few seconds, so there is time to stop."""
    return make_app(DEMO_DELAY_MS=150)


def _start_long_reply(app, room: str) -> Person:
    """Have Alice ask for a reply in ``room`` and wait until it is being written."""
    alice = Person(app, app.test_client())
    assert alice.register("Alice", room=room)["ok"]
    alice.say("tell me a long story")
    _wait_for_run(app, room)
    return alice


def _wait_for_run(app, room: str) -> None:
    """Wait until a turn's run exists in ``room`` (so Stop can cancel it)."""
    wait_for(lambda: (turn := get_rooms(app).room(room).turn) and turn.run_id)


def test_an_identity_from_another_room_cannot_stop_a_reply(slow_app):
    alice = _start_long_reply(slow_app, "private")
    http = slow_app.test_client()
    minted = http.post(
        "/stream",
        json={"content": "hi", "user_id": "u-admin", "name": "Admin", "room": "other"},
    )
    token = minted.headers["X-Threadroom-Token"]
    body = {"user_id": "u-admin", "token": token, "name": "Admin", "room": "private"}
    refused = http.post("/stream/stop", json=body)
    assert refused.status_code == 403
    assert refused.get_json() == {
        "error": "Only people in this room can stop its reply."
    }
    assert alice.wait("ai-end", timeout=30)[0]["status"] == "completed"
    lines = [m["content"] for m in alice.payloads("message")]
    assert not any("stopped" in line for line in lines)
    alice.close()


def test_a_socket_in_another_room_stops_nothing_here(slow_app):
    alice = _start_long_reply(slow_app, "private")
    mallory = Person(slow_app, slow_app.test_client())
    mallory.register("Mallory", room="other")
    assert mallory.emit("stop") == {
        "ok": False,
        "error": "The assistant is not answering right now.",
    }
    assert alice.wait("ai-end", timeout=30)[0]["status"] == "completed"
    alice.close()
    mallory.close()


def test_an_http_person_of_the_room_stops_under_the_name_the_room_knows(slow_app):
    alice = _start_long_reply(slow_app, "private")
    http = slow_app.test_client()
    posted = http.post(
        "/stream",
        json={
            "content": "me too",
            "user_id": "u-ann",
            "name": "Ann",
            "room": "private",
        },
    )
    token = posted.headers["X-Threadroom-Token"]  # Ann's turn is being written
    _wait_for_run(slow_app, "private")
    body = {"user_id": "u-ann", "token": token, "name": "The Boss", "room": "private"}
    assert http.post("/stream/stop", json=body).get_json() == {"ok": True}
    end = alice.wait("ai-end", 2, timeout=30)[-1]
    assert end["status"] == "cancelled"
    assert end["stopped_by"] == {"user_id": "u-ann", "name": "Ann"}
    assert "Ann stopped the reply." in [m["content"] for m in alice.payloads("message")]
    alice.close()

"""Two apps in one process never share a Socket.IO server or rooms."""

from __future__ import annotations

from rooms.rooms import get_rooms
from sockets import get_socketio
from tests.conftest import Person


def test_each_app_has_its_own_socketio(make_app):
    first, second = make_app(), make_app()
    assert get_socketio(first) is not get_socketio(second)
    assert get_socketio(first).server is not get_socketio(second).server


def test_a_client_of_the_first_app_registers_in_the_first_apps_rooms(make_app):
    first, second = make_app(), make_app()  # the second is built last
    alice = Person(first, first.test_client())
    bob = Person(second, second.test_client())
    assert alice.register("Alice")["ok"]
    assert bob.register("Bob")["ok"]

    assert [p["name"] for p in get_rooms(first).room("lobby").roster()] == ["Alice"]
    assert [p["name"] for p in get_rooms(second).room("lobby").roster()] == ["Bob"]
    alice.say("only for the first app")
    assert alice.wait("ai-end")[0]["status"] == "completed"
    assert "only for the first app" not in str(bob.pull())
    alice.close()
    bob.close()

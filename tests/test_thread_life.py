"""The room's thread: one per room, kept across reloads and restarts, deleted after
the room has been empty for EMPTY_ROOM_TTL_S."""

from __future__ import annotations

import threading
import time

from rooms.rooms import get_rooms
from tests.conftest import Person
from tests.conftest import wait_for


def _thread_of(app, room="lobby"):
    return get_rooms(app).room(room).thread_id


def talk_once(app, name: str, text: str) -> Person:
    """Join as ``name``, say ``text``, wait for the reply; return the person."""
    person = Person(app, app.test_client())
    person.register(name)
    person.say(text)
    person.wait("ai-end")
    return person


def test_simultaneous_first_registrations_make_one_thread(app):
    people = [Person(app, app.test_client()) for _ in range(5)]
    threads = [
        threading.Thread(target=p.register, args=(f"P{i}",))
        for i, p in enumerate(people)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    engine = app.extensions["threadroom.engine"]
    assert len(engine.store.select("threads")) == 1
    for person in people:
        person.close()


def test_empty_room_thread_is_deleted_at_once_with_ttl_zero(make_app):
    app = make_app(EMPTY_ROOM_TTL_S=0)
    alice = talk_once(app, "Alice", "remember me")
    old_thread = _thread_of(app)
    alice.close()
    wait_for(lambda: _thread_of(app) is None)
    service = app.extensions["threadroom.assistant"]
    wait_for(lambda: not service.thread_exists(old_thread))
    bob = Person(app, app.test_client())
    bob.register("Bob")
    assert bob.wait("message-list")[0] == []
    bob.close()


def test_a_reload_within_the_ttl_keeps_the_conversation(make_app):
    app = make_app(EMPTY_ROOM_TTL_S=2)
    talk_once(app, "Alice", "keep this").close()
    again = Person(app, app.test_client())
    again.register("Alice")
    assert [m["content"] for m in again.wait("message-list")[0]][0] == "keep this"
    again.close()


def test_the_conversation_survives_a_restart(make_app, tmp_path):
    db = str(tmp_path / "threadroom.sqlite3")
    first = make_app(ENGINE_DB=db)
    talk_once(first, "Alice", "before the restart").close()
    first.extensions["threadroom.engine"].close()

    second = make_app(ENGINE_DB=db)
    bob = Person(second, second.test_client())
    bob.register("Bob")
    history = bob.wait("message-list")[0]
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert history[0]["content"] == "before the restart"
    bob.say("after the restart")
    assert bob.wait("ai-end")[0]["status"] == "completed"
    bob.close()


def test_a_run_orphaned_by_a_restart_does_not_block_the_room(make_app, tmp_path):
    db = str(tmp_path / "threadroom.sqlite3")
    first = make_app(ENGINE_DB=db)
    alice = Person(first, first.test_client())
    alice.register("Alice")
    service = first.extensions["threadroom.assistant"]
    orphan = service.client.beta.threads.runs.create_and_poll(
        thread_id=_thread_of(first),
        assistant_id=service.info.id,
        additional_messages=[{"role": "user", "content": "what time is it in Tokyo?"}],
    )
    assert orphan.status == "requires_action"  # then the server goes away
    alice.close()
    first.extensions["threadroom.engine"].close()
    wait_for(lambda: time.time() >= orphan.created_at + 1)  # a later second

    second = make_app(ENGINE_DB=db)
    bob = Person(second, second.test_client())
    bob.register("Bob")
    bob.say("hello again")
    assert bob.wait("ai-end")[0]["status"] == "completed"
    bob.close()

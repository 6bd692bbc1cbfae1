"""Rooms with an owner: settings, answering when addressed, removal, passcodes,
who may stop, typing, Regenerate and export — as people in the room see them."""

from __future__ import annotations

import threading

from rooms.rooms import get_rooms
from rooms.settings import is_addressed
from tests.conftest import Person
from tests.conftest import settle
from tests.conftest import wait_for

ROOM = "team"


def join(people, name: str, **extra) -> Person:
    """Open a browser in ``ROOM`` and register ``name``."""
    return people(name, room=ROOM, **extra)


def lines(person: Person) -> list[str]:
    """Return the system lines a person has seen."""
    return [m["content"] for m in person.payloads("message") if m["role"] == "system"]


def addressed_room(people) -> tuple[Person, Person]:
    """Alice opens a room that answers only when "Ada" is addressed; Bob joins."""
    alice = join(people, "Alice")
    settings = {"answer_mode": "addressed", "assistant_name": "Ada"}
    assert alice.emit("room-settings", settings)["ok"]
    return alice, join(people, "Bob")


def test_whoever_opens_a_room_owns_it_and_the_lobby_has_no_owner(people):
    alice = join(people, "Alice")
    bob = join(people, "Bob")
    assert alice.wait("welcome")[0]["settings"]["owner"] == "u-Alice"
    assert bob.wait("welcome")[0]["settings"]["owner"] == "u-Alice"
    carol = people("Carol")  # the lobby
    assert carol.wait("welcome")[0]["settings"]["owner"] is None
    refused = carol.emit("room-settings", {"answer_mode": "addressed"})
    assert refused["ok"] is False and "lobby has no owner" in refused["error"]


def test_the_owner_changes_settings_and_everyone_hears(people):
    alice = join(people, "Alice")
    bob = join(people, "Bob")
    ack = alice.emit("room-settings", {"answer_mode": "addressed"})
    assert ack["ok"] and ack["settings"]["answer_mode"] == "addressed"
    assert bob.wait("room")[0]["answer_mode"] == "addressed"
    wait_for(lambda: "Alice changed the room's answer mode." in lines(bob))
    refused = bob.emit("room-settings", {"answer_mode": "every"})
    assert refused == {"ok": False, "error": "Only the room's owner can do that."}


def test_bad_settings_are_refused_and_change_nothing(people):
    alice = join(people, "Alice")
    cases = {
        "answer_mode": ("often", "The answer mode must be one of: every, addressed."),
        "stop_policy": (3, "The stop setting must be one of: anyone, owner_and_asker."),
        "assistant_name": ("   ", "The assistant's name cannot be blank."),
        "instructions": ("x" * 2001, "at most 2000 characters"),
        "passcode": ("abc", "A passcode is 4-64 printable characters."),
        "colour": ("blue", "Unknown room setting 'colour'."),
    }
    for key, (value, error) in cases.items():
        ack = alice.emit("room-settings", {key: value})
        assert ack["ok"] is False and error in ack["error"], key
    assert alice.emit("room-settings", [])["ok"] is False
    info = get_rooms_info(alice)
    assert info["answer_mode"] == "every" and info["locked"] is False


def get_rooms_info(person: Person) -> dict:
    """Return the room's settings as a new joiner would get them."""
    return person.payloads("welcome")[-1]["settings"]


def test_when_addressed_the_assistant_answers_only_when_spoken_to(app, people):
    alice, bob = addressed_room(people)
    assert bob.say("Hi everyone! Let's plan the offsite.")["ok"]
    assert alice.say("ada is nice")["ok"]  # named, but not spoken to
    settle(app)  # both kept in the thread, no turn
    assert alice.payloads("ai-start") == []
    assert bob.say("@Ada what do you think?")["ok"]
    assert alice.wait("ai-end")[0]["status"] == "completed"
    reply = alice.wait("message-list", 2)[-1][0]
    assert reply["name"] == "Ada"
    # The model saw the whole conversation, the messages it did not answer too.
    assert "Earlier, Alice said" in reply["content"]
    # And a newcomer reads every message, in order.
    carol = join(people, "Carol")
    history = carol.wait("message-list")[0]
    assert [m["content"] for m in history if m["role"] == "user"] == [
        "Hi everyone! Let's plan the offsite.",
        "ada is nice",
        "@Ada what do you think?",
    ]


def test_a_reply_to_the_assistant_or_a_question_by_name_addresses_it(people):
    alice, bob = addressed_room(people)
    bob.say("Ada, hello")
    alice.wait("ai-end")
    reply_id = alice.wait("message-list", 2)[-1][0]["id"]
    alice.emit("message", {"content": "and then?", "reply_to": reply_id})
    alice.wait("ai-end", 2)
    bob.say("What is the capital of France, Ada?")
    assert [e["status"] for e in alice.wait("ai-end", 3)] == ["completed"] * 3


def test_addressed_phrasing():
    assert is_addressed("@Ada can you help", "Ada")
    assert is_addressed("ada: summarise please", "Ada")
    assert is_addressed("Hey Ada, are you there", "Ada")
    assert is_addressed("What do you think, Ada?", "Ada")
    assert is_addressed("ok @threadroom demo (offline) go", "Threadroom demo (offline)")
    assert not is_addressed("Ada is nice", "Ada")
    assert not is_addressed("Adam, what do you think?", "Ada")
    assert not is_addressed("email me at x@adam.com", "Ada")


def test_the_room_name_and_instructions_reach_the_model(app, people):
    alice = join(people, "Alice")
    settings = {"assistant_name": "Ada", "instructions": "Answer in French."}
    assert alice.emit("room-settings", settings)["ok"]
    alice.say("bonjour")
    alice.wait("ai-end")
    service = app.extensions["threadroom.assistant"]
    thread_id = get_rooms(app).room(ROOM).thread()
    run = service.client.beta.threads.runs.list(thread_id, limit=1).data[0]
    assert 'In this room you are called "Ada".' in run.instructions
    assert run.instructions.endswith("Answer in French.")


def test_the_owner_removes_a_person_who_cannot_come_back_for_a_while(people):
    alice = join(people, "Alice")
    bob = people()
    token = bob.register("Bob", room=ROOM)["token"]
    carol = join(people, "Carol")
    assert alice.emit("remove", {"user_id": "u-Bob"}) == {"ok": True}
    removed = bob.wait("removed")[0]
    assert removed["room"] == ROOM and removed["by"] == "Alice"
    assert carol.wait("leave")[-1] == {"user_id": "u-Bob", "name": "Bob"}
    assert bob.payloads("leave") == []  # Bob hears that he was removed, not left
    wait_for(lambda: "Alice removed Bob from the room." in lines(carol))
    assert bob.say("still here?")["ok"] is False  # no longer in the room
    again = bob.register("Bob", room=ROOM, token=token)
    assert again["ok"] is False and "removed you" in again["error"]
    assert "10 minutes" in again["error"] and again["retry_after"] > 590
    assert carol.emit("remove", {"user_id": "u-Alice"})["ok"] is False
    assert alice.emit("remove", {"user_id": "u-Alice"})["ok"] is False
    assert alice.emit("remove", {"user_id": "nobody"})["error"] == (
        "That person is not in this room."
    )


def test_a_locked_room_needs_its_passcode(people):
    alice = people()
    token = alice.register("Alice", room=ROOM)["token"]
    assert alice.emit("room-settings", {"passcode": "open sesame"})["ok"]
    assert alice.wait("room")[-1]["locked"] is True
    stranger = people()
    refused = stranger.register("Bob", room=ROOM)
    assert refused["ok"] is False and refused["error"].startswith("This room is locked")
    wrong = stranger.register("Bob", room=ROOM, passcode="open barley")
    assert wrong["error"].startswith("That passcode is not right")
    assert stranger.register("Bob", room=ROOM, passcode="open sesame")["ok"]
    owner_tab = people()  # the owner needs no passcode
    assert owner_tab.register("Alice", room=ROOM, token=token)["ok"]
    assert alice.emit("room-settings", {"passcode": ""})["ok"]
    assert people().register("Carol", room=ROOM)["ok"]


def test_only_the_owner_and_the_person_answered_may_stop_when_the_owner_says_so(
    make_app, client
):
    app = make_app(DEMO_DELAY_MS=200)
    alice, bob, carol = (Person(app, app.test_client()) for _ in range(3))
    for person, name in ((alice, "Alice"), (bob, "Bob"), (carol, "Carol")):
        assert person.register(name, room=ROOM)["ok"]
    assert alice.emit("room-settings", {"stop_policy": "owner_and_asker"})["ok"]
    streaming = threading.Thread(
        target=app.test_client().post,
        args=("/stream",),
        kwargs={
            "json": {"content": "tell me a long story please"},
            "headers": {"Accept": "text/event-stream", "X-Socket-Id": bob.sid},
        },
    )
    streaming.start()
    wait_for(lambda: carol.payloads("ai-delta"))
    refused = carol.emit("stop", {})
    assert refused["ok"] is False and "only its owner" in refused["error"]
    assert bob.emit("stop", {}) == {"ok": True}
    assert carol.wait("ai-end")[0]["status"] == "cancelled"
    streaming.join()
    for person in (alice, bob, carol):
        person.close()


def test_typing_reaches_the_others_throttled_and_is_never_stored(people):
    alice = join(people, "Alice")
    bob = join(people, "Bob")
    for _ in range(3):
        assert alice.emit("typing", {"typing": True}) == {"ok": True}
    assert alice.emit("typing", {"typing": False}) == {"ok": True}
    wait_for(lambda: len(bob.payloads("typing")) == 2)
    assert [t["typing"] for t in bob.payloads("typing")] == [True, False]
    assert bob.payloads("typing")[0]["name"] == "Alice"
    assert alice.payloads("typing") == []  # not echoed to the typist
    assert alice.emit("typing", {"typing": "yes"})["ok"] is False
    carol = join(people, "Carol")
    assert carol.wait("message-list")[0] == []


def test_regenerate_writes_the_latest_reply_again_and_keeps_the_old_one(people):
    alice = join(people, "Alice")
    bob = join(people, "Bob")
    alice.say("hello there")
    first = bob.wait("message-list", 2)[-1][0]
    assert bob.emit("regenerate", {}) == {"ok": True}
    assert [e["status"] for e in alice.wait("ai-end", 2)] == ["completed"] * 2
    updates = [m for batch in alice.payloads("message-list") for m in batch]
    assert {"id": first["id"], "status": "replaced"}.items() <= next(
        m for m in updates if m.get("status") == "replaced"
    ).items()
    newest = alice.payloads("message-list")[-1][0]
    assert newest["id"] != first["id"] and newest["role"] == "assistant"
    history = join(people, "Carol").wait("message-list")[0]
    assert [(m["role"], m.get("status")) for m in history] == [
        ("user", None),
        ("assistant", "replaced"),
        ("assistant", None),
    ]
    assert people("Dan").emit("regenerate", {})["ok"] is False  # the lobby: no reply


def test_members_export_the_conversation_as_markdown(app, client, people):
    alice = people()
    token = alice.register("Alice", room=ROOM)["token"]
    alice.say("hello *there*")
    alice.wait("ai-end")
    headers = {"X-Threadroom-User-Id": "u-Alice", "X-Threadroom-Token": token}
    response = client.get(f"/export?room={ROOM}", headers=headers)
    assert response.status_code == 200
    assert response.mimetype == "text/markdown"
    assert "attachment" in response.headers["Content-Disposition"]
    text = response.get_data(as_text=True)
    assert text.startswith(f"# Threadroom: {ROOM}")
    assert "**Alice** · " in text and "> hello *there*" in text
    assert "Hi Alice! You said" in text
    stranger = {"X-Threadroom-User-Id": "u-Alice", "X-Threadroom-Token": "forged"}
    assert client.get(f"/export?room={ROOM}", headers=stranger).status_code == 403
    assert client.get("/export?room=nowhere", headers=headers).status_code == 403


def test_ownership_survives_a_restart(make_app, tmp_path):
    db = str(tmp_path / "threadroom.sqlite3")
    first = make_app(ENGINE_DB=db, EMPTY_ROOM_TTL_S=-1)
    alice = Person(first, first.test_client())
    token = alice.register("Alice", room=ROOM)["token"]
    alice.close()
    first.extensions["threadroom.engine"].close()

    second = make_app(ENGINE_DB=db, EMPTY_ROOM_TTL_S=-1)
    bob = Person(second, second.test_client())
    assert bob.register("Bob", room=ROOM)["ok"]
    assert bob.emit("room-settings", {"answer_mode": "addressed"})["ok"] is False
    again = Person(second, second.test_client())
    assert again.register("Alice", room=ROOM, token=token)["ok"]
    assert again.emit("room-settings", {"answer_mode": "addressed"})["ok"]
    for person in (bob, again):
        person.close()


def test_http_senders_follow_the_lock_and_the_bans_too(app, people):
    alice = people()
    alice.register("Alice", room=ROOM)
    assert alice.emit("room-settings", {"passcode": "open sesame"})["ok"]
    alice.say("my secret plan")
    alice.wait("ai-end")
    client = app.test_client()
    stranger = {"room": ROOM, "name": "Mallory", "user_id": "", "content": "hi"}
    refused = client.post("/stream", json=stranger)
    assert refused.status_code == 403
    assert refused.get_json()["error"].startswith("This room is locked")
    with_code = client.post("/stream", json={**stranger, "passcode": "open sesame"})
    assert with_code.status_code == 200
    user_id = with_code.headers["X-Threadroom-User-Id"]
    token = with_code.headers["X-Threadroom-Token"]
    assert alice.emit("remove", {"user_id": user_id}) == {"ok": True}
    banned = {**stranger, "user_id": user_id, "token": token, "passcode": "open sesame"}
    again = client.post("/stream", json=banned)
    assert again.status_code == 403 and "removed you" in again.get_json()["error"]


def test_a_room_opened_over_http_is_its_openers(app, people):
    opened = app.test_client().post(
        "/stream", json={"room": ROOM, "name": "Hana", "content": "hello"}
    )
    assert opened.status_code == 200
    bob = join(people, "Bob")
    owner = bob.wait("welcome")[0]["settings"]["owner"]
    assert owner == opened.headers["X-Threadroom-User-Id"]


def test_a_message_nobody_waits_on_costs_the_others_one_event(app, people):
    """In a room that answers only when addressed, chat is one ``message`` event
    per message for the others: nothing was shown waiting, so no ``queue``."""
    alice, bob = addressed_room(people)
    settle(app)
    before = len(alice.names())
    assert bob.say("just chatting")["ok"]
    alice.wait("message")
    settle(app)
    assert alice.names()[before:] == ["message"]

"""Every limit is a clear refusal (an ack error, or a 429 with Retry-After), and
everyone else keeps being served."""

from __future__ import annotations

from tests.conftest import Person


def _person(app, name: str | None = None, **extra) -> Person:
    """Open a browser on ``app`` and register ``name`` if given."""
    person = Person(app, app.test_client())
    if name is not None:
        assert person.register(name, **extra)["ok"]
    return person


def test_the_message_rate_refuses_a_flood_and_not_the_others(make_app):
    app = make_app(LIMIT_MESSAGE_RATE="3 per minute")
    mallory, bob = _person(app, "Mallory"), _person(app, "Bob")
    acks = [mallory.say(f"spam {n}") for n in range(4)]
    assert [ack["ok"] for ack in acks] == [True, True, True, False]
    refused = acks[-1]
    assert refused["error"].startswith("You are sending messages too fast; wait ")
    assert 1 <= refused["retry_after"] <= 60
    assert bob.say("a real question")["ok"]
    assert "spam 3" not in [m["content"] for m in bob.payloads("message")]


def test_a_refused_message_can_be_sent_again_later_with_its_id(make_app):
    app = make_app(LIMIT_QUEUED_PER_PERSON=1, DEMO_DELAY_MS=40)
    alice = _person(app, "Alice")
    alice.say("first")
    alice.wait("ai-start")
    assert alice.say("second", message_id="m-2")["ok"]
    assert alice.say("third", message_id="m-3")["ok"] is False
    alice.wait("ai-end", 2, timeout=30)
    assert alice.say("third", message_id="m-3") == {
        "ok": True,
        "id": "m-3",
        "queued": False,
    }


def test_one_persons_queue_is_capped_so_the_others_get_the_next_turn(make_app):
    app = make_app(LIMIT_QUEUED_PER_PERSON=2, DEMO_DELAY_MS=40)
    mallory, bob = _person(app, "Mallory"), _person(app, "Bob")
    mallory.say("start")
    bob.wait("ai-start")
    acks = [mallory.say(f"flood {n}") for n in range(3)]
    assert [ack["ok"] for ack in acks] == [True, True, False]
    assert acks[2]["error"] == (
        "You have 2 messages waiting for the assistant; wait for its reply"
        " before sending more."
    )
    assert acks[2]["retry_after"] == 5
    assert bob.say("my turn too?")["ok"]
    second = bob.wait("ai-start", 2, timeout=30)[1]
    assert second["replying_to"] == ["Mallory", "Bob"]


def test_the_room_queue_depth_is_capped(make_app):
    app = make_app(LIMIT_ROOM_QUEUE=2, DEMO_DELAY_MS=40)
    people = [_person(app, name) for name in ("Ann", "Ben", "Cat")]
    people[0].say("start")
    people[0].wait("ai-start")
    assert people[1].say("one")["ok"] and people[2].say("two")["ok"]
    full = people[0].say("three")
    assert full["ok"] is False and full["retry_after"] == 5
    assert full["error"] == (
        "2 messages are already waiting for the assistant in this room; try again"
        " when it has answered."
    )


def test_registrations_per_address_are_limited(make_app):
    app = make_app(LIMIT_REGISTRATION_RATE="2 per minute")
    browser = _person(app)
    assert browser.register("Ann")["ok"] and browser.register("Ann")["ok"]
    refused = browser.register("Ann")
    assert refused["ok"] is False and refused["retry_after"] >= 1
    assert refused["error"].startswith("Too many sign-ins from your network; wait ")


def test_new_rooms_per_address_are_limited_but_existing_rooms_stay_open(make_app):
    app = make_app(LIMIT_NEW_ROOM_RATE="2 per minute")
    browsers = [_person(app) for _ in range(4)]
    assert browsers[0].register("Ann", room="r-1")["ok"]
    assert browsers[1].register("Ben", room="r-2")["ok"]
    refused = browsers[2].register("Cat", room="r-3")
    assert refused["ok"] is False and refused["retry_after"] >= 1
    assert refused["error"].startswith("Too many new rooms from your network; wait ")
    assert browsers[3].register("Dan", room="r-1")["ok"]


def test_rooms_per_process_are_limited(make_app):
    app = make_app(LIMIT_ROOMS=2)
    assert _person(app).register("Ann", room="r-1")["ok"]
    assert _person(app).register("Ben", room="r-2")["ok"]
    refused = _person(app).register("Cat", room="r-3")
    assert refused == {
        "ok": False,
        "error": "This server has too many rooms open right now; try again in a"
        " few minutes.",
        "retry_after": 60,
    }


def test_members_per_room_are_limited_but_a_second_tab_gets_in(make_app):
    app = make_app(LIMIT_ROOM_MEMBERS=2)
    ann = _person(app)
    token = ann.register("Ann")["token"]
    _person(app, "Ben")
    refused = _person(app).register("Cat")
    assert refused == {
        "ok": False,
        "error": "This room is full (2 people); try again later.",
        "retry_after": 60,
    }
    assert _person(app).register("Ann", token=token)["ok"]


def test_connections_per_process_are_limited(make_app):
    app = make_app(LIMIT_CONNECTIONS=2)
    first, second = _person(app), _person(app)
    third = _person(app)
    assert first.sio.is_connected() and second.sio.is_connected()
    assert not third.sio.is_connected()
    first.close()
    assert _person(app).sio.is_connected()  # a place came free


def test_stream_answers_a_limit_with_429_and_retry_after(make_app):
    app = make_app(LIMIT_MESSAGE_RATE="1 per minute")
    http = app.test_client()
    first = http.post("/stream", json={"content": "hi", "user_id": "u-h", "name": "H"})
    token = first.headers["X-Threadroom-Token"]
    again = http.post(
        "/stream",
        json={"content": "again", "user_id": "u-h", "name": "H", "token": token},
    )
    assert again.status_code == 429
    assert 1 <= int(again.headers["Retry-After"]) <= 60
    assert again.get_json()["error"].startswith("You are sending messages too fast")


def test_anonymous_stream_posts_count_as_registrations(make_app):
    app = make_app(LIMIT_REGISTRATION_RATE="2 per minute")
    http = app.test_client()
    codes = [
        http.post("/stream", json={"content": "hi", "name": f"A{n}"}).status_code
        for n in range(3)
    ]
    assert codes == [200, 200, 429]


def test_anonymous_stream_posts_cannot_open_rooms_without_end(make_app):
    app = make_app(LIMIT_NEW_ROOM_RATE="2 per minute")
    http = app.test_client()
    codes = [
        http.post(
            "/stream", json={"content": "hi", "name": "A", "room": f"r-{n}"}
        ).status_code
        for n in range(3)
    ]
    assert codes == [200, 200, 429]

"""The shared room over Socket.IO: joining, talking, turns, history, reconnects."""

from __future__ import annotations

import threading

import pytest

from tests.conftest import wait_for


def test_register_welcomes_with_assistant_and_history(people):
    alice = people("Alice")
    welcome = alice.wait("welcome")[0]
    assert welcome["name"] == "Alice"
    assert welcome["assistant"]["is_demo"] is True
    assert welcome["members"] == [{"user_id": "u-Alice", "name": "Alice"}]
    assert alice.wait("message-list")[0] == []


def test_others_hear_join_and_leave_and_the_joiner_gets_presence(people):
    alice = people("Alice")
    bob = people("Bob")
    assert alice.wait("join")[0] == {"user_id": "u-Bob", "name": "Bob"}
    assert bob.wait("presence")[-1] == [
        {"user_id": "u-Alice", "name": "Alice"},
        {"user_id": "u-Bob", "name": "Bob"},
    ]
    assert len(alice.payloads("presence")) == 1  # her own, on joining
    bob.close()
    assert alice.wait("leave")[0] == {"user_id": "u-Bob", "name": "Bob"}


def test_a_second_tab_is_not_a_second_person(people):
    alice = people()
    token = alice.register("Alice")["token"]
    bob = people("Bob")
    tab = people("Alice", token=token)
    assert tab.wait("presence")[-1] == [
        {"user_id": "u-Alice", "name": "Alice"},
        {"user_id": "u-Bob", "name": "Bob"},
    ]
    tab.close()
    assert bob.names().count("leave") == 0
    assert bob.names().count("join") == 0


def test_a_taken_nickname_gets_a_suffix(people):
    people("Alice")
    other = people()
    ack = other.register("alice", user_id="someone-else")
    assert ack["ok"] and (ack["user_id"], ack["name"]) == ("someone-else", "alice (2)")
    assert other.wait("welcome")[0]["name"] == "alice (2)"


def test_message_is_broadcast_and_answered_for_everyone(people):
    alice, bob = people("Alice"), people("Bob")
    ack = alice.say("Hello everyone", message_id="m-1")
    assert ack == {"ok": True, "id": "m-1", "queued": False}
    heard = bob.wait("message")[0]
    assert (heard["id"], heard["name"], heard["content"]) == (
        "m-1",
        "Alice",
        "Hello everyone",
    )
    for person in (alice, bob):
        reply = person.wait("message-list", 2)[-1]
        assert len(reply) == 1 and reply[0]["role"] == "assistant"
        assert "Alice" in reply[0]["content"]
    assert "message" not in alice.names()  # the sender is not echoed


def test_a_turn_is_bracketed_in_order(people):
    alice = people("Alice")
    alice.say("What do you think?")
    alice.wait("ai-end")
    turn = [e for e in alice.names() if e in ("ai-start", "message-list", "ai-end")]
    assert turn == ["message-list", "ai-start", "message-list", "ai-end"]
    start, end = alice.payloads("ai-start")[0], alice.payloads("ai-end")[0]
    assert start["replying_to"] == ["Alice"]
    assert end == {"turn": start["turn"], "status": "completed"}


def test_late_joiner_gets_complete_history_once(people):
    alice = people("Alice")
    alice.say("first", message_id="a1")
    alice.wait("ai-end")
    alice.say("second", message_id="a2")
    alice.wait("ai-end", 2)
    carol = people("Carol")
    history = carol.wait("message-list")[0]
    assert [m["role"] for m in history] == ["user", "assistant", "user", "assistant"]
    assert [m["id"] for m in history][::2] == ["a1", "a2"]
    assert len({m["id"] for m in history}) == 4


def test_reconnect_does_not_duplicate(people):
    alice = people("Alice")
    alice.say("hello", message_id="r1")
    alice.wait("ai-end")
    alice.close()
    again = people("Alice")  # same user_id, new connection
    assert again.say("hello", message_id="r1") == {
        "ok": True,
        "id": "r1",
        "duplicate": True,
    }
    history = again.wait("message-list")[0]
    assert [m["id"] for m in history].count("r1") == 1
    assert len(history) == 2


def test_messages_during_a_turn_are_queued_and_answered_together(make_app, client):
    app = make_app(DEMO_DELAY_MS=30)
    from tests.conftest import Person

    people = [Person(app, app.test_client()) for _ in range(6)]
    watcher, senders = people[0], people[1:]
    watcher.register("Watcher")
    for index, person in enumerate(senders):
        person.register(f"P{index}")
    watcher.say("start a long turn")
    watcher.wait("ai-start")
    acks = []
    threads = [
        threading.Thread(
            target=lambda p=p, i=i: acks.append(p.say(f"burst {i}", f"b{i}"))
        )
        for i, p in enumerate(senders)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(ack["ok"] for ack in acks) and len(acks) == 5
    ends = watcher.wait("ai-end", 2, timeout=20)
    assert [e["status"] for e in ends] == ["completed", "completed"]
    history = Person(app, app.test_client())
    history.register("Late")
    messages = history.wait("message-list")[0]
    ids = [m["id"] for m in messages if m["role"] == "user"]
    assert sorted(ids[1:]) == [f"b{i}" for i in range(5)] and len(ids) == 6
    assert [m["role"] for m in messages].count("assistant") == 2
    for person in [*people, history]:
        person.close()


def test_bad_payloads_get_clear_errors(people):
    stranger = people()
    assert stranger.say("hi") == {
        "ok": False,
        "error": "Please register with a nickname before sending messages.",
    }
    cases = [
        None,
        "Alice",
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 33},
        {"name": "bad\x00name"},
        {"name": 42},
        {"name": "ok", "user_id": "has spaces"},
        {"name": "ok", "room": "Not A Room!"},
    ]
    for payload in cases:
        ack = stranger.emit("register", payload)
        assert ack["ok"] is False and ack["error"], payload
    alice = people("Alice")
    for payload in [
        None,
        "text",
        {"content": ""},
        {"content": "  "},
        {"content": 5},
        {"content": "x" * 4001},
        {"content": "bell\x07"},
        {"content": "hi", "id": "no spaces allowed"},
    ]:
        ack = alice.emit("message", payload)
        assert ack["ok"] is False and ack["error"], payload
    ack = alice.emit("no-such-event", {})
    assert ack["ok"] is False and "Unknown event" in ack["error"]
    assert alice.say("still fine")["ok"] is True


def test_identity_cannot_be_forged_in_a_message(people):
    alice, bob = people("Alice"), people("Bob")
    alice.emit(
        "message",
        {"content": "I am Bob", "name": "Bob", "user_id": "u-Bob", "role": "assistant"},
    )
    heard = bob.wait("message")[0]
    assert (heard["name"], heard["user_id"], heard["role"]) == (
        "Alice",
        "u-Alice",
        "user",
    )


def test_tool_round_trip_shows_status_and_uses_output(people):
    alice = people("Alice")
    alice.say("What time is it in Tokyo?")
    alice.wait("ai-end")
    tools = alice.payloads("ai-tool")
    assert [(t["name"], t["status"]) for t in tools] == [
        ("get_current_time", "running"),
        ("get_current_time", "done"),
    ]
    assert tools[0]["label"] == "Checking the time…"
    reply = alice.payloads("message-list")[-1][0]["content"]
    assert "Asia/Tokyo" in reply


def test_failed_run_tells_the_room_and_the_queue_moves_on(people):
    alice, bob = people("Alice"), people("Bob")
    alice.say("please fail")
    end = alice.wait("ai-end")[0]
    assert end["status"] == "failed"
    system = [m for m in bob.wait("message", 2) if m["role"] == "system"]
    assert system and "could not answer" in system[0]["content"]
    assert system[0]["level"] == "error"  # shown unlike a join line
    alice.say("try again")
    assert alice.wait("ai-end", 2)[-1]["status"] == "completed"


def test_stop_cancels_the_reply_for_everyone(make_app, client):
    app = make_app(DEMO_DELAY_MS=200)
    from tests.conftest import Person

    alice, bob = Person(app, client), Person(app, app.test_client())
    alice.register("Alice")
    bob.register("Bob")
    streaming = threading.Thread(
        target=app.test_client().post,
        args=("/stream",),
        kwargs={
            "json": {"content": "tell me a long story please"},
            "headers": {"Accept": "text/event-stream", "X-Socket-Id": alice.sid},
        },
    )
    streaming.start()
    wait_for(lambda: bob.payloads("ai-delta"))
    assert bob.emit("stop", {}) == {"ok": True}
    end = alice.wait("ai-end")[0]
    assert end["status"] == "cancelled"
    assert end["stopped_by"] == {"user_id": "u-Bob", "name": "Bob"}
    reply = alice.payloads("message-list")[-1][0]
    assert reply["status"] == "stopped" and reply["content"]
    assert reply["content"] == "".join(d["delta"] for d in alice.payloads("ai-delta"))
    assert any(
        "Bob stopped the reply" in m["content"] for m in alice.payloads("message")
    )
    assert alice.emit("stop", {})["ok"] is False  # nothing left to stop
    streaming.join()
    for person in (alice, bob):
        person.close()


def test_a_run_past_the_timeout_is_cancelled(make_app, client):
    app = make_app(DEMO_DELAY_MS=400, RUN_TIMEOUT_S=1)
    from tests.conftest import Person

    alice = Person(app, client)
    alice.register("Alice")
    alice.say("tell me a long story please")
    end = alice.wait("ai-end", timeout=15)[0]
    assert end["status"] == "timeout"
    assert any("took over 1 s" in m["content"] for m in alice.payloads("message"))
    alice.close()


class GatedTools:
    """The real tools, but each call waits until the test opens the gate."""

    def __init__(self, tools) -> None:
        self.tools = tools
        self.calling = threading.Event()
        self.gate = threading.Event()

    def label(self, name: str) -> str:
        return self.tools.label(name)

    def call(self, name: str, arguments: str) -> str:
        self.calling.set()
        self.gate.wait(10)
        return self.tools.call(name, arguments)


@pytest.mark.parametrize("stream", [False, True], ids=["poll", "stream"])
def test_stop_while_a_tool_runs_reads_as_stopped(app, client, stream):
    from tests.conftest import Person

    service = app.extensions["threadroom.assistant"]
    service.tools = gated = GatedTools(service.tools)
    alice = Person(app, client)
    alice.register("Alice")
    body = {"content": "what time is it in Tokyo?"}
    if stream:
        headers = {"Accept": "text/event-stream", "X-Socket-Id": alice.sid}
        sender = threading.Thread(
            target=app.test_client().post,
            args=("/stream",),
            kwargs={"json": body, "headers": headers},
        )
        sender.start()
    else:
        alice.emit("message", body)
    assert gated.calling.wait(10)
    assert alice.emit("stop", {}) == {"ok": True}
    gated.gate.set()
    end = alice.wait("ai-end")[0]
    assert end["status"] == "cancelled"
    notes = [m["content"] for m in alice.payloads("message") if m["role"] == "system"]
    assert notes == ["Alice stopped the reply."]
    alice.say("and now?")
    assert alice.wait("ai-end", 2)[-1]["status"] == "completed"
    alice.close()


def test_a_copied_user_id_without_its_token_is_someone_new(people):
    alice = people()
    token = alice.register("Alice")["token"]
    copycat = people()
    ack = copycat.register("Alice", user_id="u-Alice")
    assert ack["user_id"] != "u-Alice" and ack["name"] == "Alice (2)"
    second_tab = people()
    ack = second_tab.register("Alice", user_id="u-Alice", token=token)
    assert (ack["user_id"], ack["name"]) == ("u-Alice", "Alice")


def test_a_client_sent_disconnect_event_is_ignored(people):
    alice, bob = people("Alice"), people("Bob")
    bob.emit("disconnect")
    assert bob.say("still here")["ok"] is True
    assert "leave" not in alice.names()


def test_names_with_emoji_sequences_and_crlf_text_are_fine(people):
    coder = people("👩‍💻 Dev", user_id="dev-1")
    assert coder.wait("welcome")[0]["name"] == "👩‍💻 Dev"
    assert coder.say("line one\r\nline two")["ok"] is True
    assert people().register("evil\u202egnp.exe")["ok"] is False


def test_the_id_of_someone_away_cannot_be_taken_over(people):
    alice = people()
    token = alice.register("Alice")["token"]
    alice.close()
    mallory = people()
    ack = mallory.register("Alice", user_id="u-Alice")
    assert ack["user_id"] != "u-Alice" and ack["token"] != token
    back = people("Alice", token=token)
    assert back.wait("welcome")[0]["user_id"] == "u-Alice"


def test_a_new_nickname_reaches_the_others(people):
    alice = people()
    token = alice.register("Alice")["token"]
    bob = people("Bob")
    assert alice.register("Alicia", user_id="u-Alice", token=token)["name"] == "Alicia"
    assert bob.wait("presence", 2)[-1] == [
        {"user_id": "u-Alice", "name": "Alicia"},
        {"user_id": "u-Bob", "name": "Bob"},
    ]


def test_a_reply_is_never_older_than_its_question(people):
    # The original client sorts by created_at; a reply carries its run's whole
    # second, so it must still come after a question asked within that second.
    alice = people("Alice")
    for text in ("one", "two", "three"):
        alice.say(text)
        alice.wait("ai-end", count=len(alice.payloads("ai-end")) + 1)
    live = [m for batch in alice.payloads("message-list")[1:] for m in batch]
    history = people("Bob").wait("message-list")[0]
    assert [m["role"] for m in sorted(history, key=lambda m: m["created_at"])] == [
        "user",
        "assistant",
    ] * 3
    times = [m["created_at"] for m in history]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert [m["created_at"] for m in live] == times[1::2]

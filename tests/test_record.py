"""The record is durable: a reload shows the conversation as people saw it live."""

from __future__ import annotations

import threading

from tests.conftest import Person


def _join(app, name: str, **extra) -> Person:
    """Open a browser on ``app`` and register ``name``."""
    person = Person(app, app.test_client())
    assert person.register(name, **extra)["ok"]
    return person


def _history(app, name: str = "Late") -> list[dict]:
    """Return the history a newcomer gets on joining."""
    late = _join(app, name)
    history = late.wait("message-list")[0]
    late.close()
    return history


def _ask_streamed(app, person: Person, content: str, message_id: str) -> None:
    """Send ``content`` as ``person`` over POST /stream (so everyone sees the reply
    being written) and wait until its first words arrive."""
    body = {"id": message_id, "content": content}
    headers = {"X-Socket-Id": person.sid, "Accept": "text/event-stream"}
    post = app.test_client().post
    threading.Thread(
        target=lambda: post("/stream", json=body, headers=headers).get_data(),
        daemon=True,
    ).start()
    person.wait("ai-delta")


def test_a_stop_reads_the_same_after_a_reload(make_app):
    app = make_app(DEMO_DELAY_MS=150)
    alice, bob = _join(app, "Alice"), _join(app, "Bob")
    _ask_streamed(app, alice, "tell me a long story", "q-1")
    assert bob.emit("stop") == {"ok": True}
    alice.wait("ai-end", timeout=30)
    live_line = next(m for m in alice.payloads("message") if m["role"] == "system")
    live_reply = alice.payloads("message-list")[-1][0]
    history = _history(app)
    assert [m["role"] for m in history] == ["user", "assistant", "system"]
    question, reply, line = history
    assert question["id"] == "q-1"
    assert reply["status"] == "stopped" and reply == live_reply
    assert reply["stopped_by"] == {"user_id": "u-Bob", "name": "Bob"}
    assert line == live_line and line["content"] == "Bob stopped the reply."


def test_a_failed_question_keeps_its_failure_line(make_app):
    app = make_app(DEMO_DELAY_MS=400, RUN_TIMEOUT_S=1)
    alice = _join(app, "Alice")
    alice.say("tell me a long story", message_id="q-1")
    assert alice.wait("ai-end", timeout=30)[0]["status"] == "timeout"
    live_line = next(m for m in alice.payloads("message") if m["role"] == "system")
    history = _history(app)
    assert history[0]["id"] == "q-1"
    assert history[-1] == live_line
    assert live_line["level"] == "error" and "took over 1 s" in live_line["content"]
    replies = [m for m in history if m["role"] == "assistant"]
    assert all(reply["status"] == "timeout" for reply in replies)


def test_lines_follow_the_message_they_were_said_after(make_app):
    app = make_app(DEMO_DELAY_MS=150)
    alice = _join(app, "Alice")
    _ask_streamed(app, alice, "first", "q-1")
    alice.emit("stop")
    alice.wait("ai-end", timeout=30)
    alice.say("second", message_id="q-2")
    alice.wait("ai-end", 2, timeout=30)
    kinds = [(m["role"], m.get("status")) for m in _history(app)]
    assert kinds == [
        ("user", None),
        ("assistant", "stopped"),
        ("system", None),
        ("user", None),
        ("assistant", None),
    ]

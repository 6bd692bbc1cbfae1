"""Shared mode seen by the people in a room: two real ``python app.py`` processes
on one Redis and one PostgreSQL serve one room as if they were one server.

Needs a reachable Redis and PostgreSQL (skips with a hint otherwise; ``.ci/run``
starts both).
"""

from __future__ import annotations

import pytest
import requests

from tests.cluster import LivePerson

pytest_plugins = ["cluster_fixtures"]


@pytest.fixture
def open_person():
    """Open tabs on real servers: ``open_person(url)``; all closed at the end."""
    opened: list[LivePerson] = []

    def open_on(url: str) -> LivePerson:
        person = LivePerson(url)
        opened.append(person)
        return person

    yield open_on
    for person in opened:
        person.close()


def join(open_person, url: str, name: str, room: str) -> LivePerson:
    """Open a tab on ``url`` and register ``name`` in ``room``."""
    person = open_person(url)
    ack = person.register(name, room)
    assert ack["ok"], ack
    person.wait("welcome")
    return person


TURN_EVENTS = {"ai-start", "ai-delta", "ai-end", "message-list"}


def turn_seen(person: LivePerson) -> list[tuple[str, object]]:
    """Return the turn's events as ``person`` received them (the history on join
    left out), once its ``ai-end`` has arrived."""
    person.wait("ai-end")
    with person.arrived:
        events = list(person.events)
    start = next(n for n, (name, _) in enumerate(events) if name == "ai-start")
    return [(name, data) for name, data in events[start:] if name in TURN_EVENTS]


def test_the_page_opens_a_websocket_at_once_in_shared_mode(cluster):
    """Behind a balancer, long-polling's requests could reach another process."""
    page = requests.get(cluster.url(0) + "/", timeout=10).text
    assert '"websocket_only": true' in page


def test_a_message_on_one_process_reaches_a_person_on_the_other(cluster, open_person):
    bob = join(open_person, cluster.url(1), "Bob", "crossing")
    ann = join(open_person, cluster.url(0), "Ann", "crossing")
    assert ann.say("hello from process 0", "m-ann-1")["ok"]
    (message,) = bob.wait("message")
    assert message["id"] == "m-ann-1" and message["name"] == "Ann"
    assert message["content"] == "hello from process 0"
    assert message["role"] == "user"


def assert_saw_the_streamed_reply(person: LivePerson, asker: str) -> None:
    """Check ``person`` saw one whole turn: ``ai-start``, the reply streamed in
    ``ai-delta``s, the reply message, ``ai-end`` (completed)."""
    events = turn_seen(person)
    names = [name for name, _ in events]
    assert names[0] == "ai-start" and names[-1] == "ai-end", names
    assert "ai-delta" in names, names
    assert events[-1][1]["status"] == "completed"
    (reply,) = [
        m for n, data in events if n == "message-list" for m in data
        if m["role"] == "assistant"
    ]  # fmt: skip
    streamed = "".join(d["delta"] for n, d in events if n == "ai-delta")
    assert streamed.strip() == reply["content"].strip()
    assert asker in reply["content"]


def test_the_streamed_reply_reaches_people_on_both_processes(cluster, open_person):
    ann = join(open_person, cluster.url(0), "Ann", "both-see")
    bob = join(open_person, cluster.url(1), "Bob", "both-see")
    # Bob's page sends in stream mode, to the process that holds his socket.
    frames = bob.stream(cluster.url(1), "hello, anyone there?")
    assert "event: delta" in frames and frames[-2:] == ["event: done", "data: {}"]
    for person in (ann, bob):
        assert_saw_the_streamed_reply(person, "Bob")
    # Both saw the same turn: the same reply, streamed in the same pieces.
    assert turn_seen(ann) == turn_seen(bob)


def test_a_stream_post_may_land_on_another_process_than_its_socket(
    cluster, open_person
):
    """Behind a round-robin balancer the page's ``POST /stream`` (which names its
    socket) can reach a process that does not hold that socket."""
    ann = join(open_person, cluster.url(0), "Ann", "elsewhere")
    bob = join(open_person, cluster.url(1), "Bob", "elsewhere")
    frames = bob.stream(cluster.url(0), "hello, anyone there?")
    assert "event: delta" in frames
    for person in (ann, bob):
        assert_saw_the_streamed_reply(person, "Bob")


def test_a_person_on_one_process_sees_who_joins_on_the_other(cluster, open_person):
    ann = join(open_person, cluster.url(0), "Ann", "roster")
    join(open_person, cluster.url(1), "Bob", "roster")
    (joined,) = ann.wait("join")
    assert joined["name"] == "Bob"
    # A third person, on process 0, is welcomed with both already there.
    cid = join(open_person, cluster.url(0), "Cid", "roster")
    (welcome,) = cid.payloads("welcome")
    assert {m["name"] for m in welcome["members"]} == {"Ann", "Bob", "Cid"}


def test_registrations_per_address_are_counted_across_processes(make_cluster):
    cluster = make_cluster(2, LIMIT_REGISTRATION_RATE="3 per minute")
    tabs = [LivePerson(cluster.url(i)) for i in (0, 0, 1, 1)]
    try:
        acks = [tab.register(f"Reg{n}", "counted") for n, tab in enumerate(tabs)]
    finally:
        for tab in tabs:
            tab.close()
    assert [ack["ok"] for ack in acks] == [True, True, True, False], acks
    # Process 1 saw one sign-in only: it refuses because process 0's count is shared.
    assert acks[3]["error"].startswith("Too many sign-ins from your network; wait ")
    assert acks[3]["retry_after"] >= 1

"""Shared mode under pressure: a burst from people on three processes, Stop from
another process, ``kill -9`` of the process writing a reply, and a restart of
every process, as the people in the room see them.

Needs a reachable Redis and PostgreSQL (skips with a hint otherwise; ``.ci/run``
starts both).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import openai
import pytest
import requests

from tests.cluster import LivePerson

pytest_plugins = ["cluster_fixtures"]

INTERRUPTED = "The server process writing the reply stopped; the reply was interrupted."


@pytest.fixture
def tabs():
    """Open tabs: ``tabs(url, name, room)`` registers one; all closed at the end."""
    opened: list[LivePerson] = []

    def open_tab(url: str, name: str, room: str) -> LivePerson:
        person = LivePerson(url)
        opened.append(person)
        ack = person.register(name, room)
        assert ack["ok"], ack
        person.wait("welcome")
        return person

    yield open_tab
    for person in opened:
        try:
            person.close()
        except Exception:  # its process was killed: nothing to close
            pass


def history(person: LivePerson) -> list[dict]:
    """Return the history ``person`` got on joining (the first message-list)."""
    return person.wait("message-list")[0]


def turns(person: LivePerson) -> list[tuple[str, dict]]:
    """Return ``person``'s ai-start and ai-end events, in order."""
    with person.arrived:
        return [(n, d) for n, d in person.events if n in ("ai-start", "ai-end")]


def ended(person: LivePerson, count: int, timeout: float = 60) -> list[dict]:
    """Wait for ``count`` ai-end events; return them."""
    return person.wait("ai-end", count, timeout)


def test_a_burst_from_three_processes_loses_nothing_and_runs_one_turn_at_a_time(
    make_cluster, tabs
):
    cluster = make_cluster(3, DEMO_DELAY_MS="5")
    people = [tabs(cluster.url(i), name, "burst") for i, name in
              enumerate(("Ann", "Bob", "Cid"))]  # fmt: skip
    sent = {f"{p}-{n}" for p in ("Ann", "Bob", "Cid") for n in range(3)}

    def send(person: LivePerson, name: str) -> None:
        for n in range(3):
            ack = person.say(f"message {n} from {name}", f"{name}-{n}")
            assert ack["ok"], ack

    senders = [
        threading.Thread(target=send, args=(person, name))
        for person, name in zip(people, ("Ann", "Bob", "Cid"), strict=True)
    ]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(30)

    def everyone_answered(person: LivePerson) -> bool:
        answered = {n for d in person.payloads("ai-start") for n in d["replying_to"]}
        quiet = len(person.payloads("ai-start")) == len(person.payloads("ai-end"))
        return answered == {"Ann", "Bob", "Cid"} and quiet

    for person in people:
        person.wait_until(everyone_answered, 60, "turns answering all three")
    # Each screen saw the turns one after another, never two at once.
    for person in people:
        kinds = [name for name, _ in turns(person)]
        assert kinds == ["ai-start", "ai-end"] * (len(kinds) // 2), kinds
        assert all(d["status"] == "completed" for d in person.payloads("ai-end"))
    # A late joiner on each process reads the same conversation, every message once.
    late = [tabs(cluster.url(i), f"Late{i}", "burst") for i in range(3)]
    records = [[m["id"] for m in history(person)] for person in late]
    assert records[0] == records[1] == records[2]
    user_ids = [i for i in records[0] if i in sent]
    assert sorted(user_ids) == sorted(sent)  # none lost, none twice
    replies = [m for m in history(late[0]) if m["role"] == "assistant"]
    assert len(replies) == len(people[0].payloads("ai-end"))  # one per turn


def continued(shown: str, delta: str, at: int) -> str:
    """Apply a delta as the page does (static/store.js ``continuedText``)."""
    if at > len(shown):
        return shown + delta
    if len(shown) >= at + len(delta):
        return shown
    return shown[:at] + delta


def test_a_joiner_on_another_process_sees_the_reply_written_so_far(make_cluster, tabs):
    cluster = make_cluster(2, DEMO_DELAY_MS="30")
    ann = tabs(cluster.url(0), "Ann", "joining")
    frames: list[str] = []
    streaming = threading.Thread(
        target=lambda: frames.extend(ann.stream(cluster.url(0), "count to 120")),
        daemon=True,
    )
    streaming.start()
    ann.wait("ai-delta", 20, 30)  # process 0 is writing the reply
    cid = tabs(cluster.url(1), "Cid", "joining")
    (welcome,) = cid.payloads("welcome")
    busy = welcome["busy"]
    assert busy is not None and busy["replying_to"] == ["Ann"]
    ((partial,),) = [busy["partial"]]
    assert partial["text"].startswith("1 2 3")
    streaming.join(60)
    # The partial text, continued by the deltas that came after it, is the reply:
    # nothing missing, nothing twice.
    (end,) = cid.wait("ai-end")
    assert end["status"] == "completed"
    shown = partial["text"]
    for delta in cid.payloads("ai-delta"):
        shown = continued(shown, delta["delta"], delta["at"])
    reply = [m for m in cid.payloads("message-list")[-1] if m["role"] == "assistant"]
    assert shown == reply[0]["content"]


def test_stop_on_one_process_stops_the_reply_written_on_another(make_cluster, tabs):
    cluster = make_cluster(2, DEMO_DELAY_MS="150")
    owner = tabs(cluster.url(1), "Olga", "stopping")  # the room is hers
    ann = tabs(cluster.url(0), "Ann", "stopping")
    assert ann.say("count to 300", "story-1")["ok"]  # process 0 runs it
    ann.wait("ai-start")
    owner.wait("ai-start")
    assert owner.call("stop", {}) == {"ok": True}
    for person in (ann, owner):
        (end,) = ended(person, 1, 30)
        assert end["status"] == "cancelled"
        assert end["stopped_by"]["name"] == "Olga"
    line = ann.wait_until(
        lambda me: [m for m in me.payloads("message") if m["role"] == "system"],
        10,
        "the stop line",
    )
    assert line[0]["content"] == "Olga stopped the reply."


def test_kill_9_of_the_process_writing_a_reply(make_cluster, tabs):
    """The room is told, the partial reply stays in the record marked interrupted,
    the dead process's people leave, and a survivor answers the queue."""
    cluster = make_cluster(2, DEMO_DELAY_MS="150")
    ann = tabs(cluster.url(0), "Ann", "crash")
    bob = tabs(cluster.url(1), "Bob", "crash")
    frames: list[str] = []
    # Ann's page sends in stream mode to her own process: process 0 writes it.
    streaming = threading.Thread(
        target=lambda: frames.extend(
            _stream_until_cut(ann, cluster.url(0), "count to 300")
        ),
        daemon=True,
    )
    streaming.start()
    # The reply is being written, on every screen, for over a second (the engine
    # saves a growing reply once a second, so a crash keeps what was shown).
    bob.wait("ai-delta", 10, 30)
    assert bob.say("are you still there?", "bob-1")["queued"] is True
    cluster.kill(0)
    (leave,) = bob.wait("leave", 1, 20)
    assert leave["name"] == "Ann"
    interrupted = bob.wait_until(
        lambda me: [d for d in me.payloads("ai-end") if d["status"] == "interrupted"],
        20,
        "the interrupted turn's ai-end",
    )
    assert interrupted[0]["turn"] == bob.payloads("ai-start")[0]["turn"]
    lines = [m["content"] for m in bob.payloads("message") if m["role"] == "system"]
    assert any(line.startswith(INTERRUPTED) for line in lines), lines
    # Process 1 takes over and answers what waited, once.
    answer = bob.wait_until(
        lambda me: (
            [d for d in me.payloads("ai-start") if d["replying_to"] == ["Bob"]]
            and len(me.payloads("ai-end")) >= 2
        ),
        60,
        "the survivor's turn for Bob",
    )
    assert answer
    assert bob.payloads("ai-end")[1]["status"] == "completed"
    # What people saw stays: a late joiner reads the line and the partial reply.
    late = tabs(cluster.url(1), "Late", "crash")
    record = history(late)
    assert any(m["content"].startswith(INTERRUPTED) for m in record)
    kept = [m for m in record if m.get("status") == "interrupted"]
    streamed = "".join(d["delta"] for d in bob.payloads("ai-delta"))
    assert kept and kept[0]["content"].strip()
    assert streamed.startswith(kept[0]["content"].strip())
    assert any(m["id"] == "bob-1" for m in record)


def _stream_until_cut(person: LivePerson, url: str, content: str) -> list[str]:
    """Post a message in stream mode; return the SSE lines read before the
    connection was cut (its process is killed)."""
    try:
        return person.stream(url, content, timeout=60)
    except Exception:
        return []


def test_a_restart_of_every_process_keeps_the_conversation(make_cluster, tabs):
    cluster = make_cluster(2, DEMO_DELAY_MS="5")
    ann = tabs(cluster.url(0), "Ann", "restart")
    assert ann.say("remember me", "keep-1")["ok"]
    ended(ann, 1)
    before = [m["id"] for m in tabs(cluster.url(1), "Bob", "restart").wait(
        "message-list")[0]]  # fmt: skip
    ann.close()
    for i in range(len(cluster)):
        cluster.stop(i)
    for i in range(len(cluster)):
        cluster.start(i)
    after = [m["id"] for m in history(tabs(cluster.url(1), "Cid", "restart"))]
    assert [i for i in after if i in before] == before  # all kept, in order
    assert "keep-1" in after


def test_an_assistants_client_cancels_a_run_through_any_process(make_cluster):
    """The engine's /v1 in shared mode: the cancel reaches process 1, the model
    runs on process 0, and the run still stops within seconds."""
    cluster = make_cluster(2, ENGINE_API_KEY="engine-key", DEMO_DELAY_MS="100")
    clients = [
        openai.OpenAI(api_key="engine-key", base_url=cluster.url(i) + "/v1")
        for i in range(2)
    ]
    assistant = clients[0].beta.assistants.create(model="demo", name="Counter")
    thread = clients[0].beta.threads.create(
        messages=[{"role": "user", "content": "count to 300"}]
    )
    run = clients[0].beta.threads.runs.create(
        thread_id=thread.id, assistant_id=assistant.id
    )
    deadline = time.monotonic() + 20
    while (
        clients[1].beta.threads.runs.retrieve(run.id, thread_id=thread.id).status
        in ("queued",)
        and time.monotonic() < deadline
    ):
        time.sleep(0.1)
    time.sleep(1.5)  # it is writing (300 words take 30 s)
    clients[1].beta.threads.runs.cancel(run.id, thread_id=thread.id)
    started = time.monotonic()
    while time.monotonic() - started < 10:
        run = clients[1].beta.threads.runs.retrieve(run.id, thread_id=thread.id)
        if run.status not in ("in_progress", "cancelling"):
            break
        time.sleep(0.2)
    assert run.status == "cancelled"
    (reply,) = [
        m
        for m in clients[1].beta.threads.messages.list(thread_id=thread.id).data
        if m.role == "assistant"
    ]
    assert len(reply.content[0].text.value.split()) < 200  # stopped midway
    for client in clients:
        client.close()


def test_a_process_that_stalls_past_its_lease_goes_quiet_and_its_people_return(
    make_cluster, tabs
):
    """A long pause (GC, a suspended VM) looks like a death: the room is taken
    over.  When the process wakes it must not write a second ending to the turn,
    nor run a second worker for the room; its people come back."""
    cluster = make_cluster(2, DEMO_DELAY_MS="100")
    ann = tabs(cluster.url(0), "Ann", "stall")
    bob = tabs(cluster.url(1), "Bob", "stall")
    threading.Thread(
        target=_stream_until_cut,
        args=(ann, cluster.url(0), "count to 300"),
        daemon=True,
    ).start()
    bob.wait("ai-delta", 5, 30)
    os.kill(cluster.pid(0), signal.SIGSTOP)
    try:
        assert bob.say("anyone?", "bob-stall")["queued"] is True
        bob.wait_until(
            lambda me: [
                d for d in me.payloads("ai-end") if d["status"] == "interrupted"
            ],
            30,
            "the interrupted turn's ai-end",
        )
        (leave,) = bob.wait("leave")
        assert leave["name"] == "Ann"
    finally:
        os.kill(cluster.pid(0), signal.SIGCONT)
    (back,) = bob.wait("join", 1, 20)  # Ann's process woke: she is in the room again
    assert back["name"] == "Ann"
    bob.wait_until(
        lambda me: (
            any(d["replying_to"] == ["Bob"] for d in me.payloads("ai-start"))
            and len(me.payloads("ai-end")) >= 2
        ),
        60,
        "the turn for Bob",
    )
    time.sleep(3)  # anything the woken process would still say arrives by now
    with bob.arrived:
        events = list(bob.events)
    first_end = next(n for n, (e, _) in enumerate(events) if e == "ai-end")
    turn_one = events[first_end][1]["turn"]
    # Turn 1 ended once, as interrupted, and nothing of it came after.
    assert [d for e, d in events if e == "ai-end" and d["turn"] == turn_one] == [
        {"turn": turn_one, "status": "interrupted"}
    ]
    starts = [d for e, d in events if e == "ai-start"]
    ends = [d for e, d in events if e == "ai-end"]
    assert len(starts) == len(ends) == 2, (starts, ends)  # one worker: no extra turn
    assert ends[1]["status"] == "completed"
    turn_one_replies = {d["id"] for e, d in events[:first_end] if e == "ai-delta"}
    after = [d for e, d in events[first_end:] if e == "ai-delta"]
    assert not [d for d in after if d["id"] in turn_one_replies]


def interrupted_ends(person: LivePerson) -> list[dict]:
    """Return the ``ai-end`` events of interrupted turns ``person`` received."""
    return [d for d in person.payloads("ai-end") if d["status"] == "interrupted"]


def test_two_rooms_streaming_replies_to_the_same_message_id_never_mix(
    make_cluster, tabs
):
    """Message ids are the client's choice: a reply travels on a channel of its
    own request, never one named after the id."""
    cluster = make_cluster(2, DEMO_DELAY_MS="20")
    ann = tabs(cluster.url(0), "Ann", "alpha")
    mel = tabs(cluster.url(1), "Mel", "beta")
    got: dict[str, list[str]] = {}

    def post(person: LivePerson, url: str, name: str, content: str) -> None:
        headers = {
            "Accept": "text/event-stream",
            "X-Socket-Id": person.client.get_sid(),
        }
        with requests.post(
            url + "/stream",
            json={"content": content, "id": "m-1"},
            headers=headers,
            stream=True,
            timeout=60,
        ) as response:
            got[name] = [
                json.loads(line[6:])["text"]
                for line in response.iter_lines(decode_unicode=True)
                if line.startswith("data: ") and '"text"' in line
            ]

    posts = [
        threading.Thread(target=post, args=(ann, cluster.url(0), "Ann", "apples")),
        threading.Thread(target=post, args=(mel, cluster.url(1), "Mel", "pears")),
    ]
    for thread in posts:
        thread.start()
    for thread in posts:
        thread.join(60)
    assert "apples" in "".join(got["Ann"]) and "pears" not in "".join(got["Ann"])
    assert "pears" in "".join(got["Mel"]) and "apples" not in "".join(got["Mel"])


def test_a_resend_reaching_two_processes_at_once_is_kept_once(make_cluster, tabs):
    cluster = make_cluster(2, DEMO_DELAY_MS="5")
    tab0 = tabs(cluster.url(0), "Ann", "resend")
    tab1 = LivePerson(cluster.url(1))
    try:
        assert tab1.register("Ann", "resend", user_id="u-Ann")["ok"]
        for n in range(5):
            acks: list[dict] = []

            def send(tab: LivePerson, n: int = n, acks: list = acks) -> None:
                acks.append(tab.say(f"once {n}", f"same-{n}"))

            sends = [threading.Thread(target=send, args=(t,)) for t in (tab0, tab1)]
            for send in sends:
                send.start()
            for send in sends:
                send.join(20)
            assert sorted(bool(a.get("duplicate")) for a in acks) == [False, True]
        late = tabs(cluster.url(0), "Late", "resend")
        ids = [m["id"] for m in history(late) if m["role"] == "user"]
        assert ids == [f"same-{n}" for n in range(5)]
    finally:
        tab1.close()


def test_an_empty_room_keeps_its_conversation_for_the_whole_ttl_across_processes(
    make_cluster, tabs
):
    """An expiry timer on one process must see a join on another."""
    cluster = make_cluster(2, DEMO_DELAY_MS="5", EMPTY_ROOM_TTL_S="6")
    ann = tabs(cluster.url(0), "Ann", "ttl")
    assert ann.say("keep this", "keep-ttl")["ok"]
    ended(ann, 1)
    ann.close()  # process 0's timer fires 6 s from now
    time.sleep(1)
    bob = tabs(cluster.url(1), "Bob", "ttl")
    assert any(m["id"] == "keep-ttl" for m in history(bob))
    time.sleep(1)
    bob.close()  # away while process 0's timer fires; his own fires 6 s on
    time.sleep(4)
    again = tabs(cluster.url(1), "Bob", "ttl")
    assert any(m["id"] == "keep-ttl" for m in history(again))

"""Malformed Socket.IO frames, sent raw over a real WebSocket to ``python app.py``.

The test client cannot send an empty event array, broken JSON or a frame nested a
thousand deep, so an attacker's frames are written by hand here.  Each one is
answered (an error ack when it carries an ack id, an ``error`` event otherwise),
the same connection can register afterwards, and someone in another room keeps
being served.
"""

from __future__ import annotations

import json
import queue
import re

import pytest
import requests
import socketio
import websocket

from tests.live_server import LiveServer

DEEP = 1_200  # past Python's recursion limit: RecursionError before the fix


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Serve the app once for this module; each test uses its own connections."""
    with LiveServer(tmp_path_factory.mktemp("frames"), DEMO_DELAY_MS="5") as live:
        yield live


@pytest.fixture
def attacker(server):
    """Open a raw connection to the server; closed after the test."""
    raw = RawSocket(server.url)
    yield raw
    raw.close()


class RawSocket:
    """One Socket.IO connection spoken frame by frame, as an attacker would."""

    def __init__(self, url: str) -> None:
        address = url.replace("http://", "ws://") + "/socket.io/?EIO=4"
        self.ws = websocket.create_connection(address + "&transport=websocket")
        self.ws.settimeout(10)
        assert self.ws.recv().startswith("0{")  # Engine.IO open
        self.ws.send("40")
        assert self.next_frame().startswith("40{")  # Socket.IO connected to "/"

    def send(self, frame: str | bytes) -> None:
        """Send one raw frame (bytes go as a binary WebSocket message)."""
        if isinstance(frame, bytes):
            self.ws.send_binary(frame)
        else:
            self.ws.send(frame)

    def next_frame(self) -> str:
        """Return the next frame from the server, answering its pings."""
        while True:
            frame = self.ws.recv()
            if frame != "2":
                return frame
            self.ws.send("3")

    def next_answer(self) -> tuple[str, int | None, object]:
        """Return the next ack or ``error`` event: ("ack", id, data) or
        ("error", None, data); other events (welcome, presence, …) are skipped."""
        while True:
            kind, ack_id, data = parse(self.next_frame())
            if kind == "3":
                return "ack", ack_id, data[0]
            if kind == "2" and data[0] == "error":
                return "error", None, data[1]

    def register(self, name: str, ack_id: int = 99) -> dict:
        """Register on this connection and return the ack."""
        payload = json.dumps(["register", {"user_id": f"raw-{name}", "name": name}])
        self.send(f"42{ack_id}{payload}")
        while True:
            kind, got_id, data = self.next_answer()
            if kind == "ack" and got_id == ack_id:
                return data

    def close(self) -> None:
        """Close the WebSocket."""
        self.ws.close()


def parse(frame: str) -> tuple[str, int | None, object]:
    """Split an Engine.IO message ``4<type><ack id><json>`` into its parts."""
    match = re.fullmatch(r"4(\d)(\d*)(.*)", frame, re.DOTALL)
    assert match, frame
    kind, ack_id, body = match.groups()
    return kind, int(ack_id) if ack_id else None, json.loads(body) if body else None


NOT_AN_EVENT = "An event must be a JSON array that starts with the event name."
TOO_DEEP = "That frame nests deeper than 32 levels."
NOT_A_PACKET = "That frame is not a valid Socket.IO packet."
BAD_TYPE = "The server does not accept that kind of Socket.IO packet."
BAD_ACK = "An acknowledgement needs an id and a JSON array."

ACKED = [
    ("421[5,{}]", "An event name must be a string."),
    ("421[]", NOT_AN_EVENT),
    ('421{"name":"register"}', NOT_AN_EVENT),
    ("421" + "[" * DEEP + "]" * DEEP, TOO_DEEP),
    ('421["message",' + '{"a":' * DEEP + "1" + "}" * DEEP + "]", TOO_DEEP),
    ('421["message",{"content":', NOT_A_PACKET),
    ('421["connect",{}]', "'connect' is reserved and cannot be sent as an event."),
]
UNACKED = [
    ("42[5,{}]", "An event name must be a string."),
    ("42[]", NOT_AN_EVENT),
    ("42", NOT_AN_EVENT),
    ("42" + "[" * DEEP + "]" * DEEP, TOO_DEEP),
    ("42[" + "9" * 200 + "]", NOT_A_PACKET),  # python-engineio's integer limit
    # Engine.IO itself decodes a message that does not start with a digit as JSON.
    ("4" + "[" * DEEP + "]" * DEEP, NOT_A_PACKET),
    ("4[5,{}]", NOT_A_PACKET),
    ("4x", NOT_A_PACKET),
    ("49", BAD_TYPE),
    ('44{"message":"no"}', BAD_TYPE),
    ("43[]", BAD_ACK),
    ('431{"not":"a list"}', BAD_ACK),  # no ACK back: id 1 is the client's own
    (b"\x00\x01", "Send Socket.IO packets as text; binary data is not accepted here."),
]


@pytest.mark.parametrize(("frame", "error"), ACKED, ids=lambda v: repr(v)[:24])
def test_a_malformed_frame_with_an_ack_id_gets_an_error_ack(attacker, frame, error):
    attacker.send(frame)
    kind, ack_id, data = attacker.next_answer()
    assert (kind, ack_id, data["ok"]) == ("ack", 1, False)
    assert data["error"] == error
    assert attacker.register("Mallory")["ok"] is True


@pytest.mark.parametrize(("frame", "error"), UNACKED, ids=lambda v: repr(v)[:24])
def test_a_malformed_frame_without_an_ack_id_gets_an_error_event(
    attacker, frame, error
):
    attacker.send(frame)
    assert attacker.next_answer() == ("error", None, {"error": error})
    assert attacker.register("Mallory")["ok"] is True


def test_binary_attachments_are_refused_frame_by_frame(attacker):
    attacker.send('451-["message",{"_placeholder":true,"num":0}]')
    attacker.send(b"\x00\x01")
    refusals = [attacker.next_answer(), attacker.next_answer()]
    assert [kind for kind, _, _ in refusals] == ["error", "error"]
    assert all("binary data is not accepted" in data["error"] for *_, data in refusals)
    assert attacker.register("Mallory")["ok"] is True


def test_an_unknown_event_still_gets_both_an_error_event_and_an_error_ack(attacker):
    attacker.send('427["no-such-event",{}]')
    first, second = attacker.next_answer(), attacker.next_answer()
    assert first == ("error", None, {"error": "Unknown event 'no-such-event'."})
    assert second == ("ack", 7, {"ok": False, "error": first[2]["error"]})


def test_a_flood_of_junk_is_all_answered_while_another_room_is_served(server, attacker):
    bystander, events = socketio.Client(), queue.Queue()
    bystander.on("message-list", events.put)
    bystander.connect(server.url, transports=["websocket"])
    hello = {"user_id": "by-1", "name": "Bystander", "room": "elsewhere"}
    assert bystander.call("register", hello, timeout=10)["ok"]
    junk = [frame for frame, _ in UNACKED] * 5
    for frame in junk:
        attacker.send(frame)
    assert bystander.call("message", {"content": "still there?"}, timeout=10)["ok"]
    answers = [attacker.next_answer() for _ in junk]
    assert {kind for kind, _, _ in answers} == {"error"}
    assert attacker.register("Mallory")["ok"] is True
    reply = next(
        batch[-1]
        for batch in iter(lambda: events.get(timeout=20), None)
        if batch and batch[-1]["role"] == "assistant"
    )
    assert "Bystander" in reply["content"]
    bystander.disconnect()
    assert "Traceback" not in server.log()


def test_a_deep_message_over_long_polling_is_answered_too(server):
    """Polling POSTs are decoded the same way, and answered the same way."""
    http = requests.Session()
    base = server.url + "/socket.io/?EIO=4&transport=polling"
    url = f"{base}&sid={json.loads(http.get(base).text[1:])['sid']}"
    assert http.post(url, data="40").text == "OK"
    assert http.get(url).text.startswith("40{")
    response = http.post(url, data="4" + "[" * DEEP + "]" * DEEP)
    assert (response.status_code, response.text) == (200, "OK")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert parse(http.get(url).text) == ("2", None, ["error", {"error": NOT_A_PACKET}])
    http.close()


def test_a_numeric_event_name_from_the_test_client_is_refused_too(people):
    mallory = people("Mallory")
    refusal = {"ok": False, "error": "An event name must be a string."}
    assert mallory.emit(5, {}) == refusal
    assert mallory.say("hello anyway")["ok"] is True
    mallory.wait("ai-end")  # let the turn finish before the engine closes

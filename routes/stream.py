"""``POST /stream``: send a message and read the assistant's reply as it is written.

The message goes through the room's turn queue like any other, so it also reaches
every member over Socket.IO.  ``Accept: text/event-stream`` gets SSE frames
(``delta``, ``tool``, ``error``, ``done``); anything else (the original client sends
``Accept: application/json``) gets the reply as plain text chunks.
"""

from __future__ import annotations

import queue

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import jsonify
from flask import request

from rooms.errors import Refusal
from rooms.inbound import parse_message
from rooms.inbound import parse_register
from rooms.rooms import get_rooms
from rooms.state import END
from rooms.state import Member
from rooms.state import StreamSink
from web.sse import HEADERS as SSE_HEADERS
from web.sse import frame as _frame

bp = Blueprint("stream", __name__)

KEEPALIVE_S = 15


@bp.post("/stream")
def stream():
    """Queue the posted message and stream the reply to this request."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return jsonify(error="Send the message as a JSON object."), 400
    fields, error = parse_message(data, current_app.config["MAX_MESSAGE_CHARS"])
    if fields is None:
        return jsonify(error=error), 400
    member, error = _sender(data)
    if member is None:
        return jsonify(error=error), 400
    sink = StreamSink()
    rooms = get_rooms(current_app)
    legacy = bool(member.sid) and not request.headers.get("X-Socket-Id")
    ack = rooms.submit(member, fields, sink=sink, legacy=legacy)
    if ack.get("duplicate"):
        return jsonify(error="This message was already sent."), 400
    # An HTTP-only client learns who it is here, and can later stop a reply with it.
    identity = {
        "X-Threadroom-User-Id": member.user_id,
        "X-Threadroom-Token": rooms.identities.token_for(member.user_id),
    }
    if request.accept_mimetypes.best == "text/event-stream":
        headers = {**SSE_HEADERS, **identity}
        return Response(_sse(sink), mimetype="text/event-stream", headers=headers)
    response = current_app.make_response(_plain_text(sink))
    response.headers.update(identity)
    return response


@bp.post("/stream/stop")
def stop():
    """Stop the reply being written in the sender's room (the Stop button's twin
    for clients that only speak HTTP).  Only a person of that room may stop: a
    registered socket, or the ``user_id`` + ``token`` of someone who posted there;
    the name the room reads is the one the room knows them by."""
    data = request.get_json(silent=True)
    member, error = _sender(data if isinstance(data, dict) else {}, registered=True)
    if member is None:
        return jsonify(error=error), 403
    rooms = get_rooms(current_app)
    room = rooms.existing_room(member.room)
    person = room.person(member.user_id) if room is not None else None
    if person is None:  # a stop never creates a room, nor lets a stranger in
        return jsonify(error="Only people in this room can stop its reply."), 403
    ack = rooms.stop(person)
    return (jsonify(ack), 200) if ack["ok"] else (jsonify(error=ack["error"]), 409)


@bp.errorhandler(Refusal)
def refused(exc: Refusal):
    """Answer a refusal: 429 with ``Retry-After`` for a limit, else 400."""
    response = jsonify(error=exc.message)
    if exc.retry_after is not None:
        response.headers["Retry-After"] = str(exc.retry_after)
    return response, exc.status


def _sender(data: dict, *, registered: bool = False) -> tuple[Member | None, str]:
    """Find who is sending: the registered socket named by ``X-Socket-Id``, or, for
    clients without one, the ``user_id``/``name`` in the body (checked like
    ``register``: an id handed out before, sent without its token, is someone
    new, and counts as a registration from this address).  The room's thread is
    made by the turn worker, not here."""
    rooms = get_rooms(current_app)
    sid = request.headers.get("X-Socket-Id", "")
    if sid:
        member = rooms.member(sid)
        if member is None:
            return None, "That socket has not registered."
        return member, ""
    fields, error = parse_register(data)
    if fields is None:
        return None, error or ""
    identities = rooms.identities
    if registered:  # checked, not created: a stop needs no room of its own
        if not identities.token_valid(fields["user_id"], fields["token"]):
            return None, "Only people who registered in the room can do that."
        return Member("", fields["user_id"], fields["name"], fields["room"]), ""
    address = request.remote_addr or ""
    legacy = identities.legacy_sender(
        rooms.existing_room(fields["room"]), fields, address
    )
    if legacy is not None:  # the original client's own tab (see legacy_sender)
        return legacy, ""
    if not identities.token_valid(fields["user_id"], fields["token"]):
        rooms.limits.registration(address)  # a new identity, or a first post
    room = rooms.open_room(fields["room"], address)
    with room.lock:  # the same rules as register: a new room is theirs, a locked
        # room needs its passcode, a removed person stays out
        member = identities.identify(room, fields)
        rooms.owner.settings(room, claimant=member.user_id)
        rooms.owner.admit(room, member, fields["passcode"])
        return member, ""


def _items(sink: StreamSink):
    """Yield the sink's items until its end; ``None`` while nothing comes."""
    while True:
        try:
            item = sink.get(timeout=KEEPALIVE_S)
        except queue.Empty:
            yield None
            continue
        if item is END:
            return
        yield item


def _sse(sink: StreamSink):
    """Relay the reply as SSE; a comment first, so the client sees it accepted."""
    yield ": accepted\n\n"
    for item in _items(sink):
        yield ": keep-alive\n\n" if item is None else _frame(*item)
    yield _frame("done", {})


def _plain_text(sink: StreamSink) -> Response | tuple[Response, int]:
    """Relay the reply as text; a failure before any text is a JSON error."""
    items = _items(sink)
    for item in items:
        if item is None or item[0] == "tool":
            continue
        kind, data = item
        if kind == "error":
            return jsonify(error=data["error"]), 502
        return Response(_texts(data["text"], items), mimetype="text/plain")
    return Response("", mimetype="text/plain")


def _texts(first: str, items):
    """Yield the first text, then the rest; a later error becomes a last line."""
    yield first
    for item in items:
        if item is None or item[0] == "tool":
            continue
        kind, data = item
        yield data["text"] if kind == "delta" else f"\n\n[error] {data['error']}"

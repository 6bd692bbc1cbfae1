"""Answer every malformed Socket.IO frame instead of dropping it.

Left alone, python-socketio raises while decoding or dispatching a frame whose JSON
is broken or nested a thousand deep (``RecursionError``), whose event array is
empty, or whose event name is not a string; the exception is logged and the
client hears nothing.  Worse, Engine.IO decodes any message that does not start
with a digit as JSON, so a deep one there escapes its handler and the server writes
an HTTP 500 with a traceback into the WebSocket.

The hook is the packet class, passed as python-socketio's ``serializer`` option
(documented: "a subclass of the Packet class with custom implementations of the
encode() and decode() methods"), which Flask-SocketIO forwards.  Flask-SocketIO
builds ``socketio.Server`` itself, so subclassing the server would mean patching
private methods; the packet class is the one supported place that sees every
incoming frame first.  ``FramePacket.decode`` turns a frame it cannot accept into
an event whose name is ``REFUSED``, an object no JSON can spell, and ``on_refused``
(registered for it) answers: an error ack when the frame carried an ack id, an
``error`` event otherwise.  The connection stays open.

Depth is bounded by the JSON module both libraries decode with (``FrameJSON``,
the ``json`` option).  That option is process-wide by design (python-engineio keeps
it on its ``Packet`` class); it is the only way to reach Engine.IO's own decoding,
and it keeps python-engineio's limit on huge integers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from engineio import json as engineio_json
from flask_socketio import SocketIO
from socketio import packet

from assistant.engine.jsonbounds import JSONTooDeep
from assistant.engine.jsonbounds import check_depth
from rooms.protocol import Ack
from rooms.protocol import Emitter
from sockets.session import current_sid

log = logging.getLogger(__name__)

MAX_FRAME_DEPTH = 32  # a room event nests 3 deep; 32 leaves room for extensions
NOT_A_PACKET = "That frame is not a valid Socket.IO packet."
TOO_DEEP = f"That frame nests deeper than {MAX_FRAME_DEPTH} levels."
NOT_TEXT = "Send Socket.IO packets as text; binary data is not accepted here."
BAD_TYPE = "The server does not accept that kind of Socket.IO packet."
NOT_AN_EVENT = "An event must be a JSON array that starts with the event name."
BAD_NAME = "An event name must be a string."
BAD_ACK = "An acknowledgement needs an id and a JSON array."
RESERVED = frozenset({"connect", "disconnect"})  # packet types, never event names


class _Refused:
    """The event name of a refused frame: hashable, and no JSON can produce it."""

    def __repr__(self) -> str:
        return "<refused frame>"

    __str__ = __repr__  # python-socketio logs event names with %s


REFUSED = _Refused()


class FrameJSON:
    """The JSON module python-socketio and python-engineio decode frames with."""

    dumps = staticmethod(engineio_json.dumps)

    @staticmethod
    def loads(s, **kwargs):
        """Decode a frame's JSON, refusing nesting deeper than MAX_FRAME_DEPTH."""
        return engineio_json.loads(check_depth(s, MAX_FRAME_DEPTH), **kwargs)


class FramePacket(packet.Packet):
    """A Socket.IO packet whose decoding never fails: bad frames become refusals."""

    json = FrameJSON
    packet_type: int  # set by Packet.__init__ (python-socketio ships no type hints)

    def decode(self, encoded_packet):
        """Decode a frame; one the server cannot accept becomes a ``REFUSED`` event."""
        # Engine.IO hands over bytes, or JSON it decoded itself (a message that
        # does not start with a digit); neither is a Socket.IO text packet.
        binary = isinstance(encoded_packet, (bytes, bytearray))
        error = NOT_TEXT if binary else NOT_A_PACKET
        if isinstance(encoded_packet, str):
            try:
                attachments = super().decode(encoded_packet)
            except JSONTooDeep:
                error = TOO_DEEP
            except ValueError:  # bad JSON, a bad type digit, an oversized id
                error = NOT_A_PACKET
            else:
                error = self._shape_error()
                if error is None:
                    return attachments
        self.refuse(error)
        return 0

    def _shape_error(self) -> str | None:
        """Return why a decoded packet cannot be dispatched, or None if it can."""
        kind, data = self.packet_type, self.data
        if kind in (packet.CONNECT, packet.DISCONNECT):
            return None
        if kind == packet.ACK:
            return None if self.id is not None and isinstance(data, list) else BAD_ACK
        if kind in (packet.BINARY_EVENT, packet.BINARY_ACK):
            return NOT_TEXT  # no event takes bytes; placeholders are one more parser
        if kind != packet.EVENT:
            return BAD_TYPE  # CONNECT_ERROR, or a type digit beyond the protocol's
        if not isinstance(data, list) or not data:
            return NOT_AN_EVENT
        if not isinstance(data[0], str):
            return BAD_NAME
        if data[0] in RESERVED:
            return f"{data[0]!r} is reserved and cannot be sent as an event."
        return None

    def refuse(self, error: str) -> None:
        """Become an event that makes ``on_refused`` answer ``error``."""
        # Only an event's id asks for an ack; answering a bad ACK packet with an
        # ACK of its id would resolve one of the client's own pending calls.
        if self.packet_type not in (packet.EVENT, packet.BINARY_EVENT):
            self.id = None
        self.packet_type = packet.EVENT
        self.data = [REFUSED, error, self.id is not None]


def refused_handler(emitter: Emitter) -> Callable[[str, bool], Ack]:
    """Return the handler of ``REFUSED``, the event no client sends: a frame
    ``FramePacket`` refused.  The sender gets the error as its ack, or as an
    ``error`` event when it asked for no ack."""

    def on_refused(error: str, has_ack: bool) -> Ack:
        log.debug("refused a frame from %s: %s", current_sid(), error)
        if not has_ack:
            emitter.error(current_sid(), error)
        return {"ok": False, "error": error}

    return on_refused


def frame_options() -> dict:
    """Return the ``init_app`` options that route every frame through here."""
    return {"serializer": FramePacket, "json": FrameJSON}


def init_frames(socketio: SocketIO, emitter: Emitter) -> None:
    """Answer refused frames on the app's server (call after ``init_app``)."""
    socketio.on_event(REFUSED, refused_handler(emitter), namespace="/")

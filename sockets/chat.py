"""The chat namespace: the seed client's Socket.IO events, plus ``stop``.

Handlers validate at the edge and return the ack; ``Rooms`` does the work, and
everything sent goes through the protocol's ``Emitter``.
"""

from __future__ import annotations

import logging

from flask import request
from flask_socketio import Namespace
from flask_socketio import join_room
from flask_socketio import leave_room
from socketio.exceptions import ConnectionRefusedError as ConnectionRefused

from assistant.errors import AssistantError
from rooms.errors import Refusal
from rooms.inbound import parse_message
from rooms.inbound import parse_register
from rooms.protocol import Ack
from rooms.rooms import Rooms
from sockets.session import current_sid

log = logging.getLogger(__name__)

NOT_REGISTERED = "Please register with a nickname before sending messages."


class ChatNamespace(Namespace):
    """Handle the events of people in rooms on the default namespace."""

    def __init__(self, rooms: Rooms, max_message_chars: int) -> None:
        super().__init__("/")
        self.rooms = rooms
        self.emitter = rooms.emitter
        self.max_message_chars = max_message_chars
        self.connections = 0

    def trigger_event(self, event, *args):
        """Dispatch an event (``room-settings`` to ``on_room_settings``); an
        unknown one gets an ``error`` event back."""
        name = event.replace("-", "_") if isinstance(event, str) else ""
        if not name or "_" in event or not hasattr(self, "on_" + name):
            error = f"Unknown event {str(event)[:40]!r}."
            self.emitter.error(args[0], error)  # args[0]: the sender's sid
            return {"ok": False, "error": error}
        return super().trigger_event(name, *args)

    def on_connect(self, auth=None):
        """Sent when a browser connects; nothing happens until it registers.
        Past the process's connection limit the connection is refused."""
        limit = self.rooms.limits.settings.max_connections
        if self.connections >= limit:
            self.rooms.limits.refusals += 1
            raise ConnectionRefused(
                "This server is full right now; try again in a minute."
            )
        self.connections += 1

    def on_disconnect(self, reason=None):
        """Sent when a connection ends: the others hear ``leave`` if that was the
        person's last tab."""
        if self._connected(current_sid()):
            return  # a client-sent event named "disconnect", not a real one
        self.connections -= 1
        self._leave(current_sid())

    def on_register(self, data=None, *_extra) -> Ack:
        """Sent by a browser to take a nickname in a room.  It gets ``welcome`` and
        the whole history and ``presence``; the others get ``join``.

        Only the joiner gets the full roster: broadcasting it on every join would
        cost O(members²) per room as a crowd arrives; the others apply the delta."""
        fields, error = parse_register(data)
        if fields is None:
            return {"ok": False, "error": error or ""}
        previous = self.rooms.member(current_sid())
        if previous is not None and previous.room != fields["room"]:
            self._leave(current_sid())
            leave_room(previous.room)
        try:
            member, room, change = self.rooms.register(
                current_sid(), fields, request.remote_addr or ""
            )
        except Refusal as exc:
            return exc.ack()
        except AssistantError as exc:
            return {"ok": False, "error": exc.message}
        if not self._connected(current_sid()):  # the tab closed meanwhile
            self.rooms.leave(current_sid())
            return {"ok": False, "error": "The connection closed."}
        # Join, then welcome, then read the history: whatever is broadcast while it
        # is read reaches this client too (after welcome), and the page keeps it.
        sid = current_sid()
        join_room(room.name)
        self.emitter.welcome(sid, self.rooms.welcome(room, member))
        try:
            self.emitter.message_list(sid, self.rooms.record.history(room))
        except AssistantError as exc:
            return {"ok": False, "error": exc.message}
        if change == "joined":
            self.emitter.join(room.name, member.public(), skip_sid=sid)
        elif change == "renamed":  # rare: everyone gets the corrected roster
            self.emitter.presence(room.name, room.roster(), skip_sid=sid)
        self.emitter.presence(sid, room.roster())
        return {
            "ok": True,
            "user_id": member.user_id,
            "name": member.name,
            "token": self.rooms.identities.token_for(member.user_id),
        }

    def on_message(self, data=None, *_extra) -> Ack:
        """Sent by a browser with a new message: it is broadcast, queued for the
        assistant's next turn, and acknowledged with its id."""
        member = self.rooms.member(current_sid())
        if member is None:
            return {"ok": False, "error": NOT_REGISTERED}
        fields, error = parse_message(data, self.max_message_chars)
        if fields is None:
            return {"ok": False, "error": error or ""}
        try:
            return self.rooms.submit(member, fields)
        except Refusal as exc:
            return exc.ack()

    def _leave(self, sid: str) -> None:
        """Forget ``sid``; tell the room if that was the person's last tab."""
        member, room, gone = self.rooms.leave(sid)
        if member is None:
            return
        if gone and room is not None:
            self.emitter.leave(room.name, member.public())

    def _connected(self, sid: str) -> bool:
        """Tell whether ``sid`` is still connected (False while disconnecting)."""
        return self.socketio.server.manager.is_connected(sid, "/")

    def on_stop(self, data=None, *_extra) -> Ack:
        """Sent by someone in the room to stop the reply being written (who may
        is the room's stop setting)."""
        member = self.rooms.member(current_sid())
        if member is None:
            return {"ok": False, "error": NOT_REGISTERED}
        return self.rooms.stop(member)

    def on_room_settings(self, data=None, *_extra) -> Ack:
        """Sent by the room's owner (``room-settings``) to change its settings;
        everyone gets ``room`` and a line saying what changed."""
        member = self.rooms.member(current_sid())
        if member is None:
            return {"ok": False, "error": NOT_REGISTERED}
        try:
            return self.rooms.change_settings(member, data)
        except Refusal as exc:
            return exc.ack()

    def on_remove(self, data=None, *_extra) -> Ack:
        """Sent by the room's owner to remove a person (``{user_id}``): their tabs
        get ``removed`` and leave the room, the others hear ``leave``."""
        member = self.rooms.member(current_sid())
        if member is None:
            return {"ok": False, "error": NOT_REGISTERED}
        user_id = data.get("user_id") if isinstance(data, dict) else None
        try:
            sids = self.rooms.remove(member, user_id)
        except Refusal as exc:
            return exc.ack()
        for sid in sids:
            leave_room(member.room, sid=sid)
        return {"ok": True}

    def on_typing(self, data=None, *_extra) -> Ack:
        """Sent while someone types (``{typing: true}``) and when they stop; the
        others get ``typing``."""
        member = self.rooms.member(current_sid())
        if member is None:
            return {"ok": False, "error": NOT_REGISTERED}
        return self.rooms.typing(member, data)

    def on_regenerate(self, data=None, *_extra) -> Ack:
        """Sent by someone in the room to have the latest reply written again."""
        member = self.rooms.member(current_sid())
        if member is None:
            return {"ok": False, "error": NOT_REGISTERED}
        try:
            return self.rooms.regenerate(member)
        except AssistantError as exc:
            return {"ok": False, "error": exc.message}

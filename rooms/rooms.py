"""The rooms of one process: membership, the turn queue, history, Stop, expiry.

Socket.IO handlers and the ``/stream`` route call into ``Rooms``; it never touches a
request, and it speaks to clients only through the protocol's ``Emitter``.  Who
people are is ``Identities``' job (identity.py), what owners may do
``RoomOwner``'s (owner.py), and running the queued turns ``TurnWorker``'s
(worker.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any
from typing import Protocol

from assistant.errors import AssistantError
from assistant.service import AssistantService
from rooms.directory import ThreadDirectory
from rooms.errors import Refusal
from rooms.export import transcript_markdown
from rooms.identity import Identities
from rooms.limits import Limits
from rooms.messages import user_message
from rooms.owner import RoomOwner
from rooms.protocol import Ack
from rooms.protocol import ChatMessage
from rooms.protocol import Emitter
from rooms.protocol import MessageFields
from rooms.protocol import RegisterFields
from rooms.protocol import TypingInfo
from rooms.protocol import Welcome
from rooms.record import RoomRecord
from rooms.state import Member
from rooms.state import MemoryState
from rooms.state import Pending
from rooms.state import Room
from rooms.state import RoomState
from rooms.state import Sink
from rooms.state import StreamSink
from rooms.worker import TurnWorker

log = logging.getLogger(__name__)

EXTENSION = "threadroom.rooms"  # where an app keeps its Rooms (app.extensions)

NOT_ANSWERING = "The assistant is not answering right now."
STOP_REFUSED = (
    "In this room only its owner and the people being answered can stop a reply."
)
EXPORT_REFUSED = "Only people in this room can export its conversation."
REGENERATE_BUSY = "Wait until the assistant has answered the waiting messages."
TYPING_REPEAT_S = 3.0
# The longest a take-over waits for the dead process's run to be closed (the
# engine's heartbeat lapse is 15 s).
TAKE_OVER_WAIT_S = 30.0


class Rooms:
    """Every room of this process and the operations people perform on them."""

    def __init__(
        self,
        get_assistant: Callable[[], AssistantService],
        directory: ThreadDirectory,
        *,
        secret: str,
        emitter: Emitter,
        spawn: Callable,
        sleep: Callable[[float], None],
        empty_room_ttl_s: int = 300,
        stream_mode: str = "stream",
        limits: Limits | None = None,
        state: RoomState | None = None,
        ban_s: int = 600,
        legacy_stream_senders: bool = False,
        peers: Peers | None = None,
    ) -> None:
        self._get_assistant = get_assistant
        self.directory = directory
        self.emitter = emitter
        self.spawn = spawn
        self.sleep = sleep
        self.empty_room_ttl_s = empty_room_ttl_s
        self.limits = limits or Limits()
        self.state: RoomState = state or MemoryState()
        self.identities = Identities(
            directory,
            secret,
            assistant_name=lambda: self.assistant.info.name,
            legacy_stream_senders=legacy_stream_senders,
        )
        self.owner = RoomOwner(
            directory,
            emitter,
            assistant_name=lambda: self.assistant.info.name,
            tell=lambda *line: self.record.tell(*line),  # the record comes next
            ban_s=ban_s,
        )
        self.record = RoomRecord(get_assistant, directory, emitter, self.owner)
        self.peers: Peers = peers or NoPeers()
        self.worker = TurnWorker(
            get_assistant,
            directory,
            emitter,
            self.owner,
            ensure_thread=self.ensure_thread,
            schedule_expiry=self._schedule_expiry,
            tell=self.record.tell,
            spawn=spawn,
            sleep=sleep,
            stream_mode=stream_mode,
        )

    @property
    def assistant(self) -> AssistantService:
        """Return the assistant service (built after the sockets are bound)."""
        return self._get_assistant()

    def room(self, name: str) -> Room:
        """Return the room called ``name``, creating it on first use."""
        return self.state.open(name)

    def open_room(self, name: str, address: str) -> Room:
        """Return the room called ``name``; opening one that is not open yet counts
        against the process's room limit and ``address``'s new-room rate."""
        room = self.state.get(name)
        if room is not None:
            return room
        if self.state.count() >= self.limits.settings.max_rooms:
            raise self.limits.refuse(
                "This server has too many rooms open right now; try again in a few"
                " minutes.",
                retry_after=60,
            )
        self.limits.new_room(address)
        return self.room(name)

    def idle(self) -> bool:
        """Tell whether no room has a turn running or waiting (a clean point to
        stop at)."""
        return not any(room.lease.held_here() for room in self.state.all())

    def existing_room(self, name: str) -> Room | None:
        """Return the room called ``name`` if it exists (without creating it)."""
        return self.state.get(name)

    def member(self, sid: str) -> Member | None:
        """Return the identity registered on connection ``sid``."""
        return self.state.member(sid)

    # -- joining and leaving -------------------------------------------------

    def register(
        self, sid: str, fields: RegisterFields, address: str = ""
    ) -> tuple[Member, Room, str | None]:
        """Bind ``sid`` to a nickname in a room; return it, the room, and what the
        others should hear: ``"joined"`` (a new person), ``"renamed"`` (a present
        person took another name) or None (another tab of someone present).

        Raises ``Refusal`` past a limit or for a reserved name."""
        self.limits.registration(address)
        return self._register(sid, fields, address)

    def _register(
        self, sid: str, fields: RegisterFields, address: str
    ) -> tuple[Member, Room, str | None]:
        """Do ``register``'s work (again, when the room expired meanwhile)."""
        room = self.open_room(fields["room"], address)
        with room.lock:  # no expiry can slip between the thread and the member
            if self.state.get(room.name) is not room:  # it expired just now
                return self._register(sid, fields, address)
            self.ensure_thread(room)
            member = self.identities.identify(room, fields, sid, address)
            self.owner.settings(room, claimant=member.user_id)  # a new room: theirs
            self.owner.admit(room, member, fields["passcode"])
            # Every tab of this person, including this one registering again; an
            # existing entry keeps its place, so the roster stays in arrival order.
            same = [m for m in room.members.values() if m.user_id == member.user_id]
            if not same:
                self._check_room_space(room)
            for tab in same:  # one person, one name, in every tab
                renamed_tab = dataclasses.replace(tab, name=member.name)
                room.members[tab.sid] = renamed_tab
                self.state.bind(renamed_tab)
            room.members[sid] = member
            room.joins.bump()  # a pending expiry of this room is now stale
        self.state.bind(member)
        if not same:
            return member, room, "joined"
        renamed = any(tab.name != member.name for tab in same)
        return member, room, "renamed" if renamed else None

    def _check_room_space(self, room: Room) -> None:
        """Refuse a new person when the room already holds its limit."""
        limit = self.limits.settings.max_room_members
        if len({m.user_id for m in room.members.values()}) >= limit:
            raise self.limits.refuse(
                f"This room is full ({limit} people); try again later.",
                retry_after=60,
            )

    def leave(self, sid: str) -> tuple[Member | None, Room | None, bool]:
        """Forget connection ``sid``; return who left, from where, and whether that
        was their last connection (so the others hear ``leave``)."""
        member = self.state.unbind(sid)
        if member is None:
            return None, None, False
        room = self.room(member.room)
        with room.lock:
            room.members.pop(sid, None)
            gone = all(m.user_id != member.user_id for m in room.members.values())
            empty = not room.members
            generation = room.joins.value()
        if empty:
            self._schedule_expiry(room, generation)
        return member, room, gone

    def ensure_thread(self, room: Room) -> str:
        """Give the room its thread: the saved one if it still exists, else a new
        one.  Simultaneous first registrations wait on the room lock: one thread."""
        with room.lock, self.peers.thread_guard(room.name):
            if room.thread_id is None:
                saved = self.directory.get(room.name)
                if saved and self.assistant.thread_exists(saved):
                    room.thread_id = saved
                else:
                    room.thread_id = self.assistant.create_thread(room.name)
                    self.directory.set(room.name, room.thread_id)
            return room.thread_id

    def welcome(self, room: Room, member: Member) -> Welcome:
        """Build the ``welcome`` payload for a member who just registered."""
        record = room.busy.read()  # the turn in progress, on any process
        busy = record.public() if record is not None else None
        assistant = {**self.assistant.info.public()}
        assistant["name"] = self.owner.assistant_name(room)
        return Welcome(
            user_id=member.user_id,
            name=member.name,
            room=room.name,
            assistant=assistant,
            members=room.roster(),
            busy=busy,
            settings=self.owner.info(room),
        )

    # -- messages and turns --------------------------------------------------

    def submit(
        self,
        member: Member,
        fields: MessageFields,
        *,
        sink: StreamSink | None = None,
        legacy: bool = False,
    ) -> Ack:
        """Accept a message from ``member``, tell the others, queue it for a turn.

        Returns the sender's ack.  A resent message id (a client retrying after a
        reconnect) is acknowledged again but not stored twice.  Raises ``Refusal``
        past a limit; a refused message is not remembered, so it can be resent.
        """
        room = self.room(member.room)
        message = user_message(fields, member.user_id, member.name)
        with room.lock:
            # Remembered first, in one step (two processes may get the same resend
            # at once); forgotten again if a limit refuses it, so it can be resent.
            if not room.seen_ids.add(message["id"]):
                return {"ok": True, "id": message["id"], "duplicate": True}
            try:
                self._check_queue(room, member)
                self.limits.message(member.user_id)
            except Refusal:
                room.seen_ids.discard(message["id"])
                raise
            if not member.sid:  # an HTTP sender: now a person of this room
                room.http_people[member.user_id] = member.name
            room.unsaved.add(message)
            reply_sink: Sink | None = None
            if sink is not None:  # fed from whichever process answers it
                reply_sink = self.peers.relay(sink)
            skip = member.sid if legacy and member.sid else None
            room.pending.append(Pending(message, sink=reply_sink, reply_skip_sid=skip))
            start_worker = room.lease.claim()
            queued = not start_worker  # a worker is busy: this waits for it
            waiting = room.pending.ids() if queued else []
        self.emitter.message(room.name, message, skip_sid=member.sid or None)
        if queued:
            self.emitter.queue(room.name, waiting)
        if start_worker:
            self.worker.start(room, fresh=True)
        return {"ok": True, "id": message["id"], "queued": queued}

    def _check_queue(self, room: Room, member: Member) -> None:
        """Refuse a message when its sender, or the room, has too many waiting.

        The per-person cap is the fair share: one person's flood waits in their
        own few places and never crowds the others out of the next turn."""
        settings = self.limits.settings
        mine = room.waiting_from(member.user_id)
        if mine >= settings.queued_per_person:
            raise self.limits.refuse(
                f"You have {mine} messages waiting for the assistant; wait for its"
                " reply before sending more.",
                retry_after=5,
            )
        if len(room.pending) >= settings.max_room_queue:
            raise self.limits.refuse(
                f"{len(room.pending)} messages are already waiting for the assistant"
                " in this room; try again when it has answered.",
                retry_after=5,
            )

    def stop(self, member: Member) -> Ack:
        """Cancel the reply being written in ``member``'s room."""
        room = self.room(member.room)
        turn = room.turn
        if turn is None:  # or another process runs it
            busy = room.busy.read()
            if busy is None:
                return {"ok": False, "error": NOT_ANSWERING}
            if not self._may_stop(room, busy.askers, member):
                return {"ok": False, "error": STOP_REFUSED}
            self.peers.stop_turn(room, member)  # the worker's process stops it
            return {"ok": True}
        if not self._may_stop(room, turn.askers, member):
            return {"ok": False, "error": STOP_REFUSED}
        if turn.stopped_by is None:
            turn.stopped_by = member
        if turn.run_id is None:
            return {"ok": True}  # the turn cancels itself as soon as its run exists
        try:
            cancelled = self.assistant.cancel(room.thread(), turn.run_id)
        except AssistantError as exc:
            cancelled, error = False, exc.message
        else:
            error = "The reply has already finished."
        if not cancelled:
            if turn.stopped_by is member:
                turn.stopped_by = None
            return {"ok": False, "error": error}
        return {"ok": True}

    def _may_stop(self, room: Room, askers: list[str], member: Member) -> bool:
        """Tell whether the room's stop setting lets ``member`` stop the turn that
        answers ``askers``."""
        settings = self.owner.settings(room)
        if settings.stop_policy == "anyone":
            return True
        return member.user_id == settings.owner or member.user_id in askers

    # -- what the owner and the members do besides talking -------------------

    def change_settings(self, member: Member, data: object) -> Ack:
        """Apply the owner's changes to the room's settings."""
        room = self.room(member.room)
        info = self.owner.change(room, member, data)
        self.peers.settings_changed(room)
        return {"ok": True, "settings": info}

    def remove(self, member: Member, user_id: object) -> list[str]:
        """Remove a person from ``member``'s room (the owner only); the others
        hear ``leave``.  Returns the connections taken out of the room."""
        room = self.room(member.room)
        target = self.owner.remove(room, member, user_id)
        with room.lock:
            sids = [s for s, m in room.members.items() if m.user_id == target.user_id]
            for sid in sids:
                room.members.pop(sid, None)
                self.state.unbind(sid)
            empty, generation = not room.members, room.joins.value()
        if sids:  # they themselves heard "removed", not their own "leave"
            self.emitter.leave(room.name, target.public(), skip_sid=sids)
        if empty:
            self._schedule_expiry(room, generation)
        return sids

    def typing(self, member: Member, data: object) -> Ack:
        """Tell the others that ``member`` is typing, or stopped.  "Typing" is
        repeated at most every ``TYPING_REPEAT_S`` per person; never stored."""
        typing = data.get("typing") if isinstance(data, dict) else None
        if not isinstance(typing, bool):
            return {"ok": False, "error": "typing expects {typing: true or false}."}
        room = self.room(member.room)
        now = time.monotonic()
        with room.lock:
            since = room.typing_since.get(member.user_id)
            if typing and since is not None and now - since < TYPING_REPEAT_S:
                return {"ok": True}
            if not typing and since is None:
                return {"ok": True}
            if typing:
                room.typing_since[member.user_id] = now
            else:
                room.typing_since.pop(member.user_id, None)
        info = TypingInfo(user_id=member.user_id, name=member.name, typing=typing)
        self.emitter.typing(room.name, info, skip_sid=member.sid or None)
        return {"ok": True}

    def transcript(self, room_name: str, user_id: str, token: str) -> str:
        """Return the room's conversation as Markdown, for a person in the room
        (proved by their token)."""
        room = self.state.get(room_name)
        known = self.identities.token_valid(user_id, token)
        if room is None or not known or room.person(user_id) is None:
            raise Refusal(EXPORT_REFUSED, status=403)
        now = datetime.datetime.now(datetime.UTC)
        return transcript_markdown(room.name, self.record.history(room), now)

    def regenerate(self, member: Member) -> Ack:
        """Ask for the latest reply again: a new turn over the same messages; the
        old reply stays, marked replaced."""
        room = self.room(member.room)
        reply = _latest_reply(self.record.history(room))
        with room.lock:
            busy = room.lease.held() or room.pending or room.redo
            if busy:
                return {"ok": False, "error": REGENERATE_BUSY}
            if not reply:
                return {"ok": False, "error": "There is no reply to write again yet."}
            room.redo.put(member, reply)
            start_worker = room.lease.claim()  # else the worker takes it next
        if start_worker:
            self.worker.start(room)
        return {"ok": True}

    def take_over(self, room: Room) -> None:
        """Run the turns of a room whose worker's process died (shared mode; the
        caller claimed ``room.lease``): end its interrupted turn on every screen,
        then answer what waits."""
        try:
            busy = room.busy.read()
            if busy is not None:
                self.ensure_thread(room)
                self.record.interrupted(room, busy)
                room.busy.end()
                if busy.run_id:
                    self._wait_run_closed(room, busy.run_id)
        except Exception:
            log.exception("could not end the interrupted turn of room %s", room.name)
        self.worker.work(room)

    def _wait_run_closed(self, room: Room, run_id: str) -> None:
        """Wait until the dead process's run no longer blocks the thread: the
        engine closes a run once its owner's heartbeat lapses (a remote
        Assistants server, once the run expires)."""
        deadline = time.monotonic() + TAKE_OVER_WAIT_S
        while time.monotonic() < deadline:
            try:
                if self.assistant.run_ended(room.thread(), run_id):
                    return
            except AssistantError:
                return  # the run is gone; a turn finds out for itself
            self.sleep(1.0)

    # -- expiry --------------------------------------------------------------

    def schedule_expiry(self, room: Room) -> None:
        """Delete the room's thread once it has been empty for the TTL."""
        self._schedule_expiry(room, room.joins.value())

    def _schedule_expiry(self, room: Room, generation: int) -> None:
        """Delete the room's thread once it has been empty for the TTL."""
        if self.empty_room_ttl_s >= 0:
            self.spawn(self._expire, room, generation)

    def _expire(self, room: Room, generation: int) -> None:
        """Delete the thread and forget the room, unless someone came back."""
        if self.empty_room_ttl_s:
            self.sleep(self.empty_room_ttl_s)
        # The thread guard: no process gives the room its thread meanwhile.
        with room.lock, self.peers.thread_guard(room.name):
            if room.members or room.joins.value() != generation:
                return  # someone joined
            if not room.lease.claim():
                return  # a turn runs: its worker reschedules this when done
            try:
                if room.pending or room.redo:
                    return
                if not self.peers.forgot(room):
                    return  # someone arrived on another process just now
                # This process may never have needed the thread: the directory
                # knows it.
                thread_id = room.thread_id or self.directory.get(room.name)
                room.thread_id = None
                self.directory.forget(room.name, thread_id)
                self.state.close(room)
            finally:
                room.lease.release()
        if thread_id:
            log.info("room %s was empty; deleting its thread", room.name)
            try:
                self.assistant.delete_thread(thread_id)
            except AssistantError:
                log.exception("could not delete the thread of room %s", room.name)


class Peers(Protocol):
    """The other processes serving the same rooms (shared mode), as ``Rooms``
    needs them: ``NoPeers`` in single mode, ``rooms.cluster.Cluster`` in shared."""

    def stop_turn(self, room: Room, member: Member) -> None:
        """Ask the process running ``room``'s turn to stop it for ``member``."""

    def settings_changed(self, room: Room) -> None:
        """Tell the others to read ``room``'s settings again."""

    def forgot(self, room: Room) -> bool:
        """An empty room expired: drop what is shared of it, unless someone
        arrived after all (then False)."""

    def thread_guard(self, name: str) -> AbstractContextManager:
        """Hold while giving room ``name`` its thread (one thread per room)."""

    def relay(self, sink: StreamSink) -> Sink:
        """Return where a turn writes the reply that a /stream request of this
        process reads from ``sink``."""


class NoPeers:
    """Single mode: this process is alone with its rooms."""

    def stop_turn(self, room: Room, member: Member) -> None:
        """Nothing to ask: a turn of this process is stopped in place."""

    def settings_changed(self, room: Room) -> None:
        """Nobody else caches the settings."""

    def forgot(self, room: Room) -> bool:
        """Nothing is shared (the room lock kept everyone out)."""
        return True

    def thread_guard(self, name: str) -> AbstractContextManager:
        """The room lock is enough in one process."""
        return contextlib.nullcontext()

    def relay(self, sink: StreamSink) -> Sink:
        """The queued item holds the sink itself."""
        return sink


def get_rooms(app: Any) -> Rooms:
    """Return the ``Rooms`` of a Flask app (``init_sockets`` puts them there)."""
    return app.extensions[EXTENSION]


def _latest_reply(history: list[ChatMessage]) -> list[ChatMessage]:
    """Return the assistant messages after the last person's message (the reply
    Regenerate writes again), leaving system lines and replaced replies out."""
    reply: list[ChatMessage] = []
    for message in reversed(history):
        if message["role"] == "user":
            break
        if message["role"] == "assistant" and message.get("status") != "replaced":
            reply.insert(0, message)
    return reply

"""The rooms of one process: membership, the turn queue, history, Stop, expiry.

Socket.IO handlers and the ``/stream`` route call into ``Rooms``; it never touches a
request, and it speaks to clients only through the protocol's ``Emitter``.  Each
room has one turn worker at most (a background task): it takes everything queued,
runs one turn for it, and repeats until the queue is empty, so a burst of messages
becomes one turn and a thread never has two runs at once.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any
from typing import cast

from itsdangerous import BadSignature
from itsdangerous import Signer

from assistant.errors import AssistantError
from assistant.service import AssistantService
from rooms.directory import ThreadDirectory
from rooms.errors import Refusal
from rooms.errors import StoreBusy
from rooms.inbound import MAX_NAME_CHARS
from rooms.inbound import has_lone_surrogate
from rooms.limits import Limits
from rooms.messages import SYSTEM_NAME
from rooms.messages import system_message
from rooms.messages import user_message
from rooms.names import lookalike_keys
from rooms.protocol import Ack
from rooms.protocol import BusyInfo
from rooms.protocol import ChatMessage
from rooms.protocol import Emitter
from rooms.protocol import MessageFields
from rooms.protocol import PartialText
from rooms.protocol import RegisterFields
from rooms.protocol import Welcome
from rooms.state import Member
from rooms.state import MemoryState
from rooms.state import Pending
from rooms.state import Room
from rooms.state import RoomState
from rooms.state import StreamSink
from rooms.turns import CRASHED
from rooms.turns import DEFERRED
from rooms.turns import INTERRUPTED_BY_RESTART
from rooms.turns import REJECTED
from rooms.turns import TurnRunner

log = logging.getLogger(__name__)

EXTENSION = "threadroom.rooms"  # where an app keeps its Rooms (app.extensions)

MAX_BUSY_BACKOFF_S = 10.0
STORE_BUSY_LINE = (
    "The conversation store is busy; the waiting messages will be answered as soon"
    " as it is free."
)
DROPPED_INVALID = (
    "A message from {name} could not be given to the assistant (it contains an"
    " invalid character) and was dropped."
)
DROPPED_REFUSED = (
    "The assistant's backend refused the waiting messages from {names}; they were"
    " dropped so the next ones can be answered."
)


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
    ) -> None:
        self._get_assistant = get_assistant
        self.directory = directory
        # A user id's token is its signature: only this installation can make one.
        self._signer = Signer(secret, salt="threadroom.user-id")
        self.emitter = emitter
        self.spawn = spawn
        self.sleep = sleep
        self.empty_room_ttl_s = empty_room_ttl_s
        self.stream_mode = stream_mode
        self.limits = limits or Limits()
        self.state: RoomState = state or MemoryState()

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
            member = self.identify(room, fields, sid)
            # Every tab of this person, including this one registering again; an
            # existing entry keeps its place, so the roster stays in arrival order.
            same = [m for m in room.members.values() if m.user_id == member.user_id]
            if not same:
                self._check_room_space(room)
            for tab in same:  # one person, one name, in every tab
                renamed_tab = Member(tab.sid, member.user_id, member.name, room.name)
                room.members[tab.sid] = renamed_tab
                self.state.bind(renamed_tab)
            room.members[sid] = member
            room.generation += 1  # a pending expiry of this room is now stale
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

    def identify(self, room: Room, fields: RegisterFields, sid: str = "") -> Member:
        """Decide who a registration (or an HTTP-only sender) is.

        Several tabs of one person share a ``user_id`` and a name.  Claiming a
        ``user_id`` this server has handed out before needs the token that came with
        it, so a copied id becomes a new person, never an impersonation (even of
        someone who is away).
        """
        self._check_not_reserved(fields["name"])
        user_id = fields["user_id"]
        known = self.directory.has_user(user_id)
        if known and not self.token_valid(user_id, fields["token"]):
            user_id, known = uuid.uuid4().hex, False
        if not known:  # its token is handed out from now on
            self.directory.add_user(user_id)
        return Member(
            sid, user_id, _unique_name(room, fields["name"], user_id), room.name
        )

    def _check_not_reserved(self, name: str) -> None:
        """Refuse a nickname that looks like the assistant's or the server's."""
        reserved = (self.assistant.info.name, SYSTEM_NAME, "system", "assistant")
        keys = lookalike_keys(name)
        if any(keys & lookalike_keys(taken) for taken in reserved):
            raise Refusal(
                f"The nickname {name!r} is reserved for the assistant or the server;"
                " please choose another."
            )

    def token_for(self, user_id: str) -> str:
        """Return the token that proves a client registered as ``user_id``."""
        return self._signer.get_signature(user_id).decode()

    def token_valid(self, user_id: str, token: str) -> bool:
        """Check a token against ``user_id`` (in constant time)."""
        try:
            return self._signer.verify_signature(user_id, token or "")
        except BadSignature:  # a token that is not even base64
            return False

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
            generation = room.generation
        if empty:
            self._schedule_expiry(room, generation)
        return member, room, gone

    def ensure_thread(self, room: Room) -> str:
        """Give the room its thread: the saved one if it still exists, else a new
        one.  Simultaneous first registrations wait on the room lock: one thread."""
        with room.lock:
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
        turn = room.turn
        busy = None
        if turn is not None:
            partial = [PartialText(id=i, text=t) for i, t in turn.partial.items()]
            busy = BusyInfo(**turn.public(), partial=partial)
        return Welcome(
            user_id=member.user_id,
            name=member.name,
            room=room.name,
            assistant=self.assistant.info.public(),
            members=room.roster(),
            busy=busy,
        )

    def history(self, room: Room) -> list[ChatMessage]:
        """Return the complete conversation, oldest first, each message once, as
        people saw it: with the system lines and how each reply ended.

        Messages accepted but not yet carried into the thread are read *before*
        the thread, so a message saved in between shows up in both and is deduped,
        never in neither.
        """
        with room.lock:
            unsaved = list(room.unsaved)
            thread_id = room.thread_id
        if not thread_id:
            return unsaved
        saved = cast(list[ChatMessage], self.assistant.history(thread_id))
        notes = self.directory.notes(thread_id)
        for message in saved:
            message.update(notes.get(message["id"], {}))
        known = {m["id"] for m in saved}
        messages = saved + [m for m in unsaved if m["id"] not in known]
        return with_lines(messages, self.directory.lines(thread_id))

    # -- messages and turns --------------------------------------------------

    def submit(
        self, member: Member, fields: MessageFields, *, sink: StreamSink | None = None
    ) -> Ack:
        """Accept a message from ``member``, tell the others, queue it for a turn.

        Returns the sender's ack.  A resent message id (a client retrying after a
        reconnect) is acknowledged again but not stored twice.  Raises ``Refusal``
        past a limit; a refused message is not remembered, so it can be resent.
        """
        room = self.room(member.room)
        message = user_message(fields, member.user_id, member.name)
        with room.lock:
            if room.seen(message["id"]):
                return {"ok": True, "id": message["id"], "duplicate": True}
            self._check_queue(room, member)
            self.limits.message(member.user_id)
            room.remember(message["id"])
            if not member.sid:  # an HTTP sender: now a person of this room
                room.http_people[member.user_id] = member.name
            queued = room.worker_running
            room.unsaved.append(message)
            room.pending.append(Pending(message, sink=sink))
            waiting = [p.message["id"] for p in room.pending]
            start_worker = not room.worker_running
            room.worker_running = True
        self.emitter.message(room.name, message, skip_sid=member.sid or None)
        if queued:
            self.emitter.queue(room.name, waiting)
        if start_worker:
            self.spawn(self._work, room)
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
        if turn is None:
            return {"ok": False, "error": "The assistant is not answering right now."}
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

    def _work(self, room: Room) -> None:
        """Run turns for ``room`` until nothing is queued.

        A turn that raises (a bug, a failing emit) is logged and the worker goes
        on: a dead worker would leave every later message queued forever.  A turn
        deferred by a busy store is tried again with the same messages, backing
        off; messages the backend refused are dropped, with a line saying so.
        """
        runner = TurnRunner(
            self.assistant,
            self.emitter,
            record=self.directory,
            stream_mode=self.stream_mode,
            sleep=self.sleep,
        )
        backoff = 0.0
        while True:
            if backoff:
                self.sleep(backoff)
            with room.lock:
                if not room.pending:
                    room.worker_running = False
                    generation, empty = room.generation, not room.members
                    break
                batch, room.pending = room.pending, []
                unsendable = _take_unsendable(room)
                messages = list(room.unsaved)
                roster = [person["name"] for person in room.roster()]
            for message in unsendable:
                sentence = DROPPED_INVALID.format(name=message["name"])
                self.tell(room, sentence)
                _end_streams(batch, message["id"], sentence)
            if not messages:
                continue
            status = self._turn(runner, room, batch, messages, roster)
            if status == DEFERRED:
                if not backoff:
                    self.tell(room, STORE_BUSY_LINE, "info")
                backoff = min(max(backoff * 2, 1.0), MAX_BUSY_BACKOFF_S)
                with room.lock:
                    room.pending[:0] = batch  # first in line, as they were
                continue
            backoff = 0.0
            if status == REJECTED:
                self._drop(room, messages)
        if empty:
            self._schedule_expiry(room, generation)

    def _turn(self, runner: TurnRunner, room: Room, batch, messages, roster) -> str:
        """Run one turn; return its outcome (see ``TurnRunner.run``)."""
        try:
            self.ensure_thread(room)  # an expired room gets a fresh thread
            self.emitter.queue(room.name, [])
            return runner.run(room, batch, messages, roster)
        except StoreBusy:
            return DEFERRED
        except AssistantError as exc:
            if exc.reason == "busy":
                return DEFERRED
            log.warning("room %s could not start a turn: %s", room.name, exc)
        except Exception:
            log.exception("a turn in room %s failed outside the turn", room.name)
        self._tell_failure(room, batch)
        return "failed"

    def _drop(self, room: Room, messages: list[ChatMessage]) -> None:
        """Forget messages the backend refused, so they cannot fail every later
        turn too, and say whose they were."""
        dropped = {m["id"] for m in messages}
        with room.lock:
            room.unsaved = [m for m in room.unsaved if m["id"] not in dropped]
        names = list(dict.fromkeys(m["name"] for m in messages))
        self.tell(room, DROPPED_REFUSED.format(names=", ".join(names)))

    def tell(self, room: Room, sentence: str, level: str = "error") -> None:
        """Send a system line to the room and keep it in the room's record."""
        line = system_message(sentence, level)
        self.emitter.message(room.name, line)  # first: the record may be slow
        if room.thread_id:
            try:
                self.directory.add_line(room.thread_id, line, None)
            except StoreBusy:
                log.warning("room %s: a system line was not kept", room.name)

    def _tell_failure(self, room: Room, batch: list[Pending]) -> None:
        """Tell the room and every /stream caller that a turn could not run."""
        for pending in batch:
            if pending.sink is not None:
                pending.sink.put("error", {"error": CRASHED})
                pending.sink.close()
        try:
            self.tell(room, CRASHED)
        except Exception:  # the emit itself may be what failed
            log.exception("could not tell room %s", room.name)

    def recover(self) -> None:
        """Tell each room whose reply a previous life of this server cut short
        (killed mid-turn): a line in its record, and its visible replies marked
        interrupted.  Run once, at start."""
        for room_name, thread_id, turn in self.directory.open_turns():
            line = system_message(INTERRUPTED_BY_RESTART, "error")
            seen = turn.get("messages") or [turn.get("after")]  # the reply, if shown
            self.directory.add_line(thread_id, line, seen[-1])
            for message_id in turn.get("messages", ()):
                note = {"status": "interrupted"}
                self.directory.add_note(thread_id, message_id, note)
            self.directory.close_turn(room_name)
            log.warning("room %s: a reply was interrupted by a restart", room_name)

    # -- expiry --------------------------------------------------------------

    def _schedule_expiry(self, room: Room, generation: int) -> None:
        """Delete the room's thread once it has been empty for the TTL."""
        if self.empty_room_ttl_s >= 0:
            self.spawn(self._expire, room, generation)

    def _expire(self, room: Room, generation: int) -> None:
        """Delete the thread and forget the room, unless someone came back."""
        if self.empty_room_ttl_s:
            self.sleep(self.empty_room_ttl_s)
        with room.lock:
            if room.members or room.generation != generation or room.worker_running:
                return  # someone joined, or the last turn will reschedule this
            thread_id, room.thread_id = room.thread_id, None
            self.directory.forget(room.name, thread_id)
            self.state.close(room)
        if thread_id:
            log.info("room %s was empty; deleting its thread", room.name)
            try:
                self.assistant.delete_thread(thread_id)
            except AssistantError:
                log.exception("could not delete the thread of room %s", room.name)


def get_rooms(app: Any) -> Rooms:
    """Return the ``Rooms`` of a Flask app (``init_sockets`` puts them there)."""
    return app.extensions[EXTENSION]


def _unique_name(room: Room, name: str, user_id: str) -> str:
    """Return ``name``, or ``name (2)``, ``name (3)``… if someone else has it,
    shortening the name so the result stays within 32 characters."""
    candidate, number = name, 1
    while room.name_taken(candidate, user_id):
        number += 1
        suffix = f" ({number})"
        candidate = name[: MAX_NAME_CHARS - len(suffix)].rstrip() + suffix
    return candidate


def _end_streams(batch: list[Pending], message_id: str, sentence: str) -> None:
    """End the /stream request waiting on a dropped message with an error."""
    for pending in batch:
        if pending.message["id"] == message_id and pending.sink is not None:
            pending.sink.put("error", {"error": sentence})
            pending.sink.close()


def _take_unsendable(room: Room) -> list[ChatMessage]:
    """Remove from ``room.unsaved`` the messages no backend could take (text that
    cannot be encoded), and return them.  The edges refuse such text; this keeps
    one that slipped through from failing every turn after it."""
    bad = [m for m in room.unsaved if has_lone_surrogate(m["content"] + m["name"])]
    if bad:
        room.unsaved = [m for m in room.unsaved if m not in bad]
    return bad


def with_lines(
    messages: list[ChatMessage], lines: list[tuple[str | None, ChatMessage]]
) -> list[ChatMessage]:
    """Merge system lines into the messages, each after the message it followed
    when it was said, or else by its time."""
    anchored: dict[str, list[ChatMessage]] = {}
    loose: list[ChatMessage] = []
    ids = {m["id"] for m in messages}
    for after_id, line in lines:
        if after_id in ids:
            anchored.setdefault(after_id, []).append(line)
        else:
            loose.append(line)
    merged: list[ChatMessage] = []
    for message in messages:
        merged.append(message)
        merged.extend(anchored.get(message["id"], ()))
    for line in loose:
        at = next(
            (i for i, m in enumerate(merged) if m["created_at"] > line["created_at"]),
            len(merged),
        )
        merged.insert(at, line)
    return merged

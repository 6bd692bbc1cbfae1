"""The turn worker of a room: one background task at most per room, taking
everything queued, running one turn for it (or keeping messages nobody asked the
assistant about), and repeating until the queue is empty, so a burst of messages
becomes one turn and a thread never has two runs at once."""

from __future__ import annotations

import logging
from collections.abc import Callable

from assistant.errors import AssistantError
from assistant.service import AssistantService
from rooms.directory import ThreadDirectory
from rooms.errors import StoreBusy
from rooms.inbound import has_lone_surrogate
from rooms.owner import RoomOwner
from rooms.protocol import ChatMessage
from rooms.protocol import Emitter
from rooms.settings import is_addressed
from rooms.state import Member
from rooms.state import Pending
from rooms.state import Room
from rooms.turns import CRASHED
from rooms.turns import DEFERRED
from rooms.turns import LOST
from rooms.turns import REJECTED
from rooms.turns import TurnRunner

log = logging.getLogger(__name__)

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


class TurnWorker:
    """Run the turns of rooms, one worker task per room at a time."""

    def __init__(
        self,
        get_assistant: Callable[[], AssistantService],
        directory: ThreadDirectory,
        emitter: Emitter,
        owner: RoomOwner,
        *,
        ensure_thread: Callable[[Room], str],
        schedule_expiry: Callable[[Room, int], None],
        tell: Callable[..., None],
        spawn: Callable,
        sleep: Callable[[float], None],
        stream_mode: str = "stream",
    ) -> None:
        self._get_assistant = get_assistant
        self.directory = directory
        self.emitter = emitter
        self.owner = owner
        self.ensure_thread = ensure_thread
        self.schedule_expiry = schedule_expiry
        self.tell = tell
        self.spawn = spawn
        self.sleep = sleep
        self.stream_mode = stream_mode

    def start(self, room: Room, *, fresh: bool = False) -> None:
        """Start the room's worker (the caller claimed ``room.lease``); ``fresh``:
        for the message just queued, which nobody was told waits."""
        self.spawn(self.work, room, fresh)

    def work(self, room: Room, fresh: bool = False) -> None:
        """Run turns for ``room`` until nothing is queued.

        A turn that raises (a bug, a failing emit) is logged and the worker goes
        on: a dead worker would leave every later message queued forever.  A turn
        deferred by a busy store is tried again with the same messages, backing
        off; messages the backend refused are dropped, with a line saying so.
        """
        try:
            self._work(room, fresh)
        except Exception:  # a dead worker would leave the room's queue stuck
            log.exception("the turn worker of room %s failed", room.name)
            with room.lock:
                room.lease.release()

    def _work(self, room: Room, fresh: bool) -> None:
        """Do ``work``'s loop."""
        runner = TurnRunner(
            self._get_assistant(),
            self.emitter,
            record=self.directory,
            owner=self.owner,
            stream_mode=self.stream_mode,
            sleep=self.sleep,
        )
        backoff = 0.0
        while True:
            if backoff:
                self.sleep(backoff)
            if not room.lease.held_here():
                return  # lost (shared mode): the room is another process's now
            with room.lock:
                redo = room.redo.take()
                if not room.pending and redo is None:
                    room.lease.release()
                    # Another process may have queued a message while this one
                    # still held the lease: it counted on this worker to take it.
                    if room.pending and room.lease.claim():
                        continue
                    generation, empty = room.joins.value(), not room.members
                    break
                if redo is None:
                    batch = room.pending.take_all()
                    # The message that started the worker, alone: never shown
                    # waiting.  Anything later was.
                    quiet, fresh = fresh and len(batch) == 1, False
                    unsendable = _take_unsendable(room)
                    messages = room.unsaved.all()
            if redo is not None:  # asked before anything now queued: first
                self._turn(runner, room, [], [], redo)
                continue
            for message in unsendable:
                sentence = DROPPED_INVALID.format(name=message["name"])
                self.tell(room, sentence)
                _end_streams(batch, message["id"], sentence)
            if not messages:
                continue
            if self._answers(room, messages):
                status = self._turn(runner, room, batch, messages, quiet=quiet)
            else:
                status = self._keep_unanswered(room, batch, messages, quiet)
            if status == LOST:
                return
            if status == DEFERRED:
                if not backoff:
                    self.tell(room, STORE_BUSY_LINE, "info")
                backoff = min(max(backoff * 2, 1.0), MAX_BUSY_BACKOFF_S)
                with room.lock:
                    room.pending.put_back(batch)  # first in line, as they were
                continue
            backoff = 0.0
            if status == REJECTED:
                self._drop(room, messages)
        if empty:
            self.schedule_expiry(room, generation)

    def _answers(self, room: Room, messages: list[ChatMessage]) -> bool:
        """Tell whether the assistant answers these messages: always, or in a room
        that answers only when addressed, when one of them addresses it (by name,
        an @mention, or a reply to one of its messages)."""
        if self.owner.settings(room).answer_mode == "every":
            return True
        name = self.owner.assistant_name(room)
        return any(
            message.get("reply_to") in room.assistant_ids
            or is_addressed(message["content"], name)
            for message in messages
        )

    def _keep_unanswered(
        self,
        room: Room,
        batch: list[Pending],
        messages: list[ChatMessage],
        quiet: bool = False,
    ) -> str:
        """Add messages nobody asked the assistant about to the thread, without a
        run: the conversation stays whole for the turn that answers later."""
        try:
            self.ensure_thread(room)
            self._get_assistant().add_messages(room.thread(), messages)
        except StoreBusy:
            return DEFERRED
        except AssistantError as exc:
            if exc.reason in ("busy", "rejected"):
                return DEFERRED if exc.reason == "busy" else REJECTED
            log.warning("room %s could not keep its messages: %s", room.name, exc)
            self._tell_failure(room, batch)
            return "failed"
        with room.lock:
            room.unsaved.discard({m["id"] for m in messages})
        _clear_waiting(self.emitter, room, quiet)
        for pending in batch:  # a /stream sender gets an empty reply: none is due
            if pending.sink is not None:
                pending.sink.close()
        return "kept"

    def _turn(
        self,
        runner: TurnRunner,
        room: Room,
        batch: list[Pending],
        messages: list[ChatMessage],
        redo: tuple[Member, list[ChatMessage]] | None = None,
        *,
        quiet: bool = False,
    ) -> str:
        """Run one turn; return its outcome (see ``TurnRunner.run``); ``quiet``:
        nothing in the batch was shown waiting."""
        try:
            self.ensure_thread(room)  # an expired room gets a fresh thread
            _clear_waiting(self.emitter, room, quiet)
            # Read only for a turn that runs: the roster of a crowded room is the
            # dearest thing on a message's way that the room does not answer.
            roster = [person["name"] for person in room.roster()]
            return runner.run(room, batch, messages, roster, redo=redo)
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
        with room.lock:
            room.unsaved.discard({m["id"] for m in messages})
        names = list(dict.fromkeys(m["name"] for m in messages))
        self.tell(room, DROPPED_REFUSED.format(names=", ".join(names)))

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


def _clear_waiting(emitter: Emitter, room: Room, quiet: bool) -> None:
    """Tell the room nothing waits any more, unless nothing was shown waiting
    (``quiet``: the one message that started the worker; ``submit`` announces only
    messages that found a worker busy).  In a room the assistant is not asked in,
    that is one event per message instead of two."""
    if not quiet:
        emitter.queue(room.name, [])


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
    unsaved = room.unsaved.all()
    bad = [m for m in unsaved if has_lone_surrogate(m["content"] + m["name"])]
    if bad:
        room.unsaved.discard({m["id"] for m in bad})
    return bad

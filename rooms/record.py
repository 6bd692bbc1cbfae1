"""A room's record: the whole conversation as people saw it (the thread, plus the
system lines and how each reply ended, kept in the directory), and what a
restart owes the rooms it interrupted."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import cast

from assistant.service import AssistantService
from rooms.directory import ThreadDirectory
from rooms.errors import StoreBusy
from rooms.messages import system_message
from rooms.owner import RoomOwner
from rooms.protocol import ChatMessage
from rooms.protocol import Emitter
from rooms.protocol import TurnEnd
from rooms.state import BusyRecord
from rooms.state import Room
from rooms.turns import INTERRUPTED_BY_PROCESS
from rooms.turns import INTERRUPTED_BY_RESTART

log = logging.getLogger(__name__)


class RoomRecord:
    """Read and add to what each room's people have seen."""

    def __init__(
        self,
        get_assistant: Callable[[], AssistantService],
        directory: ThreadDirectory,
        emitter: Emitter,
        owner: RoomOwner,
    ) -> None:
        self._get_assistant = get_assistant
        self.directory = directory
        self.emitter = emitter
        self.owner = owner

    def history(self, room: Room) -> list[ChatMessage]:
        """Return the complete conversation, oldest first, each message once, as
        people saw it: with the system lines and how each reply ended.

        Messages accepted but not yet carried into the thread are read *before*
        the thread, so a message saved in between shows up in both and is deduped,
        never in neither.
        """
        with room.lock:
            unsaved = room.unsaved.all()
            thread_id = room.thread_id
        if not thread_id:
            return unsaved
        saved = cast(list[ChatMessage], self._get_assistant().history(thread_id))
        notes = self.directory.notes(thread_id)
        name = self.owner.assistant_name(room)
        replies = []
        for message in saved:
            message.update(notes.get(message["id"], {}))
            if message["role"] == "assistant":
                message["name"] = name
                replies.append(message["id"])
        room.assistant_ids.update(replies)
        known = {m["id"] for m in saved}
        messages = saved + [m for m in unsaved if m["id"] not in known]
        return with_lines(messages, self.directory.lines(thread_id))

    def tell(self, room: Room, sentence: str, level: str = "error") -> None:
        """Send a system line to the room and keep it in the room's record."""
        line = system_message(sentence, level)
        self.emitter.message(room.name, line)  # first: the record may be slow
        if room.thread_id:
            try:
                self.directory.add_line(room.thread_id, line, None)
            except StoreBusy:
                log.warning("room %s: a system line was not kept", room.name)

    def recover(self) -> None:
        """Tell each room whose reply a previous life of this server cut short
        (killed mid-turn): a line in its record, and its visible replies marked
        interrupted.  Run once, at start, in single mode (in shared mode the
        process taking over a room's lease does it for that room: see
        ``interrupted``)."""
        for room_name, thread_id, turn in self.directory.open_turns():
            line = system_message(INTERRUPTED_BY_RESTART, "error")
            self._close_interrupted(room_name, thread_id, turn, line)
            log.warning("room %s: a reply was interrupted by a restart", room_name)

    def interrupted(self, room: Room, busy: BusyRecord) -> None:
        """End, on every screen and in the record, a turn whose process died
        mid-reply (shared mode): its /stream callers get an error, the room a line
        and ``ai-end``, and the reply people saw stays, marked interrupted."""
        line = system_message(INTERRUPTED_BY_PROCESS, "error")
        for sink in busy.sinks:
            sink.put("error", {"error": INTERRUPTED_BY_PROCESS})
            sink.close()
        self.emitter.message(room.name, line)
        self.emitter.ai_end(room.name, TurnEnd(turn=busy.number, status="interrupted"))
        for room_name, thread_id, turn in self.directory.open_turns(room.name):
            self._close_interrupted(room_name, thread_id, turn, line)
        log.warning(
            "room %s: turn %s was interrupted: its process stopped",
            room.name,
            busy.number,
        )

    def _close_interrupted(
        self, room_name: str, thread_id: str, turn: dict, line: ChatMessage
    ) -> None:
        """Keep ``line`` after what people saw of an interrupted turn, mark its
        reply interrupted, and close the turn in the record."""
        seen = turn.get("messages") or [turn.get("after")]  # the reply, if shown
        self.directory.add_line(thread_id, line, seen[-1])
        for message_id in turn.get("messages", ()):
            note = {"status": "interrupted"}
            self.directory.add_note(thread_id, message_id, note)
        self.directory.close_turn(room_name)


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

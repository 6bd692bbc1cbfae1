"""Room state: who is here, the room's thread, and what waits for the assistant.

``Room`` keeps live state in memory (one process serves a room); the room -> thread
mapping is kept in ``rooms.directory.ThreadDirectory`` (SQLite) so a restart
continues the conversation.  Serving one room from several processes would need
both moved to a shared store (e.g. Redis) behind these same methods.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from dataclasses import field

from rooms.names import lookalike_keys

SEEN_IDS_KEPT = 2000


@dataclass(frozen=True)
class Member:
    """One connection's registered identity."""

    sid: str
    user_id: str
    name: str
    room: str

    def public(self) -> dict:
        """Return what other people may see of this member."""
        return {"user_id": self.user_id, "name": self.name}


@dataclass
class Pending:
    """A user message accepted and waiting for the assistant's next turn."""

    message: dict
    sink: object | None = None  # a turns.StreamSink: the sender reads a stream


@dataclass
class Room:
    """The live state of one room."""

    name: str
    thread_id: str | None = None
    members: dict[str, Member] = field(default_factory=dict)  # by sid
    # People who talk over HTTP only (POST /stream): user id -> name in this room.
    http_people: dict[str, str] = field(default_factory=dict)
    pending: list[Pending] = field(default_factory=list)
    unsaved: list[dict] = field(default_factory=list)  # accepted, not in thread yet
    turn: object | None = None  # the turns.Turn in progress
    worker_running: bool = False
    generation: int = 0  # bumps on every join, so a pending expiry can see it is stale
    seen_ids: OrderedDict = field(default_factory=OrderedDict)
    # Threads of the async mode (green under eventlet/gevent monkey-patching).
    lock: threading.RLock = field(default_factory=threading.RLock)

    def roster(self) -> list[dict]:
        """Return the people present, one entry per user, in order of arrival."""
        people: dict[str, dict] = {}
        for member in self.members.values():
            people.setdefault(member.user_id, member.public())
        return list(people.values())

    def name_taken(self, name: str, user_id: str) -> bool:
        """Tell whether someone else here already uses ``name`` or a name that
        looks the same (any case, lookalike letters, invisible characters)."""
        keys = lookalike_keys(name)
        others = [m.name for m in self.members.values() if m.user_id != user_id]
        others += [n for uid, n in self.http_people.items() if uid != user_id]
        return any(keys & lookalike_keys(other) for other in others)

    def person(self, user_id: str) -> Member | None:
        """Return ``user_id`` as this room knows them (a tab, or an HTTP sender)."""
        for member in self.members.values():
            if member.user_id == user_id:
                return member
        if user_id in self.http_people:
            return Member("", user_id, self.http_people[user_id], self.name)
        return None

    def waiting_from(self, user_id: str) -> int:
        """Count the messages of ``user_id`` waiting for the next turn."""
        return sum(1 for p in self.pending if p.message["user_id"] == user_id)

    def seen(self, message_id: str) -> bool:
        """Tell whether a message id was accepted here before (a resend)."""
        return message_id in self.seen_ids

    def remember(self, message_id: str) -> None:
        """Record an accepted message id, so a resend is not stored twice."""
        self.seen_ids[message_id] = True
        if len(self.seen_ids) > SEEN_IDS_KEPT:
            self.seen_ids.popitem(last=False)

"""Room state: who is here, the room's thread, and what waits for the assistant.

``Room`` keeps live state in memory (one process serves a room); the room -> thread
mapping is kept in ``rooms.directory.ThreadDirectory`` (SQLite) so a restart
continues the conversation.  ``Rooms`` reaches the rooms and members of the process
only through ``RoomState``: ``MemoryState`` now, a shared store (Redis) later
behind the same methods.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections import OrderedDict
from collections.abc import MutableMapping
from dataclasses import dataclass
from dataclasses import field
from typing import Protocol

from rooms.names import lookalike_keys
from rooms.protocol import BusyInfo
from rooms.protocol import ChatMessage
from rooms.protocol import PartialText
from rooms.protocol import PersonInfo
from rooms.protocol import TurnInfo
from rooms.settings import RoomSettings

SEEN_IDS_KEPT = 2000


@dataclass(frozen=True)
class Member:
    """One connection's registered identity."""

    sid: str
    user_id: str
    name: str
    room: str
    address: str = ""  # the client address it registered from

    def public(self) -> PersonInfo:
        """Return what other people may see of this member."""
        return PersonInfo(user_id=self.user_id, name=self.name)


END = object()  # marks the end of a StreamSink


class StreamSink:
    """What one ``/stream`` request reads: ``(kind, data)`` items, then ``END``."""

    def __init__(self) -> None:
        self._items: queue.Queue = queue.Queue()  # green under monkey-patching

    def put(self, kind: str, data: dict) -> None:
        """Add a frame (``delta``, ``tool``, ``error``)."""
        self._items.put((kind, data))

    def close(self) -> None:
        """Mark the end of the reply."""
        self._items.put(END)

    def get(self, timeout: float | None = None):
        """Return the next item, or ``END``; raises ``queue.Empty`` on timeout."""
        return self._items.get(timeout=timeout)


class Sink(Protocol):
    """Where a /stream caller's reply goes: a ``StreamSink`` of this process, or
    (shared mode) a relay to the process holding the request."""

    def put(self, kind: str, data: dict) -> None:
        """Add a frame (``delta``, ``tool``, ``error``)."""

    def close(self) -> None:
        """Mark the end of the reply."""


@dataclass
class Pending:
    """A user message accepted and waiting for the assistant's next turn."""

    message: ChatMessage
    sink: Sink | None = None  # the sender reads the reply over /stream
    # A legacy /stream sender's own socket: it reads the reply from the stream, so
    # the room's copy of the reply skips it (else it would show the reply twice).
    reply_skip_sid: str | None = None


@dataclass
class Turn:
    """A turn in progress: its number, run, partial text and who stopped it."""

    number: int
    replying_to: list[str]
    askers: list[str] = field(default_factory=list)  # user ids of those answered
    redo: bool = False  # writes the latest reply again (Regenerate)
    asked_at: int = 0  # ms: the newest of what it answers; replies come after it
    run_id: str | None = None
    partial: dict[str, str] = field(default_factory=dict)  # message id -> text so far
    stopped_by: Member | None = None
    record: dict = field(default_factory=dict)  # what the room's record holds

    def public(self) -> TurnInfo:
        """Describe the turn for ``ai-start`` and a late joiner's ``welcome``."""
        return TurnInfo(turn=self.number, replying_to=self.replying_to)


class MemoryQueue(list):
    """The messages waiting for the room's next turn, in this process (single
    mode).  ``shared.RedisQueue`` has the same methods."""

    def take_all(self) -> list[Pending]:
        """Remove and return everything waiting, oldest first."""
        batch = list(self)
        self.clear()
        return batch

    def put_back(self, batch: list[Pending]) -> None:
        """Put a batch that could not be answered yet back first in line."""
        self[:0] = batch

    def ids(self) -> list[str]:
        """Return the ids of the waiting messages, oldest first."""
        return [p.message["id"] for p in self]

    def from_user(self, user_id: str) -> int:
        """Count the waiting messages of ``user_id``."""
        return sum(1 for p in self if p.message["user_id"] == user_id)


class MemoryUnsaved:
    """Messages accepted but not in the thread yet, oldest first."""

    def __init__(self) -> None:
        self._messages: list[ChatMessage] = []

    def add(self, message: ChatMessage) -> None:
        """Add an accepted message."""
        self._messages.append(message)

    def discard(self, ids: set[str]) -> None:
        """Forget the messages with these ids (now in the thread, or dropped)."""
        self._messages = [m for m in self._messages if m["id"] not in ids]

    def all(self) -> list[ChatMessage]:
        """Return them, oldest first."""
        return list(self._messages)


class MemorySeen:
    """The message ids a room accepted lately, so a resend is not stored twice."""

    def __init__(self) -> None:
        self._ids: OrderedDict[str, bool] = OrderedDict()

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._ids

    def add(self, message_id: str) -> bool:
        """Remember ``message_id``; False if it was already remembered.  The
        oldest are forgotten past a bound."""
        if message_id in self._ids:
            return False
        self._ids[message_id] = True
        if len(self._ids) > SEEN_IDS_KEPT:
            self._ids.popitem(last=False)
        return True

    def discard(self, message_id: str) -> None:
        """Forget ``message_id`` (a message refused after all)."""
        self._ids.pop(message_id, None)


class MemoryIds(set):
    """Ids of the assistant's replies in a room (``update`` takes a list)."""


class MemoryRedo:
    """A reply someone asked to write again: (who asked, the reply's messages)."""

    def __init__(self) -> None:
        self._redo: tuple[Member, list[ChatMessage]] | None = None

    def put(self, member: Member, reply: list[ChatMessage]) -> None:
        """Ask for ``reply`` to be written again."""
        self._redo = (member, reply)

    def take(self) -> tuple[Member, list[ChatMessage]] | None:
        """Return and clear what was asked, if anything."""
        redo, self._redo = self._redo, None
        return redo

    def __bool__(self) -> bool:
        return self._redo is not None


class MemoryJoins:
    """How many times people joined a room, in this process."""

    def __init__(self) -> None:
        self._count = 0

    def bump(self) -> None:
        """Count a join."""
        self._count += 1

    def value(self) -> int:
        """Return the count."""
        return self._count


class MemoryLease:
    """Who runs the room's turns: one worker task in this process (single mode).
    ``shared.RedisLease`` is the cluster-wide one."""

    def __init__(self) -> None:
        self._held = False

    def claim(self) -> bool:
        """Become the room's worker; False if one is running already."""
        if self._held:
            return False
        self._held = True
        return True

    def release(self) -> None:
        """Stop being the room's worker."""
        self._held = False

    def held(self) -> bool:
        """Tell whether any worker runs the room's turns."""
        return self._held

    def held_here(self) -> bool:
        """Tell whether this process runs the room's turns."""
        return self._held


_turn_numbers = itertools.count(1)


class MemoryBusy:
    """The turn in progress as others see it: for a late joiner's ``welcome`` and
    for Stop.  In one process that is the ``Turn`` itself."""

    def __init__(self) -> None:
        self._turn: Turn | None = None

    def next_number(self) -> int:
        """Return the number of the next turn."""
        return next(_turn_numbers)

    def start(self, turn: Turn, sinks: list[Sink]) -> None:
        """Show ``turn`` as the one in progress."""
        self._turn = turn

    def run(self, run_id: str) -> None:
        """Note the turn's run (the Turn holds it already)."""

    def delta(self, message_id: str, text: str) -> None:
        """Note a fragment of the reply (the Turn holds it already)."""

    def end(self) -> None:
        """The turn is over."""
        self._turn = None

    def read(self) -> BusyRecord | None:
        """Return the turn in progress, if any."""
        turn = self._turn
        if turn is None:
            return None
        return BusyRecord(
            number=turn.number,
            replying_to=list(turn.replying_to),
            askers=list(turn.askers),
            partial=dict(turn.partial),
        )


@dataclass
class BusyRecord:
    """What every process knows of a room's turn in progress."""

    number: int
    replying_to: list[str]
    askers: list[str]
    partial: dict[str, str]  # message id -> text so far
    run_id: str | None = None
    # The /stream callers of a turn another process ran (to end them if it died).
    sinks: list = field(default_factory=list)

    def public(self) -> BusyInfo:
        """Describe the turn for a late joiner's ``welcome``."""
        partial = [PartialText(id=i, text=t) for i, t in self.partial.items()]
        return BusyInfo(turn=self.number, replying_to=self.replying_to, partial=partial)


class PendingQueue(Protocol):
    """The messages waiting for a room's next turn (``MemoryQueue``,
    ``shared.RedisQueue``)."""

    def append(self, pending: Pending) -> None: ...
    def take_all(self) -> list[Pending]: ...
    def put_back(self, batch: list[Pending]) -> None: ...
    def ids(self) -> list[str]: ...
    def from_user(self, user_id: str) -> int: ...
    def __len__(self) -> int: ...


class UnsavedMessages(Protocol):
    """Messages accepted, not in the thread yet (``MemoryUnsaved``,
    ``RedisUnsaved``)."""

    def add(self, message: ChatMessage) -> None: ...
    def discard(self, ids: set[str]) -> None: ...
    def all(self) -> list[ChatMessage]: ...


class SeenIds(Protocol):
    """Message ids a room accepted lately (``MemorySeen``, ``RedisSeen``)."""

    def __contains__(self, message_id: object) -> bool: ...
    def add(self, message_id: str) -> bool: ...
    def discard(self, message_id: str) -> None: ...


class ReplyIds(Protocol):
    """Ids of the assistant's replies in a room (a set, or ``RedisIds``)."""

    def __contains__(self, message_id: object) -> bool: ...
    def add(self, message_id: str) -> None: ...
    def update(self, ids: list[str]) -> None: ...


class RedoSlot(Protocol):
    """A Regenerate asked for (``MemoryRedo``, ``RedisRedo``)."""

    def put(self, member: Member, reply: list[ChatMessage]) -> None: ...
    def take(self) -> tuple[Member, list[ChatMessage]] | None: ...
    def __bool__(self) -> bool: ...


class JoinCount(Protocol):
    """How many times people joined a room (``MemoryJoins``, ``RedisJoins``)."""

    def bump(self) -> None: ...
    def value(self) -> int: ...


class TurnLease(Protocol):
    """Who runs a room's turns (``MemoryLease``, ``RedisLease``)."""

    def claim(self) -> bool: ...
    def release(self) -> None: ...
    def held(self) -> bool: ...
    def held_here(self) -> bool: ...


class BusyTurn(Protocol):
    """A room's turn in progress as everyone sees it (``MemoryBusy``,
    ``RedisBusy``)."""

    def next_number(self) -> int: ...
    def start(self, turn: Turn, sinks: list[Sink]) -> None: ...
    def run(self, run_id: str) -> None: ...
    def delta(self, message_id: str, text: str) -> None: ...
    def end(self) -> None: ...
    def read(self) -> BusyRecord | None: ...


@dataclass
class Room:
    """The live state of one room.

    The parts every process serving the room must agree on (members, the queue,
    the busy turn, the worker lease…) are objects with one interface and two
    implementations: the ``Memory*`` ones here (single mode) and the Redis ones of
    ``rooms.shared`` (shared mode).  The rest (the lock, the Turn a worker runs,
    cached settings) is this process's own.
    """

    name: str
    thread_id: str | None = None
    members: MutableMapping[str, Member] = field(default_factory=dict)  # by sid
    # People who talk over HTTP only (POST /stream): user id -> name in this room.
    http_people: MutableMapping[str, str] = field(default_factory=dict)
    pending: PendingQueue = field(default_factory=MemoryQueue)
    # Accepted, not in the thread yet.
    unsaved: UnsavedMessages = field(default_factory=MemoryUnsaved)
    turn: Turn | None = None  # the turn this process runs for the room
    busy: BusyTurn = field(default_factory=MemoryBusy)  # the turn, as everyone sees it
    lease: TurnLease = field(default_factory=MemoryLease)
    settings: RoomSettings | None = None  # the owner's choices, once read
    redo: RedoSlot = field(default_factory=MemoryRedo)  # a Regenerate asked
    assistant_ids: ReplyIds = field(default_factory=MemoryIds)  # replies seen here
    typing_since: dict[str, float] = field(default_factory=dict)  # user id -> time
    # Counts joins (on every process), so a pending expiry can see it is stale.
    joins: JoinCount = field(default_factory=MemoryJoins)
    seen_ids: SeenIds = field(default_factory=MemorySeen)
    # Threads of the async mode (green under eventlet/gevent monkey-patching).
    lock: threading.RLock = field(default_factory=threading.RLock)

    def thread(self) -> str:
        """Return the room's thread id; a turn or a Stop only happens once the room
        has one (``Rooms.ensure_thread``)."""
        if self.thread_id is None:
            raise RuntimeError(f"room {self.name} has no thread yet")
        return self.thread_id

    def roster(self) -> list[PersonInfo]:
        """Return the people present, one entry per user, in order of arrival."""
        people: dict[str, PersonInfo] = {}
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
        name = self.http_people.get(user_id)
        if name is not None:
            return Member("", user_id, name, self.name)
        return None

    def waiting_from(self, user_id: str) -> int:
        """Count the messages of ``user_id`` waiting for the next turn."""
        return self.pending.from_user(user_id)


class RoomState(Protocol):
    """Where ``Rooms`` keeps the rooms and the connections' identities."""

    def get(self, name: str) -> Room | None:
        """Return the room called ``name`` if it is open."""

    def open(self, name: str) -> Room:
        """Return the room called ``name``, opening it on first use."""

    def count(self) -> int:
        """Return how many rooms are open."""

    def all(self) -> list[Room]:
        """Return the open rooms."""

    def close(self, room: Room) -> None:
        """Forget ``room`` (unless another room of that name replaced it)."""

    def member(self, sid: str) -> Member | None:
        """Return the identity registered on connection ``sid``."""

    def bind(self, member: Member) -> None:
        """Record ``member`` as the identity of its connection."""

    def unbind(self, sid: str) -> Member | None:
        """Forget connection ``sid``; return who it was."""


class MemoryState:
    """``RoomState`` in this process's memory (single mode)."""

    def __init__(self) -> None:
        self._rooms: dict[str, Room] = {}
        self._members: dict[str, Member] = {}  # by sid

    def get(self, name: str) -> Room | None:
        """Return the room called ``name`` if it is open."""
        return self._rooms.get(name)

    def open(self, name: str) -> Room:
        """Return the room called ``name``, opening it on first use."""
        room = self._rooms.get(name)
        if room is None:  # setdefault is atomic: no green switch can happen inside
            room = self._rooms.setdefault(name, self.new_room(name))
        return room

    def new_room(self, name: str) -> Room:
        """Make the ``Room`` object for ``name`` (its parts in memory)."""
        return Room(name)

    def local(self, name: str) -> Room | None:
        """Return this process's ``Room`` for ``name``, if it has one."""
        return self._rooms.get(name)

    def count(self) -> int:
        """Return how many rooms are open."""
        return len(self._rooms)

    def all(self) -> list[Room]:
        """Return the open rooms."""
        return list(self._rooms.values())

    def close(self, room: Room) -> None:
        """Forget ``room``: rooms come and go, memory must not grow."""
        if self._rooms.get(room.name) is room:
            del self._rooms[room.name]

    def member(self, sid: str) -> Member | None:
        """Return the identity registered on connection ``sid``."""
        return self._members.get(sid)

    def bind(self, member: Member) -> None:
        """Record ``member`` as the identity of its connection."""
        self._members[member.sid] = member

    def bound(self) -> list[Member]:
        """Return the identities of this process's connections."""
        return list(self._members.values())

    def unbind(self, sid: str) -> Member | None:
        """Forget connection ``sid``; return who it was."""
        return self._members.pop(sid, None)

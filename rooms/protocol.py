"""The room protocol in one place: every payload's shape, and one method per event
the server sends.

The seed client's events keep their names and shapes (see DESIGN.md); the
extensions (``ai-delta``, ``ai-tool``, ``presence``, ``queue``, ``welcome``'s extra
fields, ``ai-end``'s status) are typed here too.  ``Emitter`` is the only code that
names an outbound event: rooms and handlers call its methods, never ``emit("…")``.
"""

from __future__ import annotations

from typing import Any
from typing import Literal
from typing import NotRequired
from typing import Protocol
from typing import TypedDict

# -- what clients send --------------------------------------------------------


class RegisterFields(TypedDict):
    """A checked ``register`` payload (or the sender part of a ``/stream`` body)."""

    user_id: str
    name: str
    room: str
    token: str
    passcode: str  # "" unless the room is locked


class MessageFields(TypedDict):
    """A checked ``message`` payload: identity and role are the server's to set.
    ``reply_to`` names the message it answers (when the client says so)."""

    id: str
    content: str
    reply_to: NotRequired[str]


# -- what the server sends ----------------------------------------------------


class PersonInfo(TypedDict):
    """Someone in a room, as the others see them."""

    user_id: str
    name: str


class RoomInfo(TypedDict):
    """``room``: a room's settings as its members see them (never the passcode)."""

    owner: str | None
    answer_mode: str
    assistant_name: str
    instructions: str
    stop_policy: str
    locked: bool


class TypingInfo(TypedDict):
    """``typing``: someone started or stopped typing (never stored)."""

    user_id: str
    name: str
    typing: bool


class RemovedInfo(TypedDict):
    """``removed``: the room's owner removed this person, until ``until`` (ms)."""

    room: str
    by: str
    until: int


class ChatMessage(TypedDict):
    """A message as every client sees it (``created_at`` in milliseconds).

    ``level`` marks a system line; ``status`` and ``stopped_by`` say how a reply
    that is not complete ended.
    """

    id: str
    user_id: str
    name: str
    content: str
    role: Literal["user", "assistant", "system"]
    created_at: int
    level: NotRequired[str]
    status: NotRequired[str]
    stopped_by: NotRequired[PersonInfo]
    reply_to: NotRequired[str]


class ReplyNote(TypedDict, total=False):
    """How a reply that is not complete ended (kept in the room's record)."""

    status: str
    stopped_by: PersonInfo


class TurnInfo(TypedDict):
    """``ai-start``: which turn begins and whose messages it answers."""

    turn: int
    replying_to: list[str]


class PartialText(TypedDict):
    """Text of a reply written so far (for a late joiner)."""

    id: str
    text: str


class BusyInfo(TurnInfo):
    """The turn in progress when someone joins, with what it has written."""

    partial: list[PartialText]


class Welcome(TypedDict):
    """``welcome``: who the registering client is and what the room is doing."""

    user_id: str
    name: str
    room: str
    assistant: dict[str, Any]
    members: list[PersonInfo]
    busy: BusyInfo | None
    settings: RoomInfo


class TurnEnd(TypedDict):
    """``ai-end``: the turn, how it ended, and who stopped it."""

    turn: int
    status: str
    stopped_by: NotRequired[PersonInfo]


class Delta(TypedDict):
    """``ai-delta``: a fragment of assistant message ``id``."""

    id: str
    delta: str
    # The reply's length before this fragment, in UTF-16 code units as JavaScript
    # counts (a joiner's partial text may already hold the fragment).
    at: int


class ToolCall(TypedDict):
    """``ai-tool``: a tool call starting or finishing during a turn."""

    turn: int
    name: str
    label: str
    status: str


class QueueInfo(TypedDict):
    """``queue``: the ids of the messages waiting for the next turn."""

    waiting: list[str]


class ErrorInfo(TypedDict):
    """``error``: a frame or event the server could not take."""

    error: str


class Ack(TypedDict, total=False):
    """The answer to ``register``, ``message`` and ``stop``."""

    ok: bool
    error: str
    retry_after: int
    id: str
    queued: bool
    duplicate: bool
    user_id: str
    name: str
    token: str
    settings: RoomInfo


# -- sending -------------------------------------------------------------------


class Emit(Protocol):
    """Send one event (the Socket.IO server's ``emit`` on the chat namespace)."""

    def __call__(
        self, event: str, data: Any, *, to: str, skip_sid: str | list[str] | None = None
    ) -> None: ...


class Emitter:
    """Every event the server sends, one method each.

    ``to`` is a room name or one connection's sid; ``skip_sid`` leaves one
    connection out (the sender, who already has what it sent).
    """

    def __init__(self, emit: Emit) -> None:
        self._emit = emit

    def welcome(self, to: str, welcome: Welcome) -> None:
        """Tell a client who it is in the room it registered in."""
        self._emit("welcome", welcome, to=to)

    def message_list(
        self,
        to: str,
        messages: list[ChatMessage],
        skip_sid: str | list[str] | None = None,
    ) -> None:
        """Send the history (to a joiner) or a new reply (to the room)."""
        self._emit("message-list", messages, to=to, skip_sid=skip_sid)

    def message(
        self, to: str, message: ChatMessage, skip_sid: str | None = None
    ) -> None:
        """Send one user message to the others, or a system line to all."""
        self._emit("message", message, to=to, skip_sid=skip_sid)

    def join(self, to: str, person: PersonInfo, skip_sid: str | None = None) -> None:
        """Tell a room that someone arrived."""
        self._emit("join", person, to=to, skip_sid=skip_sid)

    def leave(
        self, to: str, person: PersonInfo, skip_sid: str | list[str] | None = None
    ) -> None:
        """Tell a room that someone's last tab closed (or that they were removed:
        their own tabs, skipped, hear ``removed`` instead)."""
        self._emit("leave", person, to=to, skip_sid=skip_sid)

    def presence(
        self, to: str, roster: list[PersonInfo], skip_sid: str | None = None
    ) -> None:
        """Send the whole roster."""
        self._emit("presence", roster, to=to, skip_sid=skip_sid)

    def queue(self, to: str, waiting: list[str]) -> None:
        """Say which messages wait for the next turn (none: the turn took them)."""
        self._emit("queue", QueueInfo(waiting=waiting), to=to)

    def ai_start(self, to: str, turn: TurnInfo) -> None:
        """Open a turn."""
        self._emit("ai-start", turn, to=to)

    def ai_delta(self, to: str, message_id: str, text: str, at: int) -> None:
        """Send a fragment of a reply being written, starting at character ``at``."""
        self._emit("ai-delta", Delta(id=message_id, delta=text, at=at), to=to)

    def ai_tool(self, to: str, call: ToolCall) -> None:
        """Show a tool call while it runs."""
        self._emit("ai-tool", call, to=to)

    def ai_end(self, to: str, end: TurnEnd) -> None:
        """Close a turn: always, exactly once per ``ai-start``."""
        self._emit("ai-end", end, to=to)

    def room(self, to: str, info: RoomInfo) -> None:
        """Send a room's settings (after the owner changed them)."""
        self._emit("room", info, to=to)

    def typing(self, to: str, info: TypingInfo, skip_sid: str | None = None) -> None:
        """Tell the others that someone started or stopped typing."""
        self._emit("typing", info, to=to, skip_sid=skip_sid)

    def removed(self, to: str, info: RemovedInfo) -> None:
        """Tell a person's tab that the owner removed them from the room."""
        self._emit("removed", info, to=to)

    def error(self, to: str, error: str) -> None:
        """Tell one client an event or frame it sent was refused."""
        self._emit("error", ErrorInfo(error=error), to=to)

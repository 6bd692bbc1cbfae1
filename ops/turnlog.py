"""One log line and the metrics of every assistant turn, from what the room is told.

A turn is bracketed by ``ai-start`` and ``ai-end``, both emitted to the room from
the room's turn worker; between them come ``ai-delta`` (streamed text),
``message-list`` (the reply), ``ai-tool`` (a tool running) and system ``message``
lines (why it failed).  Watching those emits gives the room, the turn number, the
speakers, the status, the timings and the tools without reaching into the room's
code.  Backend requests are counted by an HTTP hook on the SDK client: the hook
runs in the thread (or green thread) that sent the request, which during a turn
is the turn worker, so a context variable set at ``ai-start`` tells the hook whose
turn it is.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field

from ops.metrics import Metrics

log = logging.getLogger("threadroom.turns")

FAILED_STATUSES = ("failed", "timeout", "expired", "incomplete", "rejected")


@dataclass
class TurnStats:
    """What one turn did, as the room saw it."""

    room: str
    turn: int
    speakers: list[str]
    started: float = field(default_factory=time.monotonic)
    first_text: float | None = None
    tools: list[str] = field(default_factory=list)
    backend_requests: int = 0
    error: str | None = None

    def record(self, status: str, ended: float) -> dict:
        """Return the turn as the structured fields of its log line."""
        first = None if self.first_text is None else self.first_text - self.started
        return {
            "room": self.room,
            "turn": self.turn,
            "speakers": self.speakers,
            "status": status,
            "duration_s": round(ended - self.started, 3),
            "first_token_s": None if first is None else round(first, 3),
            "tools": self.tools,
            "backend_requests": self.backend_requests,
            "error": self.error,
        }


_current: contextvars.ContextVar[TurnStats | None] = contextvars.ContextVar(
    "threadroom_turn", default=None
)


def count_backend_request(_request: object) -> None:
    """Count an SDK request against the turn being answered in this thread.

    Installed as the SDK client's request event hook; outside a turn (start-up,
    room expiry, a join's history) there is nothing to count against.
    """
    stats = _current.get()
    if stats is not None:
        stats.backend_requests += 1


class TurnObserver:
    """Wrap a room's ``emit`` to log and measure each turn it brackets."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._open: dict[str, TurnStats] = {}  # by room name

    def wrap(self, emit: Callable) -> Callable:
        """Return ``emit`` that also tells this observer what it sent."""

        def observed(event: str, data, **kwargs):
            result = emit(event, data, **kwargs)
            room = kwargs.get("to")
            if isinstance(room, str):
                self._on_emit(event, data, room)
            return result

        return observed

    def _on_emit(self, event: str, data, room: str) -> None:
        """Update the room's open turn; a bug here must never cost the room."""
        try:
            self._update(event, data, room)
        except Exception:
            log.exception("could not note %s for room %s", event, room)

    def _update(self, event: str, data, room: str) -> None:
        """Start, update or finish the room's turn for one emitted event."""
        if event == "ai-start":
            started = TurnStats(room, data["turn"], list(data.get("replying_to", [])))
            self._open[room] = started
            _current.set(started)
            return
        stats = self._open.get(room)
        if stats is None:
            return
        if event == "ai-end":
            self._finish(self._open.pop(room), data.get("status", "unknown"))
            if _current.get() is stats:
                _current.set(None)
        elif event == "ai-delta" or (event == "message-list" and _has_reply(data)):
            stats.first_text = stats.first_text or time.monotonic()
        elif event == "ai-tool" and data.get("status") == "running":
            stats.tools.append(data["name"])
        elif event == "message" and data.get("level") == "error":
            stats.error = data.get("content")

    def _finish(self, stats: TurnStats, status: str) -> None:
        """Log the turn's one line and count it."""
        fields = stats.record(status, time.monotonic())
        level = logging.WARNING if status in FAILED_STATUSES else logging.INFO
        log.log(level, format_turn(fields), extra={"turn": fields})
        self.metrics.observe_turn(status, fields["duration_s"], fields["first_token_s"])


def _has_reply(messages) -> bool:
    """Tell whether a ``message-list`` carries assistant text."""
    return any(m.get("role") == "assistant" for m in messages or ())


def format_turn(fields: dict) -> str:
    """Write a turn's fields as one readable line (``key=value``, text quoted)."""
    first = fields["first_token_s"]
    parts = [
        f"turn room={fields['room']!r} turn={fields['turn']}",
        f"speakers={','.join(fields['speakers'])!r}",
        f"status={fields['status']}",
        f"duration={fields['duration_s']:.3f}s",
        f"first_token={'-' if first is None else f'{first:.3f}s'}",
        f"tools={','.join(fields['tools']) or '-'}",
        f"backend_requests={fields['backend_requests']}",
    ]
    if fields["error"]:
        parts.append(f"error={fields['error']!r}")
    return " ".join(parts)

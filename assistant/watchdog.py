"""Watchdog: cancel a run that outlives the turn timeout, in poll and stream mode."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from assistant.errors import AssistantError

log = logging.getLogger(__name__)

# How long a cancelled run may take to really end before the turn stops waiting.
CANCEL_GRACE_S = 10.0

# Starts a background task the way the app's async mode does (socketio's).
Spawn = Callable[[Callable[[], None]], object]


class Watchdog:
    """Watch one run from a background task and cancel it past the deadline.

    Without ``spawn`` nothing watches (the turn still stops following a run that
    ``gave_up``, but only after someone else cancelled it).
    """

    def __init__(
        self,
        cancel: Callable[[str], object],
        spawn: Spawn | None,
        sleep: Callable[[float], None],
        timeout_s: float,
    ) -> None:
        self._cancel = cancel
        self._spawn = spawn
        self._sleep = sleep
        self.deadline = time.monotonic() + timeout_s
        self.run_id: str | None = None
        self.fired = False
        self.done = False

    def start(self, run_id: str) -> None:
        """Begin watching ``run_id`` (once; later calls are ignored)."""
        if self.run_id is not None:
            return
        self.run_id = run_id
        if self._spawn is not None:
            self._spawn(lambda: self._watch(run_id))

    def gave_up(self) -> bool:
        """Tell whether the cancelled run is still not over after the grace time."""
        return self.fired and time.monotonic() > self.deadline + CANCEL_GRACE_S

    def seconds_to_give_up(self) -> float:
        """Return how long until ``gave_up`` would hold if the run never ended."""
        return max(self.deadline + CANCEL_GRACE_S - time.monotonic(), 0.0)

    def finish(self) -> None:
        """Stop watching: the turn is over."""
        self.done = True

    def _watch(self, run_id: str) -> None:
        """Sleep in short steps until the turn ends or the deadline passes."""
        while not self.done and time.monotonic() < self.deadline:
            self._sleep(min(0.5, max(self.deadline - time.monotonic(), 0)))
        if self.done:
            return
        self.fired = True
        log.warning("run %s passed the turn timeout; cancelling it", run_id)
        try:
            self._cancel(run_id)
        except AssistantError:
            log.exception("could not cancel run %s", run_id)

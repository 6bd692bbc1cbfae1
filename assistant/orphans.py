"""Clear a run that an earlier life of this server left blocking a room's thread.

The room's turn worker is the only one running turns on its thread, so an active run
it did not start, waiting for tool outputs since before this process began, is an
orphan (one left waiting when the server restarted): cancel it and start again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from openai.types.beta.threads import Run

from assistant.errors import AssistantError
from assistant.gateway import RUN_ACTIVE
from assistant.gateway import ThreadGateway
from assistant.statuses import TERMINAL_RUN_STATUSES
from assistant.watchdog import CANCEL_GRACE_S

log = logging.getLogger(__name__)

T = TypeVar("T")


class OrphanGuard:
    """Start runs on one thread, clearing an orphaned run out of the way first."""

    def __init__(
        self,
        gateway: ThreadGateway,
        thread_id: str,
        *,
        started_at: int,
        sleep: Callable[[float], None],
        poll_interval_s: float,
    ) -> None:
        self.gateway = gateway
        self.thread_id = thread_id
        self.started_at = started_at  # runs older than this are not ours
        self._sleep = sleep
        self._poll_interval_s = poll_interval_s

    def start(self, start: Callable[[], T]) -> T:
        """Call ``start``; if an orphan refuses it, cancel the orphan and retry once."""
        try:
            return start()
        except AssistantError as exc:
            orphan = self._orphan_behind(exc)
            if orphan is None:
                raise
            log.warning("cancelling orphaned run %s on a room thread", orphan)
            self._cancel_and_settle(orphan)
            return start()

    def _orphan_behind(self, refusal: AssistantError) -> str | None:
        """Return the id of the orphaned run that caused ``refusal``, if one did."""
        if refusal.code != RUN_ACTIVE:
            return None
        run = self.gateway.latest_run(self.thread_id)  # one active run: the newest
        if run is None or not self._is_orphan(run):
            return None
        return run.id

    def _is_orphan(self, run: Run) -> bool:
        """Tell whether a run was left waiting for tool outputs by an earlier life of
        this server (a live run of another process is never taken for one)."""
        return run.status == "requires_action" and run.created_at < self.started_at

    def _cancel_and_settle(self, run_id: str) -> None:
        """Cancel a run and wait (briefly) until it has really ended."""
        self.gateway.cancel_run(self.thread_id, run_id)
        deadline = time.monotonic() + CANCEL_GRACE_S
        while time.monotonic() < deadline:
            run = self.gateway.retrieve_run(self.thread_id, run_id)
            if run.status in TERMINAL_RUN_STATUSES:
                return
            self._sleep(self._poll_interval_s)

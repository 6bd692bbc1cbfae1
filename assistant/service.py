"""AssistantService: one shared Assistants thread per room, driven through the SDK.

The facade the rest of the app calls.  The work is done beside it:
``gateway`` (every backend call, errors translated), ``turns`` (poll and stream turns,
the poll loop), ``watchdog`` (the turn timeout), ``orphans`` (runs left by an earlier
life), ``dispatch`` (tool calls) and ``presentation`` (chat messages and sentences).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import openai
from openai.types.beta.threads import Message

from assistant import presentation
from assistant.gateway import ThreadGateway
from assistant.statuses import TERMINAL_RUN_STATUSES
from assistant.tools import ToolRegistry
from assistant.turns import PollTurn
from assistant.turns import StreamTurn
from assistant.turns import TurnHooks
from assistant.turns import TurnResult
from assistant.turns import TurnSetup
from assistant.watchdog import Spawn

__all__ = ["AssistantInfo", "AssistantService", "TurnHooks", "TurnResult"]


@dataclass(frozen=True)
class AssistantInfo:
    """What the page and /healthz may say about the backend (never a key)."""

    id: str
    name: str
    backend: str  # "demo" | "openai" | "remote"
    model: str

    @property
    def is_demo(self) -> bool:
        """Tell whether replies come from the offline demo model."""
        return self.backend == "demo"

    def public(self) -> dict[str, Any]:
        """Return the fields safe to send to browsers."""
        return {
            "name": self.name,
            "backend": self.backend,
            "model": self.model,
            "is_demo": self.is_demo,
        }


class AssistantService:
    """Create threads, run turns and read history through one ``openai`` client."""

    def __init__(
        self,
        client: openai.OpenAI,
        info: AssistantInfo,
        tools: ToolRegistry,
        *,
        poll_interval_ms: int = 250,
        run_timeout_s: float = 120,
        sleep: Callable[[float], None] = time.sleep,
        spawn: Spawn | None = None,
    ) -> None:
        self.gateway = ThreadGateway(client)
        self.info = info
        self.tools = tools
        self.poll_interval_s = max(poll_interval_ms, 10) / 1000
        self.run_timeout_s = run_timeout_s
        self._sleep = sleep
        self._spawn = spawn
        self._started_at = int(time.time())  # runs older than this are not ours

    @property
    def client(self) -> openai.OpenAI:
        """The SDK client every backend call goes through."""
        return self.gateway.client

    @client.setter
    def client(self, client: openai.OpenAI) -> None:
        """Send later calls through ``client`` (benchmarks and tests count them)."""
        self.gateway = ThreadGateway(client)

    # -- threads -------------------------------------------------------------

    def create_thread(self, room: str) -> str:
        """Create the shared thread of ``room`` and return its id."""
        return self.gateway.create_thread(room)

    def thread_exists(self, thread_id: str) -> bool:
        """Tell whether the backend still holds ``thread_id``."""
        return self.gateway.thread_exists(thread_id)

    def delete_thread(self, thread_id: str) -> None:
        """Delete a room's thread; a thread already gone is fine."""
        self.gateway.delete_thread(thread_id)

    def history(self, thread_id: str) -> list[dict[str, Any]]:
        """Return every message of the thread as chat messages, oldest first."""
        # A reply still being written is left out: it reaches joiners through
        # welcome's busy.partial instead.
        messages = [
            self.to_chat_message(m)
            for m in self.gateway.list_messages(thread_id)
            if m.status != "in_progress"
        ]
        return presentation.in_thread_order(messages)

    # -- turns ---------------------------------------------------------------

    def run_turn(
        self,
        thread_id: str,
        messages: list[dict[str, Any]],
        context: str,
        *,
        stream: bool = False,
        hooks: TurnHooks | None = None,
    ) -> TurnResult:
        """Add ``messages`` to the thread and run the assistant over them.

        :param messages: chat messages (``id``, ``user_id``, ``name``, ``content``,
            ``created_at``) that this turn answers.
        :param context: per-turn instructions appended to the assistant's own (who is
            speaking, who is present, today's date).
        """
        turn_class = StreamTurn if stream else PollTurn
        turn = turn_class(self._turn_setup(), thread_id, hooks or TurnHooks())
        return turn.run(messages, context)

    def add_messages(self, thread_id: str, messages: Sequence[Mapping]) -> None:
        """Add messages to the thread without a run (nobody asked the assistant;
        the next turn sees them)."""
        for message in messages:
            self.gateway.add_message(thread_id, presentation.thread_message(message))

    def cancel(self, thread_id: str, run_id: str) -> bool:
        """Ask the backend to cancel a run; False when it had already ended."""
        return self.gateway.cancel_run(thread_id, run_id)

    def run_ended(self, thread_id: str, run_id: str) -> bool:
        """Tell whether a run has reached a terminal status."""
        run = self.gateway.retrieve_run(thread_id, run_id)
        return run.status in TERMINAL_RUN_STATUSES

    def _turn_setup(self) -> TurnSetup:
        """Gather what a turn needs, as this service is configured right now."""
        return TurnSetup(
            gateway=self.gateway,
            tools=self.tools,
            assistant_id=self.info.id,
            assistant_name=self.info.name,
            poll_interval_s=self.poll_interval_s,
            timeout_s=self.run_timeout_s,
            started_at=self._started_at,
            sleep=self._sleep,
            spawn=self._spawn,
        )

    # -- presentation --------------------------------------------------------

    def to_chat_message(self, message: Message) -> dict[str, Any]:
        """Convert a thread message into the room's chat message shape."""
        return presentation.to_chat_message(message, self.info.name)

    def failure_sentence(self, result: TurnResult) -> str | None:
        """Say in one plain sentence why a turn produced no (complete) reply."""
        return presentation.failure_sentence(
            result.status, result.error, self.run_timeout_s
        )

"""Turns: one run over everything people said since the last one.

``PollTurn`` works like the original sample (create the run, then ``runs.retrieve`` in
a do/while loop, with a backing-off interval); ``StreamTurn`` relays ``runs.stream``
deltas as they come.  Either way the user messages travel inside the run request
(``additional_messages``), so a burst of N messages costs one request, not N.  Both
share the watchdog, the poll loop and the tool round trip in ``Turn``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from openai.types.beta.assistant_stream_event import ThreadMessageCompleted
from openai.types.beta.assistant_stream_event import ThreadMessageDelta
from openai.types.beta.assistant_stream_event import ThreadMessageIncomplete
from openai.types.beta.assistant_stream_event import ThreadRunCreated
from openai.types.beta.threads import Message
from openai.types.beta.threads import MessageContentDelta
from openai.types.beta.threads import Run
from openai.types.beta.threads import TextDeltaBlock
from openai.types.beta.threads.run_create_params import AdditionalMessage
from openai.types.beta.threads.run_submit_tool_outputs_params import ToolOutput

from assistant import presentation
from assistant.dispatch import run_tool_calls
from assistant.errors import AssistantError
from assistant.gateway import Events
from assistant.gateway import ThreadGateway
from assistant.orphans import OrphanGuard
from assistant.statuses import TERMINAL_RUN_STATUSES
from assistant.tools import ToolRegistry
from assistant.watchdog import Spawn
from assistant.watchdog import Watchdog

log = logging.getLogger(__name__)

FINISHED_MESSAGE_EVENTS = (ThreadMessageCompleted, ThreadMessageIncomplete)
MAX_POLL_INTERVAL_S = 2.0
POLL_BACKOFF = 1.5


def _noop(*_args: object) -> None:
    """Ignore a turn event nobody listens to."""


@dataclass
class TurnHooks:
    """Callbacks a turn reports its progress to (all optional)."""

    on_run: Callable[[str], None] = _noop  # run id, as soon as it exists
    on_delta: Callable[[str, str], None] = _noop  # message id, text fragment
    on_tool: Callable[[str, str], None] = _noop  # tool name, "running" | "done"


@dataclass
class TurnResult:
    """How a turn ended and the assistant messages it produced (oldest first)."""

    status: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True)
class TurnSetup:
    """What every turn of one service shares (read from the service per turn)."""

    gateway: ThreadGateway
    tools: ToolRegistry
    assistant_id: str
    assistant_name: str
    poll_interval_s: float
    timeout_s: float
    started_at: int  # runs older than this were left by an earlier life
    sleep: Callable[[float], None]
    spawn: Spawn | None


class Turn:
    """Run the assistant over a batch of messages; subclasses say how to follow it."""

    def __init__(self, setup: TurnSetup, thread_id: str, hooks: TurnHooks) -> None:
        self.setup = setup
        self.gateway = setup.gateway
        self.thread_id = thread_id
        self.hooks = hooks
        self.watchdog = Watchdog(
            lambda run_id: self.gateway.cancel_run(thread_id, run_id),
            setup.spawn,
            setup.sleep,
            setup.timeout_s,
        )
        self.orphans = OrphanGuard(
            self.gateway,
            thread_id,
            started_at=setup.started_at,
            sleep=setup.sleep,
            poll_interval_s=setup.poll_interval_s,
        )

    def run(self, messages: list[dict[str, Any]], context: str) -> TurnResult:
        """Add ``messages`` to the thread, run the assistant, and say how it ended."""
        try:
            additions = [presentation.thread_message(m) for m in messages]
            run, written = self._follow(additions, context)
            if not written or run.status != "completed":
                # Poll mode, or a failed stream (it announces no message.incomplete):
                # list what the run wrote.
                written = self.gateway.list_run_messages(self.thread_id, run.id)
        except Exception:
            self._abandon()
            raise
        finally:
            self.watchdog.finish()
        return self._result(run, written)

    def _follow(
        self, messages: list[AdditionalMessage], context: str
    ) -> tuple[Run, list[Message]]:
        """Start a run and follow it to its end; return it and what it wrote."""
        raise NotImplementedError

    def _result(self, run: Run, written: list[Message]) -> TurnResult:
        """Sum up an ended run for the room."""
        timed_out = self.watchdog.fired and run.status != "completed"
        name = self.setup.assistant_name
        return TurnResult(
            status="timeout" if timed_out else run.status,
            messages=[
                presentation.to_chat_message(m, name)
                for m in written
                if presentation.text_of(m)
            ],
            error=run.last_error.message if run.last_error else None,
        )

    def poll(self, run: Run) -> Run:
        """Poll ``run`` until it ends, answering its tool calls on the way.

        Each look asks the backend to hold it until the run stops moving (until
        the turn would give up at the latest); a backend that does answers the
        moment the run completes or wants tools, and the next look follows at
        once.  One that does not is polled at the backing-off interval.
        """
        base = self.setup.poll_interval_s
        interval = 0.0 if self.gateway.holds_retrieves is not False else base
        while True:  # the sample's do/while: wait, then look
            if run.status == "requires_action":
                run = self._submit_tool_outputs(run)
            if run.status in TERMINAL_RUN_STATUSES or self.watchdog.gave_up():
                return run
            self.setup.sleep(interval)
            look = self.gateway.poll_run(
                self.thread_id, run.id, self.watchdog.seconds_to_give_up()
            )
            run = look.run
            if look.held:
                interval = look.after_s
            else:
                interval = min(
                    max((interval or base) * POLL_BACKOFF, look.after_s),
                    MAX_POLL_INTERVAL_S,
                )

    def _submit_tool_outputs(self, run: Run) -> Run:
        """Run the requested tools and submit every output in one request."""
        outputs = self._tool_outputs(run)
        try:
            return self.gateway.submit_tool_outputs(self.thread_id, run.id, outputs)
        except AssistantError as exc:
            return self._after_refused_outputs(run.id, exc)

    def _tool_outputs(self, run: Run) -> list[ToolOutput]:
        """Call the tools ``run`` asked for, reporting each to the hooks."""
        return run_tool_calls(self.setup.tools, run, self.hooks.on_tool)

    def _after_refused_outputs(self, run_id: str, refusal: AssistantError) -> Run:
        """Return the run when it was stopped, timed out or expired while its tools
        ran (so the outputs came too late); re-raise a genuine refusal."""
        if refusal.backend_status != 400:
            raise refusal
        run = self.gateway.retrieve_run(self.thread_id, run_id)
        if run.status == "requires_action":
            raise refusal
        return run

    def _abandon(self) -> None:
        """Cancel a run this turn can no longer follow, so the thread is not left
        busy; failing that is only logged (the original error matters more)."""
        run_id = self.watchdog.run_id
        if run_id is None:
            return
        try:
            self.gateway.cancel_run(self.thread_id, run_id)
        except AssistantError:
            log.warning("could not cancel abandoned run %s", run_id)


class PollTurn(Turn):
    """Create the run, then poll it to the end."""

    def _follow(
        self, messages: list[AdditionalMessage], context: str
    ) -> tuple[Run, list[Message]]:
        """Create a run and poll it to the end, answering tool calls on the way."""
        run = self.orphans.start(
            lambda: self.gateway.create_run(
                self.thread_id, self.setup.assistant_id, messages, context
            )
        )
        # Watch first: if on_run fails, the run is still abandoned.
        self.watchdog.start(run.id)
        self.hooks.on_run(run.id)
        return self.poll(run), []  # what it wrote is listed afterwards


class StreamTurn(Turn):
    """Stream the run, relaying text deltas and answering tool calls as they come."""

    def _follow(
        self, messages: list[AdditionalMessage], context: str
    ) -> tuple[Run, list[Message]]:
        """Stream a run, relaying deltas and answering tool calls.

        Returns the final run and the messages it wrote, taken from the stream's
        ``thread.message.completed``/``incomplete`` events (no extra list request).
        """
        written: list[Message] = []

        def start() -> Run | None:  # a fresh stream per attempt: sent on entry
            stream = self.gateway.stream_run(
                self.thread_id, self.setup.assistant_id, messages, context
            )
            return self._relay(stream, written)

        run = self.orphans.start(start)
        while run is not None and run.status == "requires_action":
            run = self._continue(run, written)
        if run is None:
            raise AssistantError(presentation.STREAM_ENDED)
        return run, written

    def _continue(self, run: Run, written: list[Message]) -> Run | None:
        """Submit the tool outputs a run waits for and relay the rest of its stream."""
        outputs = self._tool_outputs(run)
        stream = self.gateway.submit_tool_outputs_stream(
            self.thread_id, run.id, outputs
        )
        try:
            return self._relay(stream, written)
        except AssistantError as exc:  # stopped while the tools ran
            late = self._after_refused_outputs(run.id, exc)
            return self.poll(late)

    def _relay(
        self, stream: AbstractContextManager[Events], written: list[Message]
    ) -> Run | None:
        """Pass one stream's events to the hooks; return the last run snapshot."""
        run = None
        with stream as events:
            for event in events:
                if isinstance(event.data, Run):  # thread.run.*, not its steps
                    run = event.data
                    self.watchdog.start(run.id)
                    if isinstance(event, ThreadRunCreated):
                        self.hooks.on_run(run.id)
                elif isinstance(event, ThreadMessageDelta):
                    for text in _delta_texts(event.data.delta.content or ()):
                        self.hooks.on_delta(event.data.id, text)
                elif isinstance(event, FINISHED_MESSAGE_EVENTS):
                    written.append(event.data)
        return run


def _delta_texts(parts: Iterable[MessageContentDelta]) -> Iterator[str]:
    """Yield the text fragments of a message delta's content parts."""
    for part in parts:
        if isinstance(part, TextDeltaBlock) and part.text and part.text.value:
            yield part.text.value

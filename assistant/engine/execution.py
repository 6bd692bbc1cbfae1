"""One run's way from ``queued`` to its next resting state, as wire events.

``RunExecution`` calls the provider, maps each ``ProviderEvent`` onto messages, run
steps and SSE events (WIRE.md 3.3-3.5), and closes the run as completed,
incomplete, requires_action, cancelled, failed or expired.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any
from typing import Protocol

from . import objects
from .history import OverBudget
from .history import build_request
from .providers.base import Finish
from .providers.base import Provider
from .providers.base import ProviderError
from .providers.base import TextDelta
from .providers.base import ToolCallDelta
from .providers.base import Usage
from .store import Store
from .store import StoreBusyError

log = logging.getLogger(__name__)

GENERIC_FAILURE = "The model provider failed unexpectedly."
STEP_ERROR_CODES = ("server_error", "rate_limit_exceeded")
# How often the growing reply is written to the store: a crash loses at most this
# much of what people already saw, and a token costs no write.
SAVE_TEXT_EVERY_S = 1.0
# How often a run streaming on a shared store looks for a cancel made elsewhere.
CANCEL_CHECK_S = 1.0


class Cancelled(Exception):
    """The run was cancelled while it executed."""


class Publisher(Protocol):
    """Where an execution sends its run's wire events (``done`` ends a stream)."""

    def publish(self, run_id: str, event: str, data: Any) -> None:
        """Deliver one event of ``run_id`` to whoever listens."""
        ...


class RunExecution:
    """The in-memory state of one execution of a run.

    :param lock: the engine's lock, held around every check-and-change of the run.
    :param provider_for: returns the model provider for a run's ``model``.
    :param context_chars: how much of the thread (characters) a model is shown at
        most; older history is not read.
    """

    def __init__(
        self,
        run_id: str,
        cancel: threading.Event,
        *,
        store: Store,
        lock: threading.RLock,
        publisher: Publisher,
        provider_for: Callable[[str], Provider],
        context_chars: int | None = None,
    ) -> None:
        self.store = store
        self.context_chars = context_chars
        self.lock = lock
        self.publisher = publisher
        self.provider_for = provider_for
        self.run_id = run_id
        self.cancel = cancel
        self.run: dict[str, Any] = {}
        self.message: dict[str, Any] | None = None
        self.saved_at = 0.0  # when the open message was last written (monotonic)
        self.cancel_checked_at = time.monotonic()  # last look for a cancel elsewhere
        self.step: dict[str, Any] | None = None
        self.calls: list[dict[str, Any]] = []
        self.call_index: dict[int, int] = {}
        self.usage: dict[str, int] | None = None
        self.finish: str | None = None

    # Entry points -------------------------------------------------------------

    def execute(self) -> None:
        """Run the model once and settle the run, whatever happens.

        Afterwards ``waiting_until`` tells when a run left waiting for tool outputs
        expires; the caller schedules that.
        """
        try:
            if self._begin():
                self._call_model()
                self._settle()
        except Cancelled:
            self._close_cancelled()
        except OverBudget as exc:
            self._close_incomplete(exc.reason)
        except ProviderError as exc:
            self._close_failed(exc.code, exc.message)
        except Exception:
            log.exception("Run %s failed in the provider", self.run_id)
            self._close_failed("server_error", GENERIC_FAILURE)

    @property
    def waiting_until(self) -> int | None:
        """Return ``expires_at`` when the run now waits for tool outputs, else None."""
        if self.run.get("status") == "requires_action":
            return self.run["expires_at"]
        return None

    def finish_cancel(self) -> None:
        """Close a run cancelled while it waited for tool outputs."""
        with self.lock:
            if self._load() and self.run["status"] == "cancelling":
                self._adopt_open_step()
                self._close_cancelled()

    def expire(self) -> dict[str, Any]:
        """Expire a run that waited too long for tool outputs (lock held)."""
        self._load()
        self._adopt_open_step()
        stamp = objects.now()
        if self.step:
            self.step.update(status="expired", expired_at=stamp)
            self._save_step(self.step, "thread.run.step.expired")
        self.run.update(status="expired", required_action=None)
        self._save_run("thread.run.expired")
        self.publisher.publish(self.run_id, "done", None)
        return self.run

    # Steps of execute ---------------------------------------------------------

    def _load(self) -> bool:
        """Reload the run from the store; False when it is gone."""
        run = self.store.get("runs", self.run_id)
        if run:
            self.run = run
        return run is not None

    def _adopt_open_step(self) -> None:
        """Take over the run's stored in-progress step (a waiting tool step)."""
        steps = self.store.select("steps", run_id=self.run_id, status="in_progress")
        self.step = steps[-1] if steps else None

    def _begin(self) -> bool:
        """Move the run to ``in_progress``; False when it vanished meanwhile."""
        with self.lock:
            if not self._load():
                self.publisher.publish(self.run_id, "done", None)
                return False
            if self.cancel.is_set() or self.run["status"] == "cancelling":
                raise Cancelled
            self.run["status"] = "in_progress"
            self.run["started_at"] = self.run["started_at"] or objects.now()
            self._save_run("thread.run.in_progress")
        return True

    def _call_model(self) -> None:
        """Stream the provider's events into the run, stopping at a cancel."""
        with self.lock:
            request = build_request(self.store, self.run, self.context_chars)
        provider = self.provider_for(self.run["model"])
        events = iter(provider.stream(request))
        try:
            for event in events:
                if self.cancel.is_set() or self._cancelled_elsewhere():
                    raise Cancelled
                self._apply(event)
        finally:
            # Closing the generator aborts the model call (the provider contract).
            close = getattr(events, "close", None)
            if close:
                close()
        if self.cancel.is_set():
            raise Cancelled

    def _cancelled_elsewhere(self) -> bool:
        """Tell whether another process marked this run ``cancelling`` (a shared
        store: a cancel request may reach any process, while only this one runs
        the model).  Read at most once a second."""
        if not self.store.shared:
            return False
        now = time.monotonic()
        if now - self.cancel_checked_at < CANCEL_CHECK_S:
            return False
        self.cancel_checked_at = now
        run = self.store.get("runs", self.run_id)
        return run is not None and run["status"] == "cancelling"

    def _apply(self, event: Any) -> None:
        """Map one provider event onto the run."""
        if isinstance(event, TextDelta) and event.text and not self.calls:
            # Text after a tool call in the same model call has nowhere to go on
            # the wire (the tool step is still open), so it is dropped.
            self._text(event.text)
        elif isinstance(event, ToolCallDelta):
            self._tool_delta(event)
        elif isinstance(event, Usage):
            more = objects.usage(event.prompt_tokens, event.completion_tokens)
            self.usage = objects.add_usage(self.usage, more)
        elif isinstance(event, Finish):
            self.finish = event.reason

    def _text(self, text: str) -> None:
        """Append reply text, opening the assistant message on the first fragment."""
        first = self.message is None
        message = self._open_message() if self.message is None else self.message
        block = message["content"][0]["text"]
        block["value"] += text
        piece: dict[str, Any] = {"value": text}
        if first:
            piece["annotations"] = []
        delta = {"content": [{"index": 0, "type": "text", "text": piece}]}
        self.publisher.publish(
            self.run_id,
            "thread.message.delta",
            {"id": message["id"], "object": "thread.message.delta", "delta": delta},
        )
        self._save_text_now_and_then(message)

    def _save_text_now_and_then(self, message: dict[str, Any]) -> None:
        """Write the growing message at most once a second, so a crash keeps it."""
        if time.monotonic() - self.saved_at < SAVE_TEXT_EVERY_S:
            return
        try:
            self.store.update("messages", message)
        except StoreBusyError:
            # Only a crash cushion: the reply goes on, and closing saves it all.
            log.warning("Store busy; run %s saves its text later", self.run_id)
        self.saved_at = time.monotonic()

    def _open_message(self) -> dict[str, Any]:
        """Create the message_creation step and its in-progress message."""
        with self.lock:
            if self.cancel.is_set():
                raise Cancelled
            thread_id = self.run["thread_id"]
            created_ms = self.store.message_clock(thread_id, objects.now_ms())
            message = objects.message(
                thread_id,
                "assistant",
                [],
                created_ms,
                status="in_progress",
                completed_at=None,
                assistant_id=self.run["assistant_id"],
                run_id=self.run_id,
            )
            details = {
                "type": "message_creation",
                "message_creation": {"message_id": message["id"]},
            }
            self._open_step(details)
            self.store.insert_message(message, created_ms)
            self.publisher.publish(self.run_id, "thread.message.created", message)
            self.publisher.publish(self.run_id, "thread.message.in_progress", message)
            message["content"] = [objects.text_block("")]
            self.message = message
            self.saved_at = time.monotonic()
            return message

    def _open_step(self, details: dict[str, Any]) -> dict[str, Any]:
        """Insert a new in-progress step and announce it."""
        step = self.step = self.store.insert("steps", objects.step(self.run, details))
        self.publisher.publish(self.run_id, "thread.run.step.created", step)
        self.publisher.publish(self.run_id, "thread.run.step.in_progress", step)
        return step

    def _tool_delta(self, event: ToolCallDelta) -> None:
        """Record a fragment of a function call and relay it as a step delta."""
        if self.message is not None:
            self._complete_message(self.message, "completed", None)
        step = self.step
        if step is None:
            with self.lock:
                if self.cancel.is_set():
                    raise Cancelled
                step = self._open_step({"type": "tool_calls", "tool_calls": []})
        function: dict[str, Any] = {}
        if event.index not in self.call_index:
            call = {"id": event.id or objects.new_id("call"), "name": event.name or ""}
            call["arguments"] = ""
            self.call_index[event.index] = len(self.calls)
            self.calls.append(call)
            function = {"name": call["name"], "arguments": "", "output": None}
            self._step_delta(
                step, event.index, {"id": call["id"], "function": function}
            )
        call = self.calls[self.call_index[event.index]]
        if event.arguments:
            arguments = {"function": {"arguments": event.arguments}}
            call["arguments"] += event.arguments
            self._step_delta(step, event.index, arguments)

    def _step_delta(
        self, step: dict[str, Any], provider_index: int, fields: dict[str, Any]
    ) -> None:
        """Publish a tool_calls step delta for one call."""
        item = {"index": self.call_index[provider_index], "type": "function", **fields}
        delta = {"step_details": {"type": "tool_calls", "tool_calls": [item]}}
        self.publisher.publish(
            self.run_id,
            "thread.run.step.delta",
            {"id": step["id"], "object": "thread.run.step.delta", "delta": delta},
        )

    # Closing ------------------------------------------------------------------

    def _settle(self) -> None:
        """Close the run after a model call: tool outputs, incomplete or completed."""
        with self.lock:
            if not self._load() or self.cancel.is_set():
                raise Cancelled
            if self.run["status"] == "cancelling":
                raise Cancelled
            self.run["usage"] = objects.add_usage(self.run["usage"], self.usage)
            if self.calls and self.step is not None:  # calls always open a step
                self._require_action(self.step)
                return
            truncated = self.finish == "max_tokens"
            if self.message is not None:
                reason = {"reason": "max_tokens"} if truncated else None
                status = "incomplete" if truncated else "completed"
                self._complete_message(self.message, status, reason, usage=self.usage)
            elif self.step is not None:
                self._finish_step(self.step, "completed", usage=self.usage)
            if truncated:
                self.run["incomplete_details"] = {"reason": "max_completion_tokens"}
            self._end_run("incomplete" if truncated else "completed")

    def _require_action(self, step: dict[str, Any]) -> None:
        """Stop at ``requires_action`` with the tool calls the model made."""
        tool_calls = [self._wire_call(call) for call in self.calls]
        step["step_details"]["tool_calls"] = [
            {**call, "function": {**call["function"], "output": None}}
            for call in tool_calls
        ]
        step["usage"] = self.usage
        self.store.update("steps", step)
        self.run["status"] = "requires_action"
        self.run["required_action"] = {
            "type": "submit_tool_outputs",
            "submit_tool_outputs": {"tool_calls": tool_calls},
        }
        self._save_run("thread.run.requires_action")
        self.publisher.publish(self.run_id, "done", None)

    @staticmethod
    def _wire_call(call: dict[str, Any]) -> dict[str, Any]:
        """Return a tool call in the wire shape of ``required_action``."""
        function = {"name": call["name"], "arguments": call["arguments"]}
        return {"id": call["id"], "type": "function", "function": function}

    def _complete_message(
        self,
        message: dict[str, Any],
        status: str,
        reason: dict | None,
        usage: dict | None = None,
    ) -> None:
        """Close the open message (and its step) as completed or incomplete."""
        message.update(status=status, incomplete_details=reason)
        stamp = "completed_at" if status == "completed" else "incomplete_at"
        message[stamp] = objects.now()
        self.store.update("messages", message)
        self.publisher.publish(self.run_id, f"thread.message.{status}", message)
        self.message = None
        if self.step is not None:
            self._finish_step(self.step, "completed", usage=usage)

    def _abandon_message(self, reason: str, *, announce: bool) -> None:
        """Keep the open message's partial text as ``incomplete`` for ``reason``."""
        if self.message is None:
            return
        message, self.message = self.message, None
        message.update(status="incomplete", incomplete_at=objects.now())
        message["incomplete_details"] = {"reason": reason}
        self.store.update("messages", message)
        if announce:
            self.publisher.publish(self.run_id, "thread.message.incomplete", message)

    def _finish_step(
        self, step: dict[str, Any], status: str, usage: dict | None, **fields: Any
    ) -> None:
        """Close the open step with ``status``."""
        step.update(status=status, usage=usage, **fields)
        step[f"{status}_at"] = objects.now()
        self._save_step(step, f"thread.run.step.{status}")
        self.step = None

    def _close_cancelled(self) -> None:
        """Close the run as cancelled, keeping a partial message as incomplete."""
        with self.lock:
            self._load()
            self._abandon_message("run_cancelled", announce=True)
            if self.step is not None:
                self._finish_step(self.step, "cancelled", usage=self.usage)
            self.run["required_action"] = None
            self._end_run("cancelled")

    def _close_incomplete(self, reason: str) -> None:
        """End a run that may read or write no more tokens, before its model call."""
        with self.lock:
            self._load()
            self.run["incomplete_details"] = {"reason": reason}
            self._end_run("incomplete")

    def _close_failed(self, code: str, message: str) -> None:
        """Close the run as failed with ``last_error``."""
        if self.cancel.is_set():
            self._close_cancelled()
            return
        error = {"code": code, "message": message}
        with self.lock:
            self._load()
            # WIRE.md 3.5's failure sequence has no message event.
            self._abandon_message("run_failed", announce=False)
            if self.step is not None:
                step_code = code if code in STEP_ERROR_CODES else "server_error"
                last_error = {"code": step_code, "message": message}
                self._finish_step(
                    self.step, "failed", usage=self.usage, last_error=last_error
                )
            self.run["last_error"] = error
            self._end_run("failed")

    def _end_run(self, status: str) -> None:
        """Put the run in a terminal state and end its streams."""
        self.run["status"] = status
        self.run["expires_at"] = None
        if status != "incomplete":  # a Run has no incomplete_at
            self.run[f"{status}_at"] = objects.now()
        self._save_run(f"thread.run.{status}")
        self.publisher.publish(self.run_id, "done", None)

    def _save_run(self, event: str) -> None:
        """Store the run and publish its snapshot."""
        self.store.update("runs", self.run)
        self.publisher.publish(self.run_id, event, self.run)

    def _save_step(self, step: dict[str, Any], event: str) -> None:
        """Store the step and publish its snapshot."""
        self.store.update("steps", step)
        self.publisher.publish(self.run_id, event, step)

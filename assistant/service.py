"""AssistantService: one shared Assistants thread per room, driven through the SDK.

A *turn* is one run over everything people said since the last one.  Poll mode works
like the original sample (create the run, then ``runs.retrieve`` in a do/while loop),
with a backing-off interval; stream mode relays ``runs.stream`` deltas as they come.
Either way the user messages travel inside the run request (``additional_messages``),
so a burst of N messages costs one request, not N.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field

import openai

from assistant.errors import AssistantError
from assistant.tools import ToolRegistry

log = logging.getLogger(__name__)

# The 400 a busy thread answers to a new run (the real API's wording).
ACTIVE_RUN_REFUSAL = re.compile(r"already has an active run (run_[\w-]+)")
FINISHED_MESSAGE_EVENTS = {"thread.message.completed", "thread.message.incomplete"}
TERMINAL_STATUSES = {"completed", "failed", "cancelled", "expired", "incomplete"}
STORE_BUSY = "The conversation store is busy; the messages will be answered shortly."
# How a reply that did not complete is shown, by the engine's incomplete reason.
INCOMPLETE_STATUSES = {
    "run_cancelled": "stopped",
    "run_failed": "failed",
    "run_expired": "expired",
}
MAX_POLL_INTERVAL_S = 2.0
POLL_BACKOFF = 1.5
CANCEL_GRACE_S = 10.0

FAILURE_SENTENCES = {
    "failed": "The assistant could not answer: {error}",
    "expired": "The assistant's reply expired before it finished.",
    "cancelled": "The assistant's reply was stopped.",
    "incomplete": "The assistant's reply was cut short (it reached its length limit).",
    "timeout": "The assistant took over {timeout} s, so the reply was cancelled.",
}


def _noop(*_args) -> None:
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
    messages: list[dict] = field(default_factory=list)
    error: str | None = None


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

    def public(self) -> dict:
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
        spawn: Callable | None = None,
    ) -> None:
        self.client = client
        self.info = info
        self.tools = tools
        self.poll_interval_s = max(poll_interval_ms, 10) / 1000
        self.run_timeout_s = run_timeout_s
        self._sleep = sleep
        self._spawn = spawn
        self._started_at = int(time.time())  # runs older than this are not ours

    # -- threads -------------------------------------------------------------

    def create_thread(self, room: str) -> str:
        """Create the shared thread of ``room`` and return its id."""
        thread = self._call(self.client.beta.threads.create, metadata={"room": room})
        return thread.id

    def thread_exists(self, thread_id: str) -> bool:
        """Tell whether the backend still holds ``thread_id``."""
        try:
            self.client.beta.threads.retrieve(thread_id)
        except openai.NotFoundError:
            return False
        except openai.APIError as exc:
            raise _translate(exc) from exc
        return True

    def delete_thread(self, thread_id: str) -> None:
        """Delete a room's thread; a thread already gone is fine."""
        try:
            self.client.beta.threads.delete(thread_id)
        except openai.NotFoundError:
            return
        except openai.APIError as exc:
            raise _translate(exc) from exc

    def history(self, thread_id: str) -> list[dict]:
        """Return every message of the thread as chat messages, oldest first."""
        page = self._call(
            self.client.beta.threads.messages.list, thread_id, order="asc", limit=100
        )
        try:  # iterating follows has_more pages; a reply still being written is
            # left out: it reaches joiners through welcome's busy.partial instead
            return [self.to_chat_message(m) for m in page if m.status != "in_progress"]
        except openai.APIError as exc:
            raise _translate(exc) from exc

    # -- turns ---------------------------------------------------------------

    def run_turn(
        self,
        thread_id: str,
        messages: list[dict],
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
        hooks = hooks or TurnHooks()
        watchdog = _Watchdog(
            lambda run_id: self.cancel(thread_id, run_id),
            self._spawn,
            self._sleep,
            self.run_timeout_s,
        )
        try:
            if stream:
                run, written = self._stream_turn(
                    thread_id, messages, context, hooks, watchdog
                )
            else:
                run = self._poll_turn(thread_id, messages, context, hooks, watchdog)
                written = []
            if not written or run.status != "completed":
                # Poll mode, or a failed stream (it announces no message.incomplete):
                # list what the run wrote.
                written = self._run_messages(thread_id, run.id)
        except Exception as exc:
            self._abandon(thread_id, watchdog.run_id)
            if isinstance(exc, openai.APIError):
                raise _translate(exc) from exc
            raise
        finally:
            watchdog.finish()
        timed_out = watchdog.fired and run.status != "completed"
        return TurnResult(
            status="timeout" if timed_out else run.status,
            messages=[self.to_chat_message(m) for m in written if _text_of(m)],
            error=run.last_error.message if run.last_error else None,
        )

    def cancel(self, thread_id: str, run_id: str) -> bool:
        """Ask the backend to cancel a run; False when it had already ended."""
        try:
            self.client.beta.threads.runs.cancel(run_id, thread_id=thread_id)
        except openai.BadRequestError:
            return False  # already terminal: nothing to stop
        except openai.APIError as exc:
            raise _translate(exc) from exc
        return True

    # -- poll mode -----------------------------------------------------------

    def _poll_turn(self, thread_id, messages, context, hooks, watchdog):
        """Create a run and poll it to the end, answering tool calls on the way."""
        run = self._start_run(
            thread_id,
            lambda: self.client.beta.threads.runs.create(
                thread_id,
                assistant_id=self.info.id,
                additional_messages=[_thread_message(m) for m in messages],
                additional_instructions=context,
            ),
        )
        watchdog.start(run.id)  # first: if on_run fails, the run is still abandoned
        hooks.on_run(run.id)
        return self._poll(thread_id, run, hooks, watchdog)

    def _poll(self, thread_id, run, hooks, watchdog):
        """Poll ``run`` until it ends, answering its tool calls on the way."""
        interval = self.poll_interval_s
        while True:  # the sample's do/while: wait, then look
            if run.status == "requires_action":
                run = self._submit_tool_outputs(thread_id, run, hooks)
            if run.status in TERMINAL_STATUSES or watchdog.gave_up():
                return run
            self._sleep(interval)
            run, hint_s = self._retrieve(thread_id, run.id)
            interval = min(max(interval * POLL_BACKOFF, hint_s), MAX_POLL_INTERVAL_S)

    def _retrieve(self, thread_id: str, run_id: str):
        """Fetch a run and the server's ``openai-poll-after-ms`` hint (seconds)."""
        raw = self.client.beta.threads.runs.with_raw_response.retrieve(
            run_id, thread_id=thread_id
        )
        hint = raw.headers.get("openai-poll-after-ms")
        return raw.parse(), (int(hint) / 1000 if hint and hint.isdigit() else 0.0)

    def _submit_tool_outputs(self, thread_id, run, hooks):
        """Run the requested tools and submit every output in one request."""
        outputs = self._run_tools(run, hooks)
        try:
            return self.client.beta.threads.runs.submit_tool_outputs(
                run.id, thread_id=thread_id, tool_outputs=outputs
            )
        except openai.BadRequestError as exc:
            return self._after_refused_outputs(thread_id, run.id, exc)

    def _after_refused_outputs(self, thread_id: str, run_id: str, refusal: Exception):
        """Return the run when it was stopped, timed out or expired while its tools
        ran (so the outputs came too late); re-raise a genuine refusal."""
        run = self.client.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
        if run.status == "requires_action":
            raise refusal
        return run

    def _run_tools(self, run, hooks) -> list[dict]:
        """Call each function the run asked for; errors become outputs, not raises."""
        outputs = []
        for call in run.required_action.submit_tool_outputs.tool_calls:
            hooks.on_tool(call.function.name, "running")
            output = self.tools.call(call.function.name, call.function.arguments)
            hooks.on_tool(call.function.name, "done")
            outputs.append({"tool_call_id": call.id, "output": output})
        return outputs

    # -- stream mode ---------------------------------------------------------

    def _stream_turn(self, thread_id, messages, context, hooks, watchdog):
        """Stream a run, relaying deltas and answering tool calls.

        Returns the final run and the messages it wrote, taken from the stream's
        ``thread.message.completed``/``incomplete`` events (no extra list request).
        """
        written: list = []

        def start():  # a fresh stream per attempt: the request is sent on entry
            manager = self.client.beta.threads.runs.stream(
                thread_id=thread_id,
                assistant_id=self.info.id,
                additional_messages=[_thread_message(m) for m in messages],
                additional_instructions=context,
            )
            return self._relay(manager, hooks, watchdog, written)

        run = self._start_run(thread_id, start)
        while run is not None and run.status == "requires_action":
            manager = self.client.beta.threads.runs.submit_tool_outputs_stream(
                run_id=run.id,
                thread_id=thread_id,
                tool_outputs=self._run_tools(run, hooks),
            )
            try:
                run = self._relay(manager, hooks, watchdog, written)
            except openai.BadRequestError as exc:  # stopped while the tools ran
                late = self._after_refused_outputs(thread_id, run.id, exc)
                run = self._poll(thread_id, late, hooks, watchdog)
        if run is None:
            raise AssistantError("The assistant's stream ended without a result.")
        return run, written

    def _relay(self, manager, hooks, watchdog, written: list):
        """Pass one stream's events to the hooks; return the last run snapshot."""
        run = None
        with manager as events:
            for event in events:
                if event.event.startswith("thread.run.") and "step" not in event.event:
                    run = event.data
                    watchdog.start(run.id)
                    if event.event == "thread.run.created":
                        hooks.on_run(run.id)
                elif event.event == "thread.message.delta":
                    for text in _delta_texts(event.data.delta.content or ()):
                        hooks.on_delta(event.data.id, text)
                elif event.event in FINISHED_MESSAGE_EVENTS:
                    written.append(event.data)
        return run

    # -- results -------------------------------------------------------------

    def _run_messages(self, thread_id: str, run_id: str) -> list:
        """List the assistant messages a run wrote (partial ones included)."""
        page = self.client.beta.threads.messages.list(
            thread_id, run_id=run_id, order="asc", limit=100
        )
        return page.data

    def to_chat_message(self, message) -> dict:
        """Convert a thread message into the room's chat message shape."""
        if message.role == "user":
            meta = message.metadata or {}
            return {
                "id": meta.get("id") or message.id,
                "user_id": meta.get("user_id", ""),
                "name": meta.get("name", "someone"),
                "content": _text_of(message),
                "role": "user",
                "created_at": int(meta.get("created_at") or message.created_at * 1000),
            }
        chat = {
            "id": message.id,
            "user_id": "assistant",
            "name": self.info.name,
            "content": _text_of(message),
            "role": "assistant",
            "created_at": message.created_at * 1000,
        }
        if message.status == "incomplete":
            reason = getattr(message.incomplete_details, "reason", None)
            chat["status"] = INCOMPLETE_STATUSES.get(reason, "incomplete")
        return chat

    def failure_sentence(self, result: TurnResult) -> str | None:
        """Say in one plain sentence why a turn produced no (complete) reply."""
        template = FAILURE_SENTENCES.get(result.status)
        if template is None:
            return None
        error = result.error or "the model failed."
        return template.format(error=error, timeout=int(self.run_timeout_s))

    def _start_run(self, thread_id: str, start: Callable):
        """Start a run; if a run nobody follows any more blocks the thread (one left
        waiting for tool outputs when the server restarted), cancel it and retry.

        The room's turn worker is the only one running turns on its thread, so an
        active run it did not start is an orphan.
        """
        try:
            return start()
        except openai.BadRequestError as exc:
            found = ACTIVE_RUN_REFUSAL.search(str(exc.message))
            if found is None or not self._is_orphan(thread_id, found[1]):
                raise
            log.warning("cancelling orphaned run %s on a room thread", found[1])
            self._cancel_and_settle(thread_id, found[1])
            return start()

    def _is_orphan(self, thread_id: str, run_id: str) -> bool:
        """Tell whether a run was left waiting for tool outputs by an earlier life of
        this server (a live run of another process is never taken for one)."""
        run = self.client.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
        return run.status == "requires_action" and run.created_at < self._started_at

    def _cancel_and_settle(self, thread_id: str, run_id: str) -> None:
        """Cancel a run and wait (briefly) until it has really ended."""
        self.cancel(thread_id, run_id)
        deadline = time.monotonic() + CANCEL_GRACE_S
        while time.monotonic() < deadline:
            run = self.client.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
            if run.status in TERMINAL_STATUSES:
                return
            self._sleep(self.poll_interval_s)

    def _abandon(self, thread_id: str, run_id: str | None) -> None:
        """Cancel a run this turn can no longer follow, so the thread is not left
        busy; failing that is only logged (the original error matters more)."""
        if run_id is None:
            return
        try:
            self.cancel(thread_id, run_id)
        except AssistantError:
            log.warning("could not cancel abandoned run %s", run_id)

    def _call(self, method: Callable, *args, **kwargs):
        """Call an SDK method, turning its errors into ``AssistantError``."""
        try:
            return method(*args, **kwargs)
        except openai.APIError as exc:
            raise _translate(exc) from exc


class _Watchdog:
    """Cancel a run that outlives the turn timeout, in poll and stream mode alike."""

    def __init__(
        self,
        cancel: Callable[[str], object],
        spawn: Callable | None,
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
            self._spawn(self._watch)

    def gave_up(self) -> bool:
        """Tell whether the cancelled run is still not over after the grace time."""
        return self.fired and time.monotonic() > self.deadline + CANCEL_GRACE_S

    def finish(self) -> None:
        """Stop watching: the turn is over."""
        self.done = True

    def _watch(self) -> None:
        """Sleep in short steps until the turn ends or the deadline passes."""
        while not self.done and time.monotonic() < self.deadline:
            self._sleep(min(0.5, max(self.deadline - time.monotonic(), 0)))
        if self.done:
            return
        self.fired = True
        log.warning("run %s passed the turn timeout; cancelling it", self.run_id)
        try:
            self._cancel(self.run_id)
        except AssistantError:
            log.exception("could not cancel run %s", self.run_id)


def _thread_message(message: dict) -> dict:
    """Shape a chat message as an ``additional_messages`` entry with metadata."""
    return {
        "role": "user",
        "content": message["content"],
        "metadata": {
            "id": message["id"],
            "name": message["name"],
            "user_id": message["user_id"],
            "created_at": str(message["created_at"]),
        },
    }


def _text_of(message) -> str:
    """Join the text blocks of a thread message."""
    return "\n".join(p.text.value for p in message.content if p.type == "text")


def _delta_texts(parts: Iterable) -> Iterable[str]:
    """Yield the text fragments of a message delta's content parts."""
    for part in parts:
        if part.type == "text" and part.text and part.text.value:
            yield part.text.value


def _describe(exc: openai.APIError) -> str:
    """Turn an SDK error into a plain sentence for the room (no secrets)."""
    if isinstance(exc, openai.APIConnectionError):
        return "The assistant backend cannot be reached right now."
    if _is_store_busy(exc):
        return STORE_BUSY
    if isinstance(exc, openai.APIStatusError):
        return f"The assistant backend refused the request ({exc.status_code})."
    return "The assistant backend sent an unexpected answer."


def _translate(exc: openai.APIError) -> AssistantError:
    """Turn an SDK error into the ``AssistantError`` the room acts on."""
    reason = "backend"
    if _is_store_busy(exc):
        reason = "busy"
    elif _is_invalid_request(exc):
        reason = "rejected"  # the request itself was refused; it will be again
    return AssistantError(_describe(exc), reason=reason)


def _is_invalid_request(exc: openai.APIError) -> bool:
    """Tell whether the backend refused what was sent (not who sent it, nor when:
    a bad key, a missing thread or a busy thread are no fault of the messages)."""
    if not isinstance(exc, openai.APIStatusError):
        return False
    busy_thread = ACTIVE_RUN_REFUSAL.search(str(exc.message)) is not None
    return exc.status_code in (400, 413, 422) and not busy_thread


def _is_store_busy(exc: openai.APIError) -> bool:
    """Tell whether the engine answered that its store is busy (503 store_busy)."""
    return isinstance(exc, openai.APIStatusError) and exc.code == "store_busy"

"""ThreadGateway: the only code that calls the backend's ``client.beta.*``.

Each method is one request (or one page walk), typed with the SDK's own models, and
every ``openai.APIError`` becomes an ``AssistantError`` in ``translate_errors`` alone,
so the turn code above never imports ``openai``'s exception classes.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass

import openai
from openai.lib.streaming import AssistantEventHandler
from openai.lib.streaming import AssistantStreamManager
from openai.types.beta import AssistantStreamEvent
from openai.types.beta.threads import Message
from openai.types.beta.threads import Run
from openai.types.beta.threads.run_create_params import AdditionalMessage
from openai.types.beta.threads.run_submit_tool_outputs_params import ToolOutput

from assistant import presentation
from assistant.errors import AssistantError

# The code of the 400 a thread answers while a run holds it (a new run, a message).
RUN_ACTIVE = "run_active"
POLL_AFTER_HEADER = "openai-poll-after-ms"
# A retrieve may ask the backend to hold it until the run stops moving (RFC 7240's
# ``Prefer: wait=N``); a backend that did says so in ``Preference-Applied``.
PREFER_HEADER = "Prefer"
APPLIED_HEADER = "Preference-Applied"
# Never ask a backend to hold a request longer than the client waits for one.
WAIT_MARGIN_S = 5.0
PAGE_SIZE = 100

Events = Iterable[AssistantStreamEvent]


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """Turn an SDK error raised inside into the ``AssistantError`` the room acts on
    (usable as ``with translate_errors():`` and as a decorator)."""
    try:
        yield
    except openai.APIError as exc:
        raise _translate(exc) from exc


@dataclass(frozen=True)
class Poll:
    """One look at a run: the run, the server's hint for the next look (seconds),
    and whether the server held the request until the run stopped moving."""

    run: Run
    after_s: float
    held: bool


class ThreadGateway:
    """Thin, typed calls on threads, messages and runs of one SDK client."""

    def __init__(self, client: openai.OpenAI) -> None:
        self.client = client
        # Whether the backend holds a retrieve that asks it to wait: unknown (None)
        # until its first answer to one says.
        self.holds_retrieves: bool | None = None

    # -- threads -------------------------------------------------------------

    @translate_errors()
    def create_thread(self, room: str) -> str:
        """Create a thread labelled with ``room`` and return its id."""
        return self.client.beta.threads.create(metadata={"room": room}).id

    @translate_errors()
    def thread_exists(self, thread_id: str) -> bool:
        """Tell whether the backend still holds ``thread_id``."""
        try:
            self.client.beta.threads.retrieve(thread_id)
        except openai.NotFoundError:
            return False
        return True

    @translate_errors()
    def delete_thread(self, thread_id: str) -> None:
        """Delete a thread; one already gone is fine."""
        with contextlib.suppress(openai.NotFoundError):
            self.client.beta.threads.delete(thread_id)

    # -- messages ------------------------------------------------------------

    @translate_errors()
    def list_messages(self, thread_id: str) -> list[Message]:
        """Return every message of a thread, oldest first (following every page)."""
        page = self.client.beta.threads.messages.list(
            thread_id, order="asc", limit=PAGE_SIZE
        )
        return list(page)  # iterating fetches the further pages, inside the guard

    @translate_errors()
    def add_message(self, thread_id: str, message: AdditionalMessage) -> None:
        """Add one message to a thread, without a run."""
        self.client.beta.threads.messages.create(thread_id, **message)

    @translate_errors()
    def list_run_messages(self, thread_id: str, run_id: str) -> list[Message]:
        """Return the messages one run wrote, oldest first (one page is plenty)."""
        page = self.client.beta.threads.messages.list(
            thread_id, run_id=run_id, order="asc", limit=PAGE_SIZE
        )
        return page.data

    # -- runs ----------------------------------------------------------------

    @translate_errors()
    def create_run(
        self,
        thread_id: str,
        assistant_id: str,
        messages: list[AdditionalMessage],
        instructions: str,
    ) -> Run:
        """Start a run over ``messages`` added in the same request."""
        return self.client.beta.threads.runs.create(
            thread_id,
            assistant_id=assistant_id,
            additional_messages=messages,
            additional_instructions=instructions,
        )

    def stream_run(
        self,
        thread_id: str,
        assistant_id: str,
        messages: list[AdditionalMessage],
        instructions: str,
    ) -> contextlib.AbstractContextManager[Events]:
        """Open a streamed run like ``create_run``; the request is sent on entry."""
        manager = self.client.beta.threads.runs.stream(
            thread_id=thread_id,
            assistant_id=assistant_id,
            additional_messages=messages,
            additional_instructions=instructions,
        )
        return _opened(manager)

    @translate_errors()
    def retrieve_run(self, thread_id: str, run_id: str) -> Run:
        """Fetch a run."""
        return self.client.beta.threads.runs.retrieve(run_id, thread_id=thread_id)

    @translate_errors()
    def latest_run(self, thread_id: str) -> Run | None:
        """Return the thread's newest run (its active one, if any), or None."""
        page = self.client.beta.threads.runs.list(thread_id, limit=1)
        return page.data[0] if page.data else None

    @translate_errors()
    def poll_run(self, thread_id: str, run_id: str, wait_s: float) -> Poll:
        """Fetch a run, asking the backend to hold the answer up to ``wait_s``
        until the run stops moving; return it with the server's hints."""
        wait = max(1, math.ceil(min(wait_s, self._longest_wait_s())))
        raw = self.client.beta.threads.runs.with_raw_response.retrieve(
            run_id,
            thread_id=thread_id,
            extra_headers={PREFER_HEADER: f"wait={wait}"},
        )
        held = "wait" in raw.headers.get(APPLIED_HEADER, "")
        self.holds_retrieves = held
        hint = raw.headers.get(POLL_AFTER_HEADER)
        after_s = int(hint) / 1000 if hint and hint.isdigit() else 0.0
        return Poll(raw.parse(), after_s, held)

    def _longest_wait_s(self) -> float:
        """Return how long a request may be held before the client gives up on it."""
        timeout = self.client.timeout
        if isinstance(timeout, int | float):
            return max(float(timeout) - WAIT_MARGIN_S, 1.0)
        read = getattr(timeout, "read", None)
        return math.inf if read is None else max(read - WAIT_MARGIN_S, 1.0)

    @translate_errors()
    def cancel_run(self, thread_id: str, run_id: str) -> bool:
        """Ask the backend to cancel a run; False when it had already ended."""
        try:
            self.client.beta.threads.runs.cancel(run_id, thread_id=thread_id)
        except openai.BadRequestError:
            return False  # already terminal: nothing to stop
        return True

    @translate_errors()
    def submit_tool_outputs(
        self, thread_id: str, run_id: str, outputs: list[ToolOutput]
    ) -> Run:
        """Hand a waiting run its tool outputs, all in one request."""
        return self.client.beta.threads.runs.submit_tool_outputs(
            run_id, thread_id=thread_id, tool_outputs=outputs
        )

    def submit_tool_outputs_stream(
        self, thread_id: str, run_id: str, outputs: list[ToolOutput]
    ) -> contextlib.AbstractContextManager[Events]:
        """Like ``submit_tool_outputs``, streaming the rest of the run."""
        manager = self.client.beta.threads.runs.submit_tool_outputs_stream(
            run_id=run_id, thread_id=thread_id, tool_outputs=outputs
        )
        return _opened(manager)


@contextlib.contextmanager
def _opened(manager: AssistantStreamManager[AssistantEventHandler]) -> Iterator[Events]:
    """Enter a stream and yield its events; an SDK error raised while they are read
    (in the caller's ``with`` body) is thrown in here, and so translated too."""
    with translate_errors(), manager as events:
        yield events


def _describe(exc: openai.APIError) -> str:
    """Turn an SDK error into a plain sentence for the room (no secrets)."""
    if isinstance(exc, openai.APIConnectionError):
        return presentation.BACKEND_UNREACHABLE
    if _is_store_busy(exc):
        return presentation.STORE_BUSY
    if isinstance(exc, openai.APIStatusError):
        return presentation.BACKEND_REFUSED.format(status=exc.status_code)
    return presentation.BACKEND_UNEXPECTED


def _translate(exc: openai.APIError) -> AssistantError:
    """Turn an SDK error into the ``AssistantError`` the room acts on."""
    reason = "backend"
    if _is_store_busy(exc):
        reason = "busy"
    elif _is_invalid_request(exc):
        reason = "rejected"  # the request itself was refused; it will be again
    status = exc.status_code if isinstance(exc, openai.APIStatusError) else None
    return AssistantError(
        _describe(exc), reason=reason, backend_status=status, code=exc.code
    )


def _is_invalid_request(exc: openai.APIError) -> bool:
    """Tell whether the backend refused what was sent (not who sent it, nor when:
    a bad key, a missing thread or a busy thread are no fault of the messages)."""
    if not isinstance(exc, openai.APIStatusError):
        return False
    busy_thread = exc.code == RUN_ACTIVE
    return exc.status_code in (400, 413, 422) and not busy_thread


def _is_store_busy(exc: openai.APIError) -> bool:
    """Tell whether the engine answered that its store is busy (503 store_busy)."""
    return isinstance(exc, openai.APIStatusError) and exc.code == "store_busy"

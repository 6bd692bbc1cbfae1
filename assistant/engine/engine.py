"""The ``Engine`` facade: every operation of the Assistants API the routes call.

State changes that must be atomic (the busy-thread check and the insert that follows
it, run status transitions) happen under one lock shared with the runner.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from assistant.statuses import CANCELLABLE_RUN_STATUSES

from . import bodies
from . import objects
from . import validation as v
from .errors import EngineError
from .errors import not_found
from .providers import select_provider
from .providers.base import Provider
from .providers.demo import DemoProvider
from .runner import RunRunner
from .runner import Subscription
from .store import LAPSE_S
from .store import Offload
from .store import Store
from .store import StoreBusyError

log = logging.getLogger(__name__)

RunReply = tuple[dict[str, Any], Subscription | None]
# The error code of a refusal because the thread has an active run.  OpenAI sent
# null there; clients that need to tell this refusal apart (the service finds an
# orphaned run with it) read the code instead of parsing the wording.
RUN_ACTIVE = "run_active"
# A run in one of these is still moving on its own: a retrieve asked to wait
# (``Prefer: wait=N``) is held while the run is in one of them.
MOVING_RUN_STATUSES = frozenset({"queued", "in_progress", "cancelling"})
# The longest a retrieve is held, whatever it asks (the SDK's default timeout).
MAX_WAIT_S = 600.0
# A held retrieve looks at the store this often too: a run another process
# executes (shared mode) changes without telling this one.
RECHECK_S = 1.0


class Engine:
    """The Assistants API over a store and a run runner (``create_api`` serves it)."""

    def __init__(
        self,
        store: Store,
        *,
        default_provider: Provider | None = None,
        demo_delay_ms: int = 0,
        spawn: Callable[..., Any] | None = None,
        run_expiry_s: int = 600,
        poll_after_ms: int | None = None,
        context_chars: int | None = None,
    ) -> None:
        self.store = store
        self.lock = threading.RLock()
        self.run_expiry_s = run_expiry_s
        self.poll_after_ms = poll_after_ms
        demo = DemoProvider(demo_delay_ms)
        self.runner = RunRunner(
            store,
            self.lock,
            lambda model: select_provider(model, default_provider, demo),
            spawn,
            context_chars,
        )
        if store.shared:
            self.runner.start_background(self._keep_alive)

    def _keep_alive(self) -> None:
        """Renew this process's heartbeat and fail the runs of processes whose
        heartbeat lapsed (shared stores), until the engine closes."""
        while not self.runner.closed:
            self.runner.nap(self.store.beat_s)
            if self.runner.closed:
                return
            try:
                self.store.beat()
                with self.lock:
                    self.store.recover(int(time.time()))
            except StoreBusyError as exc:
                # Try again at the next beat; one missed beat is not a lapse.
                log.warning("Heartbeat skipped: %s", exc)

    def close(self) -> None:
        """Stop accepting work, cancel in-flight runs and close the store."""
        self.runner.close()
        with self.lock:
            self.store.close()

    def _check_open(self) -> None:
        """Refuse new work once the engine is closing."""
        if self.runner.closed:
            raise EngineError(
                "The engine is shutting down.", status=503, type="server_error"
            )

    # Assistants ---------------------------------------------------------------

    def create_assistant(self, body: dict) -> dict[str, Any]:
        """Create an assistant."""
        self._check_open()
        fields = bodies.assistant_fields(body, partial=False)
        return self.store.insert("assistants", objects.assistant(fields))

    def get_assistant(self, assistant_id: str) -> dict[str, Any]:
        """Return an assistant or raise 404."""
        assistant = self.store.get("assistants", assistant_id)
        if assistant is None:
            raise not_found("assistant", assistant_id)
        return assistant

    def modify_assistant(self, assistant_id: str, body: dict) -> dict[str, Any]:
        """Change the fields a modify body names."""
        fields = bodies.assistant_fields(body, partial=True)
        with self.lock:
            assistant = self.get_assistant(assistant_id)
            assistant.update(fields)
            return self.store.update("assistants", assistant)

    def list_assistants(self, args: dict) -> dict[str, Any]:
        """Return a page of assistants."""
        return self._page("assistants", "assistant", args, {})

    def delete_assistant(self, assistant_id: str) -> dict[str, Any]:
        """Delete an assistant; runs already made keep their copy of its settings."""
        with self.lock:
            self.get_assistant(assistant_id)
            self.store.delete("assistants", assistant_id)
        return {"id": assistant_id, "object": "assistant.deleted", "deleted": True}

    # Threads ------------------------------------------------------------------

    def create_thread(self, body: dict) -> dict[str, Any]:
        """Create a thread, with its initial ``messages`` if any."""
        self._check_open()
        thread, messages = bodies.thread_fields(body)
        with self.lock:
            self._insert_thread(thread, messages)
        return thread

    def _insert_thread(self, thread: dict[str, Any], messages: list[dict]) -> None:
        """Store a new thread and its first messages."""
        self.store.insert("threads", thread)
        for fields in messages:
            self._insert_message(thread["id"], fields)

    def modify_thread(self, thread_id: str, body: dict) -> dict[str, Any]:
        """Change a thread's ``metadata`` and ``tool_resources``."""
        fields = {
            "metadata": v.metadata(body),
            "tool_resources": v.field(body, "tool_resources", "object"),
        }
        with self.lock:
            thread = self.get_thread(thread_id)
            thread.update(
                {k: value for k, value in fields.items() if value is not None}
            )
            return self.store.update("threads", thread)

    def get_thread(self, thread_id: str) -> dict[str, Any]:
        """Return a thread or raise 404."""
        thread = self.store.get("threads", thread_id)
        if thread is None:
            raise not_found("thread", thread_id)
        return thread

    def delete_thread(self, thread_id: str) -> dict[str, Any]:
        """Delete a thread and everything in it, cancelling its active run first."""
        with self.lock:
            self.get_thread(thread_id)
            active = self.store.active_run(thread_id)
            if active and active["status"] != "cancelling":
                self._cancel(active)
            self.store.delete_thread(thread_id)
        return {"id": thread_id, "object": "thread.deleted", "deleted": True}

    # Messages -----------------------------------------------------------------

    def create_message(self, thread_id: str, body: dict) -> dict[str, Any]:
        """Add a message to an idle thread."""
        self._check_open()
        fields = bodies.message_fields(body)
        with self.lock:
            self.get_thread(thread_id)
            active = self._active_run(thread_id)
            if active:
                raise EngineError(
                    f"Can't add messages to {thread_id} while a run {active['id']}"
                    " is active.",
                    code=RUN_ACTIVE,
                )
            return self._insert_message(thread_id, fields)

    def _insert_message(self, thread_id: str, fields: dict) -> dict[str, Any]:
        """Store a new message in a thread."""
        role, content = fields["role"], fields["content"]
        extra = {key: fields[key] for key in ("attachments", "metadata")}
        created_ms = self.store.message_clock(thread_id, objects.now_ms())
        message = objects.message(thread_id, role, content, created_ms, **extra)
        return self.store.insert_message(message, created_ms)

    def modify_message(
        self, thread_id: str, message_id: str, body: dict
    ) -> dict[str, Any]:
        """Replace a message's ``metadata`` (allowed while a run is active too)."""
        metadata = v.metadata(body)
        with self.lock:
            message = self.get_message(thread_id, message_id)
            if metadata is not None:
                message["metadata"] = metadata
            return self.store.update("messages", message)

    def delete_message(self, thread_id: str, message_id: str) -> dict[str, Any]:
        """Delete a message of an idle thread."""
        with self.lock:
            self.get_message(thread_id, message_id)
            active = self._active_run(thread_id)
            if active:
                # A run reads the thread while it works (and may be writing this
                # very message): deleting under it is refused like adding.
                raise EngineError(
                    f"Can't delete messages in {thread_id} while a run"
                    f" {active['id']} is active.",
                    code=RUN_ACTIVE,
                )
            self.store.delete("messages", message_id)
        return {"id": message_id, "object": "thread.message.deleted", "deleted": True}

    def get_message(self, thread_id: str, message_id: str) -> dict[str, Any]:
        """Return a message of a thread or raise 404."""
        self.get_thread(thread_id)
        message = self.store.get("messages", message_id)
        if message is None or message["thread_id"] != thread_id:
            raise not_found("message", message_id)
        return message

    def list_messages(self, thread_id: str, args: dict) -> dict[str, Any]:
        """Return a page of a thread's messages, optionally of one run."""
        self.get_thread(thread_id)
        filters = {"thread_id": thread_id}
        if args.get("run_id"):
            filters["run_id"] = args["run_id"]
        return self._page("messages", "message", args, filters)

    def _page(self, kind: str, label: str, args: dict, filters: dict) -> dict[str, Any]:
        """Return a list object for one page of ``kind``."""
        limit, order, after, before = v.list_query(args)
        cursors = {}
        for name, obj_id in (("after", after), ("before", before)):
            if obj_id is not None:
                cursors[name] = self.store.seq_of(kind, obj_id)
                if cursors[name] is None:
                    raise EngineError(
                        f"No {label} found with id '{obj_id}'.", param=name
                    )
        data, has_more = self.store.page(
            kind, limit=limit, order=order, filters=filters, **cursors
        )
        return {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": has_more,
        }

    # Runs ---------------------------------------------------------------------

    def create_run(self, thread_id: str, body: dict) -> RunReply:
        """Create a run (after its ``additional_messages``) and start it."""
        self._check_open()
        assistant_id = v.field(body, "assistant_id", "string", required=True)
        stream = v.field(body, "stream", "boolean")
        extra_messages = bodies.messages_list(body, "additional_messages")
        with self.lock:
            self.get_thread(thread_id)
            fields = bodies.run_fields(body, self.get_assistant(assistant_id))
            active = self._active_run(thread_id)
            if active:
                raise EngineError(
                    f"Thread {thread_id} already has an active run {active['id']}.",
                    code=RUN_ACTIVE,
                )
            for message in extra_messages:
                self._insert_message(thread_id, message)
            return self._start_run(thread_id, fields, stream, [])

    def create_thread_and_run(self, body: dict) -> RunReply:
        """Create a thread from ``thread`` and a run on it, in one request."""
        self._check_open()
        assistant_id = v.field(body, "assistant_id", "string", required=True)
        stream = v.field(body, "stream", "boolean")
        v.field(body, "tool_resources", "object")  # for file tools, which we lack
        thread_body = v.field(body, "thread", "object") or {}
        thread, messages = bodies.prefixed(bodies.thread_fields, thread_body, "thread")
        with self.lock:
            fields = bodies.run_fields(body, self.get_assistant(assistant_id))
            self._insert_thread(thread, messages)
            created = [("thread.created", thread)]
            return self._start_run(thread["id"], fields, stream, created)

    def _start_run(
        self,
        thread_id: str,
        fields: dict[str, Any],
        stream: bool | None,
        first: list[tuple[str, dict]],
    ) -> RunReply:
        """Store a queued run and start it; a stream opens with ``first`` events."""
        run = self.store.insert(
            "runs", objects.run(thread_id, fields, self.run_expiry_s)
        )
        subscription = self._subscribe(
            run["id"],
            stream,
            [*first, ("thread.run.created", run), ("thread.run.queued", run)],
        )
        self.runner.start(run["id"])
        return run, subscription

    def _subscribe(
        self, run_id: str, stream: bool | None, first: list[tuple[str, dict]]
    ) -> Subscription | None:
        """Subscribe a streaming request and queue its first events at once."""
        if not stream:
            return None
        subscription = self.runner.subscribe(run_id)
        for event, data in first:
            self.runner.publish(run_id, event, data)
        return subscription

    def get_run(self, thread_id: str, run_id: str) -> dict[str, Any]:
        """Return a run of a thread (expiring it if overdue) or raise 404."""
        self.get_thread(thread_id)
        run = self.store.get("runs", run_id)
        if run is None or run["thread_id"] != thread_id:
            raise not_found("run", run_id)
        return self.runner.expire_if_due(run)

    def wait_for_run(
        self, thread_id: str, run_id: str, wait_s: float
    ) -> dict[str, Any]:
        """Return a run once it stops moving on its own (it waits for tool outputs,
        or it ended), or after ``wait_s`` (at most ``MAX_WAIT_S``), whichever
        comes first."""
        deadline = time.monotonic() + min(wait_s, MAX_WAIT_S)
        with self.runner.watch(run_id) as changed:
            run = self.get_run(thread_id, run_id)
            while run["status"] in MOVING_RUN_STATUSES:
                left = deadline - time.monotonic()
                if left <= 0 or self.runner.closed:
                    break
                changed.wait(min(left, RECHECK_S))
                changed.clear()
                run = self.get_run(thread_id, run_id)
        return run

    def list_runs(self, thread_id: str, args: dict) -> dict[str, Any]:
        """Return a page of a thread's runs, newest first by default."""
        self.get_thread(thread_id)
        page = self._page("runs", "run", args, {"thread_id": thread_id})
        page["data"] = [self.runner.expire_if_due(run) for run in page["data"]]
        return page

    def modify_run(self, thread_id: str, run_id: str, body: dict) -> dict[str, Any]:
        """Replace a run's ``metadata`` (in any status)."""
        metadata = v.metadata(body)
        with self.lock:
            run = self.get_run(thread_id, run_id)
            if metadata is not None:
                run["metadata"] = metadata
            return self.store.update("runs", run)

    # Run steps ----------------------------------------------------------------

    def list_steps(self, thread_id: str, run_id: str, args: dict) -> dict[str, Any]:
        """Return a page of a run's steps, newest first by default."""
        self.get_run(thread_id, run_id)
        return self._page("steps", "step", args, {"run_id": run_id})

    def get_step(self, thread_id: str, run_id: str, step_id: str) -> dict[str, Any]:
        """Return a step of a run or raise 404."""
        self.get_run(thread_id, run_id)
        step = self.store.get("steps", step_id)
        if step is None or step["run_id"] != run_id:
            raise not_found("run step", step_id)
        return step

    def _active_run(self, thread_id: str) -> dict[str, Any] | None:
        """Return the thread's active run, after expiring it if overdue."""
        active = self.store.active_run(thread_id)
        if active and self.runner.expire_if_due(active)["status"] == "expired":
            return None
        return active

    def submit_tool_outputs(self, thread_id: str, run_id: str, body: dict) -> RunReply:
        """Complete the waiting tool step with its outputs and resume the run."""
        self._check_open()
        stream = v.field(body, "stream", "boolean")
        with self.lock:
            run = self.get_run(thread_id, run_id)
            if run["status"] != "requires_action":
                raise EngineError(
                    f"Runs in status '{run['status']}' do not accept tool outputs."
                )
            calls = run["required_action"]["submit_tool_outputs"]["tool_calls"]
            outputs = bodies.tool_outputs(body, [call["id"] for call in calls])
            step = self._complete_tool_step(run_id, outputs)
            run.update(status="queued", required_action=None)
            # This process executes the rest of the run (maybe not the first's).
            self.store.update("runs", run, claim=True)
            subscription = self._subscribe(
                run_id,
                stream,
                [("thread.run.step.completed", step), ("thread.run.queued", run)],
            )
            self.runner.start(run_id)
        return run, subscription

    def _complete_tool_step(
        self, run_id: str, outputs: dict[str, str]
    ) -> dict[str, Any]:
        """Store the outputs in the open tool step and mark it completed."""
        steps = self.store.select("steps", run_id=run_id, status="in_progress")
        step = steps[-1]
        for call in step["step_details"]["tool_calls"]:
            call["function"]["output"] = outputs[call["id"]]
        step.update(status="completed", completed_at=objects.now())
        return self.store.update("steps", step)

    def cancel_run(self, thread_id: str, run_id: str) -> dict[str, Any]:
        """Ask an active run to stop; it answers ``cancelling`` at once."""
        with self.lock:
            run = self.get_run(thread_id, run_id)
            if run["status"] not in CANCELLABLE_RUN_STATUSES:
                raise EngineError(f"Cannot cancel run with status '{run['status']}'.")
            return self._cancel(run)

    def _cancel(self, run: dict[str, Any]) -> dict[str, Any]:
        """Mark a run ``cancelling``, announce it and flag its execution."""
        waiting = run["status"] == "requires_action"
        run["status"] = "cancelling"
        # A waiting run is closed by a task of this process from now on.
        self.store.update("runs", run, claim=waiting)
        self.runner.publish(run["id"], "thread.run.cancelling", run)
        self.runner.cancel(run["id"], waiting=waiting)
        return run


def create_engine(
    db_path: str = ":memory:",
    default_provider: Provider | None = None,
    demo_delay_ms: int = 0,
    spawn: Callable[..., Any] | None = None,
    run_expiry_s: int = 600,
    poll_after_ms: int | None = None,
    offload: Offload | None = None,
    lapse_s: float = LAPSE_S,
    context_chars: int | None = None,
) -> Engine:
    """Open (or create) the store at ``db_path`` (a SQLite path or a
    ``postgresql://`` URL) and return an engine over it.

    :param offload: runs each SQLite call as ``offload(fn, *args)``, e.g.
        ``eventlet.tpool.execute``, so a slow or locked file never blocks the hub.
    :param lapse_s: when another process's runs count as abandoned (PostgreSQL).
    :param context_chars: the most of a thread (characters) any model is shown
        (``MODEL_CONTEXT_CHARS``); a run reads no older history.  None: all of it.
    :raises StoreInUseError: when another process or app has ``db_path`` open.
    """
    return Engine(
        Store(db_path, offload=offload, lapse_s=lapse_s),
        default_provider=default_provider,
        demo_delay_ms=demo_delay_ms,
        spawn=spawn,
        run_expiry_s=run_expiry_s,
        poll_after_ms=poll_after_ms,
        context_chars=context_chars,
    )

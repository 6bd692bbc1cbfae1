"""Run runs in background tasks and relay their events to SSE subscribers.

A run executes in its own task (``spawn``); a streaming request only subscribes to
its events, so a client that drops the stream does not stop the run.  Only
``time.sleep``, ``threading`` and ``queue`` are used, which eventlet or gevent
monkey-patching turns green.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

from web import sse

from .execution import RunExecution
from .providers.base import Provider
from .store import Store

log = logging.getLogger(__name__)

DONE_FRAME = sse.text_frame("done", "[DONE]")  # the spec's DoneEvent, not JSON
HEARTBEAT_FRAME = sse.comment("keep-alive")
Spawn = Callable[..., Any]


def thread_spawn(fn: Callable[..., Any], *args: Any) -> None:
    """Start ``fn(*args)`` in a daemon thread."""
    threading.Thread(target=fn, args=args, daemon=True).start()


class Subscription:
    """The events of one run, as SSE frames, for one streaming response."""

    def __init__(self, runner: RunRunner, run_id: str) -> None:
        self.run_id = run_id
        self.queue: queue.Queue[str] = queue.Queue()
        self._runner = runner

    def frames(self, heartbeat_s: float = 15.0) -> Iterator[str]:
        """Yield frames until ``done``; a keep-alive comment while the run is quiet."""
        try:
            while True:
                try:
                    frame = self.queue.get(timeout=heartbeat_s)
                except queue.Empty:
                    yield HEARTBEAT_FRAME
                    continue
                yield frame
                if frame == DONE_FRAME:
                    return
        finally:
            self._runner.unsubscribe(self)


def _is_run_event(event: str) -> bool:
    """Tell whether an event carries the run itself (``thread.run.completed``)."""
    return event.startswith("thread.run.") and not event.startswith("thread.run.step")


class RunRunner:
    """Executes runs in background tasks and publishes their events."""

    def __init__(
        self,
        store: Store,
        lock: threading.RLock,
        provider_for: Callable[[str], Provider],
        spawn: Spawn | None = None,
        context_chars: int | None = None,
    ) -> None:
        self.store = store
        self.context_chars = context_chars
        self.lock = lock
        self.provider_for = provider_for
        self._spawn = spawn or thread_spawn
        self._subscribers: dict[str, list[Subscription]] = {}
        self._watchers: dict[str, list[threading.Event]] = {}
        self._cancel_flags: dict[str, threading.Event] = {}
        self._tasks = 0
        self._idle = threading.Condition()
        self.closed = False

    # Events -------------------------------------------------------------------

    def subscribe(self, run_id: str) -> Subscription:
        """Return a new subscription to a run's future events."""
        subscription = Subscription(self, run_id)
        with self.lock:
            self._subscribers.setdefault(run_id, []).append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop delivering events to a subscription."""
        with self.lock:
            subs = self._subscribers.get(subscription.run_id, [])
            if subscription in subs:
                subs.remove(subscription)
            if not subs:
                self._subscribers.pop(subscription.run_id, None)

    @contextlib.contextmanager
    def watch(self, run_id: str) -> Iterator[threading.Event]:
        """Yield an event set whenever the run itself changes (its ``thread.run.*``
        events, not its steps' or messages'); register before reading the run, so
        no change slips between the read and the wait."""
        changed = threading.Event()
        with self.lock:
            self._watchers.setdefault(run_id, []).append(changed)
        try:
            yield changed
        finally:
            with self.lock:
                watchers = self._watchers.get(run_id, [])
                watchers.remove(changed)
                if not watchers:
                    self._watchers.pop(run_id, None)

    def publish(self, run_id: str, event: str, data: Any) -> None:
        """Send an event (``done`` ends the stream) to the run's subscribers, and
        wake whoever watches the run when the run itself changed."""
        with self.lock:
            subs = list(self._subscribers.get(run_id, ()))
            if event == "done" or _is_run_event(event):
                for changed in self._watchers.get(run_id, ()):
                    changed.set()
        if not subs:
            return
        frame = DONE_FRAME if event == "done" else sse.frame(event, data)
        for subscription in subs:
            subscription.queue.put(frame)

    # Tasks --------------------------------------------------------------------

    def start(self, run_id: str) -> None:
        """Execute a queued run in a background task."""
        self._cancel_flags.setdefault(run_id, threading.Event())
        self._start_task(self._execute, run_id)

    def cancel(self, run_id: str, *, waiting: bool) -> None:
        """Ask a run to stop; a run ``waiting`` for tool outputs is closed by a task."""
        flag = self._cancel_flags.setdefault(run_id, threading.Event())
        flag.set()
        if waiting:
            self._start_task(self._finish_waiting_cancel, run_id)

    def schedule_expiry(self, run_id: str, expires_at: int) -> None:
        """Expire the run if it still waits for tool outputs at ``expires_at``."""
        self._start_task(self._expiry_timer, run_id, expires_at)

    def expire_if_due(self, run: dict[str, Any]) -> dict[str, Any]:
        """Expire a ``requires_action`` run past its ``expires_at``; return the run."""
        if run["status"] != "requires_action" or time.time() < run["expires_at"]:
            return run
        with self.lock:
            current = self.store.get("runs", run["id"])
            if current and current["status"] == "requires_action":
                return self._execution(run["id"]).expire()
        return current or run

    def start_background(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` (a loop that ends when the runner closes) as a task."""
        self._start_task(fn)

    def nap(self, seconds: float) -> None:
        """Sleep up to ``seconds`` in short naps, waking early when closed."""
        deadline = time.monotonic() + seconds
        while not self.closed and time.monotonic() < deadline:
            time.sleep(min(0.25, max(0.0, deadline - time.monotonic())))

    def close(self, timeout_s: float = 5.0) -> None:
        """Cancel in-flight runs and wait (bounded) for their tasks to end."""
        with self.lock:
            self.closed = True
            flags = list(self._cancel_flags.values())
        for flag in flags:
            flag.set()
        deadline = time.monotonic() + timeout_s
        with self._idle:
            while self._tasks and time.monotonic() < deadline:
                self._idle.wait(0.05)

    def _start_task(self, fn: Callable[..., None], *args: Any) -> None:
        """Spawn ``fn`` as a counted task so ``close`` can wait for it."""
        with self._idle:
            self._tasks += 1
        self._spawn(self._task, fn, *args)

    def _task(self, fn: Callable[..., None], *args: Any) -> None:
        """Run one task, logging (never raising) what escapes it."""
        try:
            fn(*args)
        except Exception:
            log.exception("Engine task %s failed", getattr(fn, "__name__", fn))
        finally:
            with self._idle:
                self._tasks -= 1
                self._idle.notify_all()

    def _execution(self, run_id: str) -> RunExecution:
        """Return the execution state object of a run."""
        flag = self._cancel_flags.setdefault(run_id, threading.Event())
        return RunExecution(
            run_id,
            flag,
            store=self.store,
            lock=self.lock,
            publisher=self,
            provider_for=self.provider_for,
            context_chars=self.context_chars,
        )

    def _execute(self, run_id: str) -> None:
        """Take a queued run to its next resting state."""
        try:
            execution = self._execution(run_id)
            execution.execute()
            if execution.waiting_until is not None:
                self.schedule_expiry(run_id, execution.waiting_until)
        except Exception:
            # Even closing the run failed (the store is locked, say): end its
            # streams anyway, or their clients would wait forever.
            self.publish(run_id, "done", None)
            raise
        finally:
            self._forget(run_id)

    def _finish_waiting_cancel(self, run_id: str) -> None:
        """Close a cancelled run that was waiting for tool outputs."""
        try:
            self._execution(run_id).finish_cancel()
        finally:
            self._forget(run_id)

    def _forget(self, run_id: str) -> None:
        """Drop a run's cancel flag once nothing executes it."""
        with self.lock:
            run = self.store.get("runs", run_id) if not self.closed else None
            if run is None or run["status"] != "queued":
                self._cancel_flags.pop(run_id, None)

    def _expiry_timer(self, run_id: str, expires_at: int) -> None:
        """Wait for ``expires_at`` in short naps (to notice ``close``), then expire."""
        while not self.closed and time.time() < expires_at:
            time.sleep(min(0.25, max(0.0, expires_at - time.time())))
        if not self.closed:
            run = self.store.get("runs", run_id)
            if run:
                self.expire_if_due(run)

"""Wire the operators' view into an app: metrics, the turn log, readiness."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from flask import Flask

from ops.metrics import Metrics
from ops.metrics import ReadAtScrape
from ops.metrics import get_metrics
from ops.metrics import init_metrics
from ops.readiness import init_readiness
from ops.readiness import warn_if_not_ready
from ops.turnlog import TurnObserver
from ops.turnlog import count_backend_request

# What assistant/setup.py reads to attach our counters to the SDK client and the
# model provider, without importing this package.
HOOKS = "threadroom.hooks"
OBSERVER = "threadroom.turn_observer"


def init_observers(app: Flask) -> Metrics:
    """Create the app's metrics and turn observer; call before the sockets and
    the assistant are built, which take hooks from here."""
    metrics = init_metrics(app)
    app.extensions[OBSERVER] = TurnObserver(metrics)
    app.extensions[HOOKS] = {
        "on_request": count_backend_request,
        "on_model_error": metrics.model_error,
    }
    return metrics


def observe_turns(app: Flask, emit: Callable) -> Callable:
    """Return the room's ``emit``, watched for the per-turn log line."""
    observer = app.extensions.get(OBSERVER)
    return observer.wrap(emit) if observer else emit


def init_ops(app: Flask, rooms, server) -> None:
    """Read live counts at scrape time and check readiness once at start.

    :param rooms: the app's rooms (open rooms, limit refusals).
    :param server: the app's python-socketio server (connections).
    """
    scrape = ReadAtScrape()
    scrape.gauge(
        "threadroom_connections",
        "Socket.IO connections to the chat namespace.",
        lambda: sum(1 for _ in server.manager.get_participants("/", None)),
    )
    scrape.gauge("threadroom_rooms", "Rooms open in this process.", rooms.state.count)
    scrape.counter(
        "threadroom_limit_refusals",
        "Actions refused by a limit (rates, queues, rooms, members, connections).",
        lambda: rooms.limits.refusals,
    )
    engine = app.extensions.get("threadroom.engine")
    db_path = app.config["ENGINE_DB"]
    offload = app.extensions.get("threadroom.offload") or _call
    # The file count reads SQLite; on PostgreSQL (DATABASE_URL) ENGINE_DB is unused.
    sqlite_file = db_path not in ("", ":memory:") and not app.config["DATABASE_URL"]
    if engine is not None and sqlite_file:
        scrape.labelled_gauge(
            "threadroom_engine_runs",
            "Runs in the embedded engine's store, by status.",
            "status",
            lambda: offload(count_runs, db_path),
        )
    get_metrics(app).watch(scrape)
    store_read = None
    if engine is not None:
        assistant_id = app.extensions["threadroom.assistant"].info.id

        def store_read():  # one small query on the engine's own connection
            return engine.store.get("assistants", assistant_id)

    warn_if_not_ready(init_readiness(app, store_read))


def count_runs(db_path: str) -> dict[str, int]:
    """Count the engine's runs by status, on a read-only connection of its own
    (the engine's connection is its own; a scrape must never write)."""
    uri = Path(db_path).resolve().as_uri() + "?mode=ro"
    with closing(sqlite3.connect(uri, uri=True, timeout=1)) as db:
        rows = db.execute("SELECT status, COUNT(*) FROM runs GROUP BY status")
        return {str(status): count for status, count in rows}


def _call(fn: Callable, *args):
    """Run ``fn`` here (no thread pool configured)."""
    return fn(*args)

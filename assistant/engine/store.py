"""Persistence for the engine's assistants, threads, messages, runs and steps, on
SQLite (single mode) or PostgreSQL (``DATABASE_URL``, shared mode).

Each object is kept in its wire shape as a JSON column, next to the few columns the
engine queries on.  One global sequence orders every insert, so a thread's history
(messages and run steps interleaved) replays in exactly the order it happened.

Every call goes through ``storage.database.Database``.  One process owns a SQLite
file at a time (a lock file beside it), so at start every run left active is a dead
process's.  On PostgreSQL several processes share the store: each run records the
process that executes it (its owner), each process renews a heartbeat row, and
only runs whose owner's heartbeat lapsed are failed, never a live process's.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterator
from typing import Any

from filelock import FileLock
from filelock import Timeout

from assistant.statuses import ACTIVE_RUN_STATUSES
from assistant.statuses import TERMINAL_RUN_STATUSES
from storage.database import BUSY_TIMEOUT_S
from storage.database import Offload
from storage.database import Statement
from storage.database import describe
from storage.database import is_postgres_url
from storage.database import open_database
from storage.sqlite import IN_MEMORY

log = logging.getLogger(__name__)

KINDS = ("assistants", "threads", "messages", "runs", "steps")
RESTART_ERROR = {
    "code": "server_error",
    "message": "The server restarted while this run was in progress.",
}

# A heartbeat older than LAPSE_S means its process is gone, and the runs it owned
# are failed by whichever process notices first.  Each process renews its own
# three times per lapse, so one late beat is never taken for a death.
LAPSE_S = 15.0
# Heartbeat rows of processes gone this long are deleted.
FORGET_BEATS_S = 86400

# Who executes each run, and when each process last said it was alive.
_OWNERSHIP_SQL = (
    "CREATE TABLE IF NOT EXISTS run_owners"
    " (run_id TEXT PRIMARY KEY, owner TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS process_beats"
    " (owner TEXT PRIMARY KEY, beat_at DOUBLE PRECISION NOT NULL)",
)

# When each message was made, in milliseconds: kept beside the wire object (whose
# created_at is in seconds) so a thread's messages get strictly increasing times,
# even if the clock steps back.
_MESSAGE_TIMES_SQL = (
    "CREATE TABLE IF NOT EXISTS message_times"
    " (id TEXT PRIMARY KEY, thread_id TEXT NOT NULL, created_ms BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS message_times_thread"
    " ON message_times(thread_id, created_ms)",
)

# How many messages ``recent_history`` reads at a time.
HISTORY_PAGE = 64
# Matches a stored tool-call step (objects are stored with ``json.dumps``'s default
# separators), not a message-creation one: only those reach the model.
TOOL_CALLS_LIKE = '%"type": "tool_calls"%'

_TABLE_SQL = """
CREATE TABLE IF NOT EXISTS {kind} (
    id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    thread_id TEXT,
    run_id TEXT,
    status TEXT,
    data TEXT NOT NULL
)
"""


class StoreBusyError(Exception):
    """The database stayed locked by another connection past the busy timeout (or,
    on PostgreSQL, a statement timed out or the server could not be reached)."""


class StoreInUseError(RuntimeError):
    """Another Threadroom process (or app) already has this SQLite file open."""


def new_owner_id() -> str:
    """Return an id for this process's runs: host, pid, and a random part (a pid
    is reused, and two apps in one process are two owners)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Store:
    """A thread-safe store of wire objects: a SQLite path (``":memory:"`` keeps it
    in RAM) or a ``postgresql://`` URL.

    :param offload: runs each SQLite call as ``offload(fn, *args)`` (default: calls
        it directly); pass a thread pool's ``execute`` under eventlet or gevent.
        PostgreSQL does not use it (see ``storage.postgres``).
    :param busy_timeout_s: how long a statement waits for another connection's lock
        before the call fails with ``StoreBusyError``.
    :param owner: this process's owner id for the runs it executes.
    :param lapse_s: how old another process's heartbeat may grow before its
        runs are failed (shared stores).
    :raises StoreInUseError: when another process or app has the file open.
    """

    def __init__(
        self,
        path: str = ":memory:",
        *,
        offload: Offload | None = None,
        busy_timeout_s: float = BUSY_TIMEOUT_S,
        owner: str | None = None,
        lapse_s: float = LAPSE_S,
    ) -> None:
        self._closed = False
        self.owner = owner or new_owner_id()
        self.lapse_s = lapse_s
        self.beat_s = lapse_s / 3
        self._file_lock = (
            None if path in IN_MEMORY or is_postgres_url(path) else claim_file(path)
        )
        try:
            self._db = open_database(
                path,
                busy_error=_busy_error,
                offload=offload,
                busy_timeout_s=busy_timeout_s,
            )
        except BaseException:
            self._release_file()
            raise
        self.shared = self._db.shared
        try:
            self._create_schema()
            # Alive before the first run is stored, or another process's sweep
            # would take this one's runs for a dead process's.
            self.beat()
            self.recover(int(time.time()))
        except BaseException:
            self.close()
            raise

    def _create_schema(self) -> None:
        """Create the tables and indexes when missing."""
        statements = []
        for kind in KINDS:
            statements.append(_TABLE_SQL.format(kind=kind))
            index = f"{kind}_thread ON {kind}(thread_id, seq)"
            statements.append(f"CREATE INDEX IF NOT EXISTS {index}")
        # Recovery looks for active runs only.
        statements.append("CREATE INDEX IF NOT EXISTS runs_status ON runs(status)")
        statements.extend(_MESSAGE_TIMES_SQL)
        statements.extend(_OWNERSHIP_SQL)
        statements.append("CREATE TABLE IF NOT EXISTS counter (seq BIGINT)")
        statements.append(
            "INSERT INTO counter SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM counter)"
        )
        self._db.create_schema(statements)

    def close(self) -> None:
        """Close the connection and free the file; later calls raise."""
        with self._db.lock:
            if self._closed:
                return
            self._closed = True
            try:
                if self.shared:
                    self._forget_beat()
            finally:
                self._close_connection()

    def _close_connection(self) -> None:
        """Close the connection and free the file."""
        try:
            self._db.close()
        finally:
            self._release_file()

    def _release_file(self) -> None:
        """Let another process open the file."""
        if self._file_lock is not None:
            self._file_lock.release()

    def _write(self, *statements: Statement) -> None:
        """Run write statements as one transaction, off the event loop."""
        self._db.write(*statements)

    def _rows(self, sql: str, args: tuple | list = ()) -> list[tuple]:
        """Run a query off the event loop and return all its rows."""
        return self._db.rows(sql, args)

    def _row(self, sql: str, args: tuple | list = ()) -> tuple | None:
        """Run a query expected to match at most one row; return it or None."""
        return self._db.row(sql, args)

    # Objects ------------------------------------------------------------------

    def insert(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Store a new object, stamping it with the next sequence number; a new run
        is this process's (the one that creates it executes it)."""
        statements = self._insert_statements(kind, obj)
        if kind == "runs":
            statements.append(self._claim_statement(obj["id"]))
        self._write(*statements)
        return obj

    def _insert_statements(self, kind: str, obj: dict[str, Any]) -> list[Statement]:
        """Return the statements that insert an object after the last one."""
        return [
            ("UPDATE counter SET seq = seq + 1", ()),
            (
                f"INSERT INTO {kind} (id, seq, thread_id, run_id, status, data)"
                " VALUES (?, (SELECT seq FROM counter), ?, ?, ?, ?)",
                (obj["id"], *self._columns(obj), json.dumps(obj)),
            ),
        ]

    def message_clock(self, thread_id: str, now_ms: int) -> int:
        """Return the time for a new message of a thread: now, but after the last.

        The caller holds the engine's lock from here to ``insert_message``.
        """
        row = self._row(
            "SELECT MAX(created_ms) FROM message_times WHERE thread_id = ?",
            (thread_id,),
        )
        last = row[0] if row and row[0] is not None else None
        return now_ms if last is None else max(now_ms, last + 1)

    def insert_message(self, message: dict[str, Any], created_ms: int) -> dict:
        """Store a new message with its creation time in milliseconds."""
        self._write(
            *self._insert_statements("messages", message),
            (
                "INSERT INTO message_times (id, thread_id, created_ms)"
                " VALUES (?, ?, ?)",
                (message["id"], message["thread_id"], created_ms),
            ),
        )
        return message

    def update(
        self, kind: str, obj: dict[str, Any], *, claim: bool = False
    ) -> dict[str, Any]:
        """Replace a stored object (a no-op when it was deleted meanwhile).

        :param claim: make this process the run's owner (it resumes the run).
        """
        sql = (
            f"UPDATE {kind} SET thread_id = ?, run_id = ?, status = ?, data = ?"
            " WHERE id = ?"
        )
        args: tuple = (*self._columns(obj), json.dumps(obj), obj["id"])
        if kind == "runs":
            # A finished run never changes status again: a process that lost its
            # heartbeat (paused, cut off) and comes back cannot overwrite the
            # "failed" another process stored for its run.
            marks = ", ".join("?" for _ in TERMINAL_RUN_STATUSES)
            sql += f" AND (status = ? OR status NOT IN ({marks}))"
            args = (*args, obj.get("status"), *sorted(TERMINAL_RUN_STATUSES))
        statements = [(sql, args)]
        if claim:
            statements.append(self._claim_statement(obj["id"]))
        self._write(*statements)
        return obj

    def _claim_statement(self, run_id: str) -> Statement:
        """Return the statement that makes this process the owner of a run."""
        return (
            "INSERT INTO run_owners (run_id, owner) VALUES (?, ?)"
            " ON CONFLICT (run_id) DO UPDATE SET owner = excluded.owner",
            (run_id, self.owner),
        )

    @staticmethod
    def _columns(obj: dict[str, Any]) -> tuple[Any, Any, Any]:
        """Return the indexed columns of an object."""
        thread_id = obj.get("thread_id") if obj.get("object") != "thread" else obj["id"]
        return thread_id, obj.get("run_id"), obj.get("status")

    def get(self, kind: str, obj_id: str) -> dict[str, Any] | None:
        """Return the object with this id, or None."""
        row = self._row(f"SELECT data FROM {kind} WHERE id = ?", (obj_id,))
        return json.loads(row[0]) if row else None

    def seq_of(self, kind: str, obj_id: str) -> int | None:
        """Return the sequence number of an object, or None."""
        row = self._row(f"SELECT seq FROM {kind} WHERE id = ?", (obj_id,))
        return row[0] if row else None

    def page(
        self,
        kind: str,
        *,
        limit: int,
        order: str,
        after: int | None = None,
        before: int | None = None,
        filters: dict[str, str] | None = None,
    ) -> tuple[list[dict[str, Any]], bool]:
        """Return one page of objects in ``order`` and whether more follow it.

        ``after``/``before`` are sequence numbers of the cursor objects.  A page
        taken with only ``before`` is the ``limit`` items right before the cursor.
        """
        where, args = self._filters(filters or {})
        newer, older = ("seq > ?", "seq < ?")
        asc = order == "asc"
        if after is not None:
            where.append(newer if asc else older)
            args.append(after)
        if before is not None:
            where.append(older if asc else newer)
            args.append(before)
        # Walk backwards from a ``before`` cursor so the page touches it.
        reverse = before is not None and after is None
        direction = "ASC" if asc != reverse else "DESC"
        sql = f"SELECT data FROM {kind}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY seq {direction} LIMIT ?"
        rows = self._rows(sql, (*args, limit + 1))
        items = [json.loads(row[0]) for row in rows[:limit]]
        return (items[::-1] if reverse else items), len(rows) > limit

    @staticmethod
    def _filters(filters: dict[str, str]) -> tuple[list[str], list[Any]]:
        """Turn column filters into SQL conditions and arguments."""
        where = [f"{column} = ?" for column in filters]
        return where, list(filters.values())

    def history(self, thread_id: str) -> list[dict[str, Any]]:
        """Return a thread's messages and run steps, oldest first."""
        rows = self._rows(
            "SELECT seq, data FROM messages WHERE thread_id = ?"
            " UNION ALL SELECT seq, data FROM steps WHERE thread_id = ?"
            " ORDER BY seq",
            (thread_id, thread_id),
        )
        return [json.loads(row[1]) for row in rows]

    def recent_history(self, thread_id: str) -> Iterator[dict[str, Any]]:
        """Yield a thread's messages and completed tool-call steps, newest first,
        reading a page at a time: a caller that stops early never reads (nor
        decodes) the older ones.

        Each page is the next ``HISTORY_PAGE`` messages (the ``(thread_id, seq)``
        index walked backwards) and the tool-call steps between them, found in
        the same range of the steps' index.
        """
        before: int | None = None
        while True:
            older = "" if before is None else " AND seq < ?"
            args: tuple = (thread_id,) if before is None else (thread_id, before)
            messages = self._rows(
                f"SELECT seq, data FROM messages WHERE thread_id = ?{older}"
                " ORDER BY seq DESC LIMIT ?",
                (*args, HISTORY_PAGE),
            )
            floor = messages[-1][0] if len(messages) == HISTORY_PAGE else None
            steps = self._rows(
                f"SELECT seq, data FROM steps WHERE thread_id = ?{older}"
                " AND seq > ? AND status = ? AND data LIKE ?",
                (*args, -1 if floor is None else floor, "completed", TOOL_CALLS_LIKE),
            )
            for _, data in sorted(messages + steps, key=_seq, reverse=True):
                yield json.loads(data)
            if floor is None:
                return
            before = floor

    def active_run(self, thread_id: str) -> dict[str, Any] | None:
        """Return the thread's queued, running, waiting or cancelling run, if any."""
        marks = ", ".join("?" for _ in ACTIVE_RUN_STATUSES)
        row = self._row(
            f"SELECT data FROM runs WHERE thread_id = ? AND status IN ({marks})"
            " ORDER BY seq DESC LIMIT 1",
            (thread_id, *ACTIVE_RUN_STATUSES),
        )
        return json.loads(row[0]) if row else None

    def select(self, kind: str, **filters: str) -> list[dict[str, Any]]:
        """Return every object matching the column filters, oldest first."""
        where, args = self._filters(filters)
        sql = f"SELECT data FROM {kind}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self._rows(sql + " ORDER BY seq", args)
        return [json.loads(row[0]) for row in rows]

    def delete(self, kind: str, obj_id: str) -> None:
        """Delete one object (a no-op when it is already gone)."""
        statements = [(f"DELETE FROM {kind} WHERE id = ?", (obj_id,))]
        if kind == "messages":
            statements.append(("DELETE FROM message_times WHERE id = ?", (obj_id,)))
        self._write(*statements)

    def delete_thread(self, thread_id: str) -> None:
        """Delete a thread with its messages, runs (and their owners) and steps."""
        self._write(
            (
                "DELETE FROM run_owners WHERE run_id IN"
                " (SELECT id FROM runs WHERE thread_id = ?)",
                (thread_id,),
            ),
            *(
                (f"DELETE FROM {kind} WHERE thread_id = ?", (thread_id,))
                for kind in ("messages", "message_times", "runs", "steps", "threads")
            ),
        )

    # Run ownership ------------------------------------------------------------

    def beat(self) -> None:
        """Say that this process is alive (shared stores; on the database's clock,
        so hosts whose clocks disagree still agree on who lapsed)."""
        if not self.shared:
            return
        self._write(
            (
                "INSERT INTO process_beats (owner, beat_at)"
                f" VALUES (?, {self._db.now_sql})"
                " ON CONFLICT (owner) DO UPDATE SET beat_at = excluded.beat_at",
                (self.owner,),
            )
        )

    def _forget_beat(self) -> None:
        """Say that this process stopped, so others close what it left at once."""
        try:
            self._write(("DELETE FROM process_beats WHERE owner = ?", (self.owner,)))
        except StoreBusyError:
            log.warning("Could not remove this process's heartbeat; it lapses soon")

    def live_owners(self) -> set[str]:
        """Return the owners whose runs must be left alone: this process, and on a
        shared store every process whose heartbeat has not lapsed.

        A SQLite file is locked by one process, so any other owner is dead.
        """
        if not self.shared:
            return {self.owner}
        rows = self._rows(
            f"SELECT owner FROM process_beats WHERE beat_at > {self._db.now_sql} - ?",
            (self.lapse_s,),
        )
        return {self.owner, *(row[0] for row in rows)}

    def recover(self, now: int) -> None:
        """Fail the active runs of processes that are gone; expire their overdue
        ``requires_action`` runs (those not yet due wait for tool outputs, which
        any process may submit)."""
        live = self.live_owners()
        for status in ACTIVE_RUN_STATUSES:
            for run, owner in self._runs_and_owners(status):
                if owner in live:
                    continue
                if status == "requires_action" and now <= (run["expires_at"] or now):
                    continue
                self._close_dead_run(run, now, status == "requires_action")
        if self.shared:
            self._write(
                (
                    f"DELETE FROM process_beats WHERE beat_at < {self._db.now_sql} - ?",
                    (FORGET_BEATS_S,),
                )
            )

    def _runs_and_owners(self, status: str) -> Iterator[tuple[dict, str | None]]:
        """Yield the runs in ``status`` with their owners, oldest first."""
        rows = self._rows(
            "SELECT runs.data, run_owners.owner FROM runs LEFT JOIN run_owners"
            " ON run_owners.run_id = runs.id WHERE runs.status = ? ORDER BY runs.seq",
            (status,),
        )
        for data, owner in rows:
            yield json.loads(data), owner

    def _close_dead_run(self, run: dict[str, Any], now: int, expired: bool) -> None:
        """Mark a run (and its open step and message) failed or expired."""
        log.warning(
            "Closing run %s left %s by a process that stopped",
            run["id"],
            run["status"],
        )
        step_status, reason = (
            ("expired", "run_expired") if expired else ("failed", "run_failed")
        )
        for step in self.select("steps", run_id=run["id"], status="in_progress"):
            step.update(status=step_status, **{f"{step_status}_at": now})
            if not expired:
                step["last_error"] = RESTART_ERROR
            self.update("steps", step)
        for message in self.select("messages", run_id=run["id"], status="in_progress"):
            message.update(status="incomplete", incomplete_at=now)
            message["incomplete_details"] = {"reason": reason}
            self.update("messages", message)
        run.update(status=step_status, required_action=None)
        if not expired:
            run.update(failed_at=now, last_error=RESTART_ERROR, expires_at=None)
        self.update("runs", run)


def _seq(row: tuple) -> int:
    """Return the sequence number of a ``(seq, data)`` row."""
    return row[0]


def _busy_error(exc: Exception) -> StoreBusyError:
    """Return the error for a database locked past the busy timeout (or lost)."""
    if isinstance(exc, sqlite3.OperationalError):
        return StoreBusyError(f"The database stayed locked: {exc}")
    # PostgreSQL: a lock or statement timeout, or a lost connection.
    return StoreBusyError(f"The database is busy or out of reach: {describe(exc)}")


# One process per file -------------------------------------------------------------


def claim_file(path: str) -> FileLock:
    """Lock ``<path>.lock`` for this store, or raise ``StoreInUseError``."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    lock_path = os.path.realpath(path) + ".lock"
    # Not thread-local: the store may be closed from another thread or greenlet.
    # No soft fallback: a lock file left by ``kill -9`` must not block a restart.
    lock = FileLock(lock_path, thread_local=False, fallback_to_soft=False)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise StoreInUseError(in_use_message(path)) from None
    return lock


def in_use_message(path: str) -> str:
    """Say that the file is taken and how to run several processes."""
    return (
        f"The database file {path} is in use by another Threadroom process (or"
        " another app in this process). One process can use a SQLite file at a"
        " time: stop the other one, or use shared mode (set REDIS_URL and"
        " DATABASE_URL) to run several processes."
    )

"""SQLite persistence for the engine's assistants, threads, messages, runs and steps.

Each object is kept in its wire shape as a JSON column, next to the few columns the
engine queries on.  One global sequence orders every insert, so a thread's history
(messages and run steps interleaved) replays in exactly the order it happened.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from typing import Any

log = logging.getLogger(__name__)

KINDS = ("assistants", "threads", "messages", "runs", "steps")
ACTIVE_RUN_STATUSES = ("queued", "in_progress", "requires_action", "cancelling")
RESTART_ERROR = {
    "code": "server_error",
    "message": "The server restarted while this run was in progress.",
}

_TABLE_SQL = """
CREATE TABLE IF NOT EXISTS {kind} (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    thread_id TEXT,
    run_id TEXT,
    status TEXT,
    data TEXT NOT NULL
)
"""


class Store:
    """A thread-safe SQLite store of wire objects; ``":memory:"`` keeps it in RAM."""

    def __init__(self, path: str = ":memory:") -> None:
        if path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        if path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._create_schema()
        self.recover(int(time.time()))

    def _create_schema(self) -> None:
        """Create the tables and indexes when missing."""
        with self._lock:
            for kind in KINDS:
                self._db.execute(_TABLE_SQL.format(kind=kind))
                index = f"{kind}_thread ON {kind}(thread_id, seq)"
                self._db.execute(f"CREATE INDEX IF NOT EXISTS {index}")
            self._db.execute("CREATE TABLE IF NOT EXISTS counter (seq INTEGER)")
            if self._db.execute("SELECT COUNT(*) FROM counter").fetchone()[0] == 0:
                self._db.execute("INSERT INTO counter VALUES (0)")

    def close(self) -> None:
        """Close the connection; later calls raise ``sqlite3.ProgrammingError``."""
        with self._lock:
            self._db.close()

    def insert(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Store a new object, stamping it with the next sequence number."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.execute("UPDATE counter SET seq = seq + 1")
                seq = self._db.execute("SELECT seq FROM counter").fetchone()[0]
                self._db.execute(
                    f"INSERT INTO {kind} VALUES (?, ?, ?, ?, ?, ?)",
                    (obj["id"], seq, *self._columns(obj), json.dumps(obj)),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return obj

    def update(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Replace a stored object (a no-op when it was deleted meanwhile)."""
        with self._lock:
            self._db.execute(
                f"UPDATE {kind} SET thread_id = ?, run_id = ?, status = ?, data = ?"
                " WHERE id = ?",
                (*self._columns(obj), json.dumps(obj), obj["id"]),
            )
        return obj

    @staticmethod
    def _columns(obj: dict[str, Any]) -> tuple[Any, Any, Any]:
        """Return the indexed columns of an object."""
        thread_id = obj.get("thread_id") if obj.get("object") != "thread" else obj["id"]
        return thread_id, obj.get("run_id"), obj.get("status")

    def get(self, kind: str, obj_id: str) -> dict[str, Any] | None:
        """Return the object with this id, or None."""
        with self._lock:
            row = self._db.execute(
                f"SELECT data FROM {kind} WHERE id = ?", (obj_id,)
            ).fetchone()
        return json.loads(row[0]) if row else None

    def seq_of(self, kind: str, obj_id: str) -> int | None:
        """Return the sequence number of an object, or None."""
        with self._lock:
            row = self._db.execute(
                f"SELECT seq FROM {kind} WHERE id = ?", (obj_id,)
            ).fetchone()
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
        with self._lock:
            rows = self._db.execute(sql, (*args, limit + 1)).fetchall()
        items = [json.loads(row[0]) for row in rows[:limit]]
        return (items[::-1] if reverse else items), len(rows) > limit

    @staticmethod
    def _filters(filters: dict[str, str]) -> tuple[list[str], list[Any]]:
        """Turn column filters into SQL conditions and arguments."""
        where = [f"{column} = ?" for column in filters]
        return where, list(filters.values())

    def history(self, thread_id: str) -> list[dict[str, Any]]:
        """Return a thread's messages and run steps, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, data FROM messages WHERE thread_id = ?"
                " UNION ALL SELECT seq, data FROM steps WHERE thread_id = ?"
                " ORDER BY seq",
                (thread_id, thread_id),
            ).fetchall()
        return [json.loads(row[1]) for row in rows]

    def active_run(self, thread_id: str) -> dict[str, Any] | None:
        """Return the thread's queued, running, waiting or cancelling run, if any."""
        marks = ", ".join("?" for _ in ACTIVE_RUN_STATUSES)
        with self._lock:
            row = self._db.execute(
                f"SELECT data FROM runs WHERE thread_id = ? AND status IN ({marks})"
                " ORDER BY seq DESC LIMIT 1",
                (thread_id, *ACTIVE_RUN_STATUSES),
            ).fetchone()
        return json.loads(row[0]) if row else None

    def select(self, kind: str, **filters: str) -> list[dict[str, Any]]:
        """Return every object matching the column filters, oldest first."""
        where, args = self._filters(filters)
        sql = f"SELECT data FROM {kind}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY seq", args).fetchall()
        return [json.loads(row[0]) for row in rows]

    def delete_thread(self, thread_id: str) -> None:
        """Delete a thread with its messages, runs and steps."""
        with self._lock:
            self._db.execute("BEGIN")
            for kind in ("messages", "runs", "steps", "threads"):
                self._db.execute(
                    f"DELETE FROM {kind} WHERE thread_id = ?", (thread_id,)
                )
            self._db.execute("COMMIT")

    def recover(self, now: int) -> None:
        """Fail runs a dead process left active; expire overdue ``requires_action``."""
        for status in ACTIVE_RUN_STATUSES:
            for run in self.select("runs", status=status):
                if status == "requires_action" and now <= (run["expires_at"] or now):
                    continue
                self._close_dead_run(run, now, status == "requires_action")

    def _close_dead_run(self, run: dict[str, Any], now: int, expired: bool) -> None:
        """Mark a run (and its open step and message) failed or expired."""
        log.warning(
            "Closing run %s left %s by an earlier process", run["id"], run["status"]
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

"""One SQLite connection, used safely from an event loop and from several threads.

SQLite calls are C calls an eventlet or gevent hub cannot switch around: a slow or
locked file would freeze every connection.  So every call goes through ``offload``
(the entry point passes a thread pool's ``execute``), one at a time under a lock
taken on the calling side, and a file that stays locked past the busy timeout
becomes the caller's own "busy" error instead of a crash.

Both the engine's store (``assistant/``) and the room directory (``rooms/``) use
this, so it sits in neither.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any
from typing import TypeVar

from storage.database import BUSY_TIMEOUT_S
from storage.database import BusyError
from storage.database import Offload
from storage.database import Statement

T = TypeVar("T")
IN_MEMORY = ("", ":memory:")


def call_here(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` in the calling thread (no event loop to protect)."""
    return fn(*args)


class SqliteDatabase:
    """A SQLite connection whose every call runs through ``offload``, one at a time.

    :param offload: runs each call as ``offload(fn, *args)`` (default: directly).
    :param busy_error: makes the exception raised when the file stayed locked
        by another connection for ``busy_timeout_s``.
    """

    def __init__(
        self,
        path: str,
        *,
        busy_error: BusyError,
        offload: Offload | None = None,
        busy_timeout_s: float = BUSY_TIMEOUT_S,
    ) -> None:
        # One process per file (the engine's store locks it), one clock.
        self.shared = False
        self.serial_key = "INTEGER PRIMARY KEY AUTOINCREMENT"
        self.now_sql = "((julianday('now') - 2440587.5) * 86400.0)"
        self._offload = offload or call_here
        self._busy_error = busy_error
        # Reentrant: the store holds it across a read and the write that follows.
        self.lock = threading.RLock()
        self.connection = self._offloaded(connect, path, busy_timeout_s)

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Return ``fn(connection, *args)``, run through ``offload`` under the lock."""
        with self.lock:
            return self._offloaded(fn, self.connection, *args)

    def create_schema(self, statements: Sequence[str]) -> None:
        """Run the schema statements as one transaction (the file is ours alone)."""
        self.write(*((sql, ()) for sql in statements))

    def write(self, *statements: Statement) -> None:
        """Run write statements as one transaction."""
        self.run(transaction, statements)

    def rows(self, sql: str, args: tuple | list = ()) -> list[tuple]:
        """Return every row of a query."""
        return self.run(fetch_all, sql, tuple(args))

    def row(self, sql: str, args: tuple | list = ()) -> tuple | None:
        """Return the first row of a query, or None."""
        rows = self.rows(sql, args)
        return rows[0] if rows else None

    def close(self) -> None:
        """Close the connection."""
        self.run(sqlite3.Connection.close)

    def _offloaded(self, fn: Callable[..., T], *args: Any) -> T:
        """Run one call through ``offload``, turning a lock timeout into busy_error."""
        try:
            return self._offload(fn, *args)
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
            raise self._busy_error(exc) from exc


# The SQLite side: these run inside ``offload`` ----------------------------------


def connect(path: str, busy_timeout_s: float) -> sqlite3.Connection:
    """Open the database in autocommit mode (WAL for files, whose folder is made)."""
    if path not in IN_MEMORY:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    db = sqlite3.connect(
        path, timeout=busy_timeout_s, check_same_thread=False, isolation_level=None
    )
    if path not in IN_MEMORY:
        db.execute("PRAGMA journal_mode=WAL")
    return db


def fetch_all(db: sqlite3.Connection, sql: str, args: tuple) -> list[tuple]:
    """Return every row of a query."""
    return db.execute(sql, args).fetchall()


def transaction(db: sqlite3.Connection, statements: tuple[Statement, ...]) -> None:
    """Run statements atomically; a single one needs no explicit transaction."""
    if len(statements) == 1:
        db.execute(*statements[0])
        return
    # IMMEDIATE takes the write lock up front, so waiting for it honours the busy
    # timeout instead of failing mid-transaction on a lock upgrade.
    db.execute("BEGIN IMMEDIATE")
    try:
        for sql, args in statements:
            db.execute(sql, args)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def is_busy(exc: sqlite3.OperationalError) -> bool:
    """Tell whether SQLite failed because another connection held a lock."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    text = str(exc).lower()
    return "locked" in text or "busy" in text

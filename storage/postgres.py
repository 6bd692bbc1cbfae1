"""One PostgreSQL connection (shared mode), used from an event loop and threads.

The driver is pg8000, which is pure Python: every wait on the server is a read on
a ``socket``, which eventlet's or gevent's monkey-patching makes green, so a slow
query parks only the greenlet that made it and the hub serves everyone else.  So,
unlike SQLite, calls are *not* sent to a thread pool: there is no C call to wait
around, and a green socket must not be used from a real OS thread anyway.

Calls take turns on one connection under a lock (green too, once patched), which
is what the store and the directory need: short statements, a few per message.
A lock held past the busy timeout, a timed-out statement or a lost connection
becomes the caller's "busy" error, as a locked SQLite file does; a lost connection
is opened again by the next call, so a restarted server does not need a restart
of every process.
"""

from __future__ import annotations

import logging
import re
import ssl
import threading
import zlib
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import unquote
from urllib.parse import urlsplit

import pg8000.native
from pg8000.exceptions import DatabaseError
from pg8000.exceptions import InterfaceError

from storage.database import BUSY_TIMEOUT_S
from storage.database import BusyError
from storage.database import Statement
from storage.database import describe

log = logging.getLogger(__name__)


class DatabaseUnavailableError(RuntimeError):
    """The PostgreSQL server cannot be reached or refuses us, at start."""


# SQLSTATEs that mean "try again later", not "this statement is wrong": a lock
# not granted within lock_timeout, statement_timeout, a deadlock, a conflict.
BUSY_STATES = {"55P03", "57014", "40P01", "40001"}
# SQLSTATE prefixes of a connection the server ended (terminated, shutting down,
# restarting) or that broke: it is of no further use.
LOST_STATES = ("57P0", "08")
# Every process creating the schema at once would race in the catalogue
# ("duplicate key ... pg_type"): they take this advisory lock in turn.
SCHEMA_LOCK = zlib.crc32(b"threadroom schema")
STATEMENT_TIMEOUT_S = 30
_PLACEHOLDER = re.compile(r"\?")


class PostgresDatabase:
    """A PostgreSQL connection with the same interface as ``SqliteDatabase``.

    :param url: ``postgresql://user[:password]@host[:port]/database``, with an
        optional ``?sslmode=require`` (or ``verify-full``).
    :param busy_error: makes the exception raised for a lock held past
        ``busy_timeout_s``, a timed-out statement or a lost connection.
    """

    shared = True
    serial_key = "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
    now_sql = "EXTRACT(EPOCH FROM clock_timestamp())::float8"

    def __init__(
        self,
        url: str,
        *,
        busy_error: BusyError,
        busy_timeout_s: float = BUSY_TIMEOUT_S,
    ) -> None:
        self._params = connect_params(url, busy_timeout_s)
        self._busy_error = busy_error
        self.lock = threading.RLock()
        self._connection: pg8000.native.Connection | None = None
        self._closed = False
        try:
            self._connect()
        except (InterfaceError, OSError, DatabaseError) as exc:
            where = "{host}:{port}/{database}".format(**self._params)  # no password
            raise DatabaseUnavailableError(
                f"Cannot open PostgreSQL at {where} (DATABASE_URL): {describe(exc)}"
            ) from exc

    def create_schema(self, statements: Sequence[str]) -> None:
        """Create what is missing, one process at a time (a transaction-scoped
        advisory lock, released by the commit)."""
        self.write(
            ("SELECT pg_advisory_xact_lock(?)", (SCHEMA_LOCK,)),
            *((sql, ()) for sql in statements),
        )

    def write(self, *statements: Statement) -> None:
        """Run write statements as one transaction."""
        with self.lock:
            self._call(self._transaction, statements)

    def rows(self, sql: str, args: tuple | list = ()) -> list[tuple]:
        """Return every row of a query."""
        with self.lock:
            return self._call(self._fetch_all, sql, tuple(args))

    def row(self, sql: str, args: tuple | list = ()) -> tuple | None:
        """Return the first row of a query, or None."""
        rows = self.rows(sql, args)
        return rows[0] if rows else None

    def close(self) -> None:
        """Close the connection; later calls fail as busy, like a lost server."""
        with self.lock:
            self._closed = True
            self._disconnect()

    # -- the connection -------------------------------------------------------

    def _disconnect(self) -> None:
        """Give the socket back (a lost one too); the next call opens a new one."""
        with self.lock:
            connection, self._connection = self._connection, None
            if connection is not None:
                try:
                    connection.close()
                except (InterfaceError, OSError):
                    pass  # already gone: nothing left to close

    def _connect(self) -> pg8000.native.Connection:
        """Open the connection (again, after a lost one)."""
        if self._connection is None:
            self._connection = pg8000.native.Connection(**self._params)
        return self._connection

    def _call(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(connection, *args)``; turn a busy or lost server into busy_error."""
        if self._closed:
            raise self._busy_error(InterfaceError("the database was closed"))
        try:
            return fn(self._connect(), *args)
        except (InterfaceError, OSError) as exc:
            # pg8000 raises a reset socket's OSError as it is, at times.
            self._lost(exc)
            raise self._busy_error(exc) from exc
        except DatabaseError as exc:
            state = sqlstate(exc) or ""
            if state.startswith(LOST_STATES):
                self._lost(exc)
            elif state not in BUSY_STATES:
                raise
            raise self._busy_error(exc) from exc

    def _lost(self, exc: Exception) -> None:
        """Drop a connection in an unknown state; the next call opens a new one."""
        log.warning("PostgreSQL connection lost: %s", exc)
        self._disconnect()

    @staticmethod
    def _fetch_all(connection: pg8000.native.Connection, sql: str, args: tuple):
        """Return every row of a query (``[]`` for a statement without rows)."""
        return [tuple(row) for row in run(connection, sql, args) or ()]

    @staticmethod
    def _transaction(
        connection: pg8000.native.Connection, statements: tuple[Statement, ...]
    ) -> None:
        """Run statements atomically; a single one is its own transaction."""
        if len(statements) == 1:
            run(connection, *statements[0])
            return
        connection.run("BEGIN")
        try:
            for sql, args in statements:
                run(connection, sql, args)
            connection.run("COMMIT")
        except BaseException:
            rollback(connection)
            raise


def rollback(connection: pg8000.native.Connection) -> None:
    """End a failed transaction (a lost connection has nothing left to end)."""
    try:
        connection.run("ROLLBACK")
    except (InterfaceError, OSError):
        pass


def run(connection: pg8000.native.Connection, sql: str, args: tuple) -> Any:
    """Run a statement written with ``?`` placeholders (the store's and the
    directory's one SQL), as pg8000's named ``:pN`` parameters."""
    count = iter(range(len(args)))
    named = _PLACEHOLDER.sub(lambda _: f":p{next(count)}", sql)
    return connection.run(named, **{f"p{i}": arg for i, arg in enumerate(args)})


def sqlstate(exc: DatabaseError) -> str | None:
    """Return the SQLSTATE code of a server error, if it has one."""
    fields = exc.args[0] if exc.args else None
    return fields.get("C") if isinstance(fields, dict) else None


def connect_params(url: str, busy_timeout_s: float) -> dict[str, Any]:
    """Turn a ``postgresql://`` URL into pg8000's connection arguments."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    sslmode = query.get("sslmode", ["disable"])[-1]
    params: dict[str, Any] = {
        "user": unquote(parts.username or "postgres"),
        "password": unquote(parts.password) if parts.password else None,
        "host": parts.hostname or "localhost",
        "port": parts.port or 5432,
        "database": unquote(parts.path.lstrip("/")) or None,
        "application_name": "threadroom",
        # A socket timeout bounds every wait on a server that went silent.
        "timeout": STATEMENT_TIMEOUT_S + 10,
        "startup_params": {
            "lock_timeout": f"{int(busy_timeout_s * 1000)}ms",
            "statement_timeout": f"{STATEMENT_TIMEOUT_S}s",
        },
    }
    if sslmode in ("require", "verify-ca", "verify-full"):
        context = ssl.create_default_context()
        if sslmode == "require":  # encrypted, server not verified (libpq's meaning)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        params["ssl_context"] = context
    return params

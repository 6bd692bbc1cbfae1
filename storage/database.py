"""The one interface the engine's store and the room directory write SQL against.

Statements are written once, in the SQL both databases accept (``?`` placeholders,
``INSERT ... ON CONFLICT``, BIGINT and DOUBLE PRECISION columns); what still differs
lives in the two implementations: ``storage.sqlite`` (a file, one process) and
``storage.postgres`` (a server, several processes).  ``open_database`` picks one
from the location: a ``postgresql://`` URL or a SQLite path.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any
from typing import Protocol

Offload = Callable[..., Any]
Statement = tuple[str, tuple]
BusyError = Callable[[Exception], Exception]
BUSY_TIMEOUT_S = 5.0
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class Database(Protocol):
    """A connection the store and the directory share one way of using."""

    #: True when several processes may use the database at once (PostgreSQL).
    shared: bool
    #: Column definition of an auto-numbered integer primary key.
    serial_key: str
    #: SQL expression of the database's clock, in seconds since the epoch: one
    #: clock for every host, so heartbeats compare without clock skew.
    now_sql: str
    #: Held by a caller across a read and the write that follows.
    lock: threading.RLock

    def create_schema(self, statements: Sequence[str]) -> None:
        """Run ``CREATE ... IF NOT EXISTS`` statements, safe against a concurrent
        start of another process."""

    def write(self, *statements: Statement) -> None:
        """Run write statements as one transaction."""

    def rows(self, sql: str, args: tuple | list = ()) -> list[tuple]:
        """Return every row of a query."""
        ...

    def row(self, sql: str, args: tuple | list = ()) -> tuple | None:
        """Return the first row of a query, or None."""

    def close(self) -> None:
        """Close the connection."""


def describe(exc: Exception) -> str:
    """Return an error's message; a PostgreSQL server error's own text (pg8000
    carries the server's fields as a dict)."""
    fields = exc.args[0] if exc.args else None
    if isinstance(fields, dict) and "M" in fields:
        return str(fields["M"])
    return str(exc)


def is_postgres_url(location: str) -> bool:
    """Tell whether ``location`` names a PostgreSQL server rather than a file."""
    return location.startswith(POSTGRES_SCHEMES)


def open_database(
    location: str,
    *,
    busy_error: BusyError,
    offload: Offload | None = None,
    busy_timeout_s: float = BUSY_TIMEOUT_S,
) -> Database:
    """Open PostgreSQL for a ``postgresql://`` URL, else the SQLite file ``location``.

    :param busy_error: makes the exception raised when the database stayed locked
        (or unreachable) past ``busy_timeout_s``.
    :param offload: runs each SQLite call off the event loop; PostgreSQL ignores
        it, its pure-Python driver waits on green sockets (see ``storage.postgres``).
    """
    # Imported here: single mode never loads the PostgreSQL driver.
    if is_postgres_url(location):
        from storage.postgres import PostgresDatabase

        return PostgresDatabase(
            location, busy_error=busy_error, busy_timeout_s=busy_timeout_s
        )
    from storage.sqlite import SqliteDatabase

    return SqliteDatabase(
        location, busy_error=busy_error, offload=offload, busy_timeout_s=busy_timeout_s
    )

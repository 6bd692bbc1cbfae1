"""The room directory and record (SQLite, or PostgreSQL with ``DATABASE_URL``):
which thread each room uses, the user ids handed out, and what people saw beside
the thread.

The record keeps what the assistant's thread cannot: the system lines people read
(failures, who stopped a reply), notes on replies ("stopped by Bob", "interrupted"),
and the turn in progress, so a restart can say that it cut a reply short.

Every SQLite call goes through ``offload`` (a thread pool under eventlet or gevent,
see ``storage.sqlite``): a locked file must stall only the callers that need it,
never every connection.  PostgreSQL needs no pool (see ``storage.postgres``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rooms.errors import StoreBusy
from rooms.protocol import ReplyNote
from storage.database import Offload
from storage.database import open_database
from storage.sqlite import call_here

# ``{serial}``: the database's auto-numbered key (kept lines stay in order).
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS room_threads"
    " (room TEXT PRIMARY KEY, thread_id TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS known_users (user_id TEXT PRIMARY KEY)",
    "CREATE TABLE IF NOT EXISTS room_settings"
    " (room TEXT PRIMARY KEY, data TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS room_bans (room TEXT NOT NULL, user_id TEXT NOT NULL,"
    " until DOUBLE PRECISION NOT NULL, PRIMARY KEY (room, user_id))",
    "CREATE TABLE IF NOT EXISTS room_lines (seq {serial},"
    " thread_id TEXT NOT NULL, after_id TEXT, data TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS room_lines_thread ON room_lines(thread_id, seq)",
    "CREATE TABLE IF NOT EXISTS message_notes (message_id TEXT PRIMARY KEY,"
    " thread_id TEXT NOT NULL, data TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS message_notes_thread ON message_notes(thread_id)",
    "CREATE TABLE IF NOT EXISTS open_turns (room TEXT PRIMARY KEY,"
    " thread_id TEXT NOT NULL, data TEXT NOT NULL)",
)


class ThreadDirectory:
    """Persist rooms' threads, handed-out user ids and the room record (a SQLite
    path, ``:memory:`` in tests, or a ``postgresql://`` URL)."""

    def __init__(self, path: str, offload: Offload = call_here) -> None:
        self._db = open_database(path, busy_error=_refuse_busy, offload=offload)
        self._db.create_schema(
            [sql.format(serial=self._db.serial_key) for sql in SCHEMA]
        )

    def close(self) -> None:
        """Close the connection (a PostgreSQL one is a socket to give back)."""
        self._db.close()

    # -- SQL, off the event loop ----------------------------------------------

    def _write(self, sql: str, args: tuple = ()) -> None:
        """Run a statement that changes something."""
        self._db.write((sql, args))

    def _one(self, sql: str, args: tuple = ()) -> tuple | None:
        """Return the first row of a query."""
        return self._db.row(sql, args)

    def _all(self, sql: str, args: tuple = ()) -> list[tuple]:
        """Return every row of a query."""
        return self._db.rows(sql, args)

    # -- rooms and people -----------------------------------------------------

    def get(self, room: str) -> str | None:
        """Return the thread id of ``room``, if one was saved."""
        row = self._one("SELECT thread_id FROM room_threads WHERE room = ?", (room,))
        return row[0] if row else None

    def set(self, room: str, thread_id: str) -> None:
        """Save the thread id of ``room``."""
        self._write(
            "INSERT INTO room_threads (room, thread_id) VALUES (?, ?)"
            " ON CONFLICT (room) DO UPDATE SET thread_id = excluded.thread_id",
            (room, thread_id),
        )

    def forget(self, room: str, thread_id: str | None = None) -> None:
        """Drop the saved thread of ``room``, and that thread's record."""
        statements = [
            (f"DELETE FROM {table} WHERE room = ?", (room,))
            for table in ("room_threads", "room_settings", "room_bans")
        ]
        if thread_id:
            statements += [
                (f"DELETE FROM {table} WHERE thread_id = ?", (thread_id,))
                for table in ("room_lines", "message_notes")
            ]
        # One transaction: another process never sees the room half forgotten.
        self._db.write(*statements)

    def add_user(self, user_id: str) -> None:
        """Remember that ``user_id`` was handed out (with its token)."""
        self._write(
            "INSERT INTO known_users (user_id) VALUES (?) ON CONFLICT DO NOTHING",
            (user_id,),
        )

    def has_user(self, user_id: str) -> bool:
        """Tell whether ``user_id`` was handed out before."""
        return (
            self._one("SELECT 1 FROM known_users WHERE user_id = ?", (user_id,))
            is not None
        )

    def settings(self, room: str) -> dict | None:
        """Return the saved settings of ``room`` (its owner's choices), if any."""
        row = self._one("SELECT data FROM room_settings WHERE room = ?", (room,))
        return json.loads(row[0]) if row else None

    def save_settings(self, room: str, settings: Mapping[str, Any]) -> None:
        """Save the settings of ``room``."""
        self._write(
            "INSERT INTO room_settings (room, data) VALUES (?, ?)"
            " ON CONFLICT (room) DO UPDATE SET data = excluded.data",
            (room, json.dumps(settings)),
        )

    def ban(self, room: str, user_id: str, until: float) -> None:
        """Keep ``user_id`` out of ``room`` until the time ``until``."""
        self._write(
            "INSERT INTO room_bans (room, user_id, until) VALUES (?, ?, ?)"
            " ON CONFLICT (room, user_id) DO UPDATE SET until = excluded.until",
            (room, user_id, until),
        )

    def banned_until(self, room: str, user_id: str) -> float | None:
        """Return until when ``user_id`` is kept out of ``room`` (None: not)."""
        row = self._one(
            "SELECT until FROM room_bans WHERE room = ? AND user_id = ?",
            (room, user_id),
        )
        return row[0] if row else None

    # -- the record -----------------------------------------------------------

    def add_line(
        self, thread_id: str, line: Mapping[str, Any], after_id: str | None
    ) -> None:
        """Keep a system line of a room's conversation; ``after_id`` is the message
        it follows, when known."""
        self._write(
            "INSERT INTO room_lines (thread_id, after_id, data) VALUES (?, ?, ?)",
            (thread_id, after_id, json.dumps(line)),
        )

    def lines(self, thread_id: str) -> list[tuple[str | None, Any]]:
        """Return the system lines of a thread, oldest first, with their anchors."""
        rows = self._all(
            "SELECT after_id, data FROM room_lines WHERE thread_id = ? ORDER BY seq",
            (thread_id,),
        )
        return [(after_id, json.loads(data)) for after_id, data in rows]

    def add_note(
        self, thread_id: str, message_id: str, note: Mapping[str, Any]
    ) -> None:
        """Note how a reply ended (``{"status": "stopped", "stopped_by": …}``)."""
        self._write(
            "INSERT INTO message_notes (message_id, thread_id, data)"
            " VALUES (?, ?, ?) ON CONFLICT (message_id)"
            " DO UPDATE SET thread_id = excluded.thread_id, data = excluded.data",
            (message_id, thread_id, json.dumps(note)),
        )

    def notes(self, thread_id: str) -> dict[str, ReplyNote]:
        """Return the notes on a thread's replies, by message id."""
        rows = self._all(
            "SELECT message_id, data FROM message_notes WHERE thread_id = ?",
            (thread_id,),
        )
        return {message_id: json.loads(data) for message_id, data in rows}

    def open_turn(self, room: str, thread_id: str, turn: dict) -> None:
        """Mark a turn of ``room`` in progress (``turn``: what a restart needs)."""
        self._write(
            "INSERT INTO open_turns (room, thread_id, data) VALUES (?, ?, ?)"
            " ON CONFLICT (room)"
            " DO UPDATE SET thread_id = excluded.thread_id, data = excluded.data",
            (room, thread_id, json.dumps(turn)),
        )

    def close_turn(self, room: str) -> None:
        """Mark the turn of ``room`` over."""
        self._write("DELETE FROM open_turns WHERE room = ?", (room,))

    def open_turns(self, room: str | None = None) -> list[tuple[str, str, dict]]:
        """Return the turns left in progress: ``(room, thread_id, turn)``; of one
        room only, when given (its primary key)."""
        sql = "SELECT room, thread_id, data FROM open_turns"
        rows = self._all(sql + " WHERE room = ?", (room,)) if room else self._all(sql)
        return [(room, thread_id, json.loads(data)) for room, thread_id, data in rows]


def _refuse_busy(exc: Exception) -> StoreBusy:
    """A store that stays locked past its timeout (or a PostgreSQL server out of
    reach) is a clear refusal, not a crash."""
    return StoreBusy()

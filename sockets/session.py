"""What a Socket.IO handler knows about the connection it serves."""

from __future__ import annotations

from flask import request


def current_sid() -> str:
    """Return the Socket.IO session id of the connection being served (Flask-SocketIO
    sets ``request.sid`` in every handler's request context)."""
    return request.sid  # type: ignore[attr-defined]

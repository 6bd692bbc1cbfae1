"""Socket.IO: the unbound ``socketio`` and ``init_sockets`` that binds it to an app."""

from __future__ import annotations

import logging

from flask import Flask
from flask_socketio import SocketIO

from sockets.chat import ChatNamespace
from sockets.frames import frame_options
from sockets.frames import init_frames
from sockets.rooms import Rooms
from sockets.state import ThreadDirectory

log = logging.getLogger(__name__)

socketio = SocketIO()
EXTENSION = "threadroom.rooms"


@socketio.on_error_default
def on_error(exc: Exception) -> dict:
    """Answer a handler's unexpected failure with an ack; log it, keep serving."""
    log.exception("socket handler failed", exc_info=exc)
    return {"ok": False, "error": "Something went wrong on the server."}


def init_sockets(app: Flask) -> None:
    """Bind ``socketio`` to the app and register the chat namespace.

    The namespace is registered after ``init_app``, here in the factory, so every
    app built (one per test) gets its own namespace instance and server.
    """
    socketio.init_app(
        app,
        async_mode=app.config["ASYNC_MODE"],
        cors_allowed_origins=app.config["CORS_ALLOWED_ORIGINS"] or None,
        message_queue=app.config["SOCKETIO_MESSAGE_QUEUE"] or None,
        max_http_buffer_size=64 * 1024,
        **frame_options(),  # every malformed frame is answered, not dropped
    )
    init_frames(socketio)
    server = socketio.server  # this app's server, even after another app is built
    rooms = Rooms(
        lambda: app.extensions["threadroom.assistant"],
        ThreadDirectory(app.config["ENGINE_DB"]),
        secret=app.config["SECRET_KEY"],
        emit=lambda event, data, **kw: server.emit(event, data, namespace="/", **kw),
        spawn=server.start_background_task,
        sleep=server.sleep,
        empty_room_ttl_s=app.config["EMPTY_ROOM_TTL_S"],
        stream_mode=app.config["STREAM_MODE"],
    )
    app.extensions[EXTENSION] = rooms
    socketio.on_namespace(ChatNamespace(rooms, app.config["MAX_MESSAGE_CHARS"]))


def get_rooms(app: Flask) -> Rooms:
    """Return the app's rooms."""
    return app.extensions[EXTENSION]

"""Socket.IO: the unbound ``socketio`` and ``init_sockets`` that binds it to an app."""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Flask
from flask_socketio import SocketIO

from ops.setup import observe_turns
from rooms.directory import ThreadDirectory
from rooms.directory import call_here
from rooms.limits import Limits
from rooms.limits import LimitSettings
from sockets.chat import ChatNamespace
from sockets.frames import frame_options
from sockets.frames import init_frames
from sockets.rooms import Rooms

log = logging.getLogger(__name__)

socketio = SocketIO()
EXTENSION = "threadroom.rooms"
OFFLOAD = "threadroom.offload"


@socketio.on_error_default
def on_error(exc: Exception) -> dict:
    """Answer a handler's unexpected failure with an ack; log it, keep serving."""
    log.exception("socket handler failed", exc_info=exc)
    return {"ok": False, "error": "Something went wrong on the server."}


def init_sockets(app: Flask, offload_for: Callable[[str], Callable] | None = None):
    """Bind ``socketio`` to the app and register the chat namespace.

    The namespace is registered after ``init_app``, here in the factory, so every
    app built (one per test) gets its own namespace instance and server.

    :param offload_for: returns, for the async mode Socket.IO chose, how to run a
        blocking call off the event loop; kept as ``app.extensions[OFFLOAD]`` for
        everything else that talks to SQLite.
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
    offload = offload_for(server.async_mode) if offload_for else call_here
    app.extensions[OFFLOAD] = offload
    rooms = Rooms(
        lambda: app.extensions["threadroom.assistant"],
        ThreadDirectory(app.config["ENGINE_DB"], offload),
        secret=app.config["SECRET_KEY"],
        emit=observe_turns(  # the per-turn log line and metrics watch the room
            app, lambda event, data, **kw: server.emit(event, data, namespace="/", **kw)
        ),
        spawn=server.start_background_task,
        sleep=server.sleep,
        empty_room_ttl_s=app.config["EMPTY_ROOM_TTL_S"],
        stream_mode=app.config["STREAM_MODE"],
        limits=Limits(LimitSettings.from_config(app.config)),
    )
    app.extensions[EXTENSION] = rooms
    socketio.on_namespace(ChatNamespace(rooms, app.config["MAX_MESSAGE_CHARS"]))


def get_rooms(app: Flask) -> Rooms:
    """Return the app's rooms."""
    return app.extensions[EXTENSION]

"""Socket.IO: ``init_sockets`` gives each app its own ``SocketIO`` and chat namespace.

There is no module-level ``SocketIO``: one bound to several apps in one process
swaps its server on every ``init_app``, so a client of one app would talk to the
last one built.  Flask-SocketIO keeps each app's instance in
``app.extensions["socketio"]``; ``get_socketio`` reads it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import urlsplit

import redis
from flask import Flask
from flask_socketio import SocketIO

from config import ConfigError
from ops.setup import observe_turns
from rooms.cluster import Cluster
from rooms.cluster import connect
from rooms.directory import ThreadDirectory
from rooms.directory import call_here
from rooms.limits import Limits
from rooms.limits import LimitSettings
from rooms.protocol import Emitter
from rooms.rooms import EXTENSION
from rooms.rooms import Rooms
from sockets.chat import ChatNamespace
from sockets.frames import frame_options
from sockets.frames import init_frames
from sockets.transport import decline_websocket_compression
from web.cors import origin_check

log = logging.getLogger(__name__)

OFFLOAD = "threadroom.offload"


def on_error(exc: Exception) -> dict:
    """Answer a handler's unexpected failure with an ack; log it, keep serving."""
    log.exception("socket handler failed", exc_info=exc)
    return {"ok": False, "error": "Something went wrong on the server."}


def init_sockets(
    app: Flask, offload_for: Callable[[str], Callable] | None = None
) -> SocketIO:
    """Give the app its ``SocketIO``, its rooms and the chat namespace.

    :param offload_for: returns, for the async mode Socket.IO chose, how to run a
        blocking call off the event loop; kept as ``app.extensions[OFFLOAD]`` for
        everything else that talks to SQLite.
    """
    socketio = SocketIO(
        app,
        async_mode=app.config["ASYNC_MODE"],
        # None: same-origin only; a list: those origins and the page's own.
        cors_allowed_origins=origin_check(app.config["CORS_ALLOWED_ORIGINS"])
        if app.config["CORS_ALLOWED_ORIGINS"]
        else None,
        # Shared mode: every emit goes through Redis to every process's clients.
        message_queue=app.config["SOCKETIO_MESSAGE_QUEUE"]
        or app.config["REDIS_URL"]
        or None,
        channel=app.config["REDIS_PREFIX"],
        max_http_buffer_size=64 * 1024,
        **frame_options(),  # every malformed frame is answered, not dropped
    )
    socketio.on_error_default(on_error)
    wrapped = decline_websocket_compression(app.wsgi_app)
    app.wsgi_app = wrapped  # type: ignore[method-assign]
    server = socketio.server
    offload = offload_for(server.async_mode) if offload_for else call_here
    app.extensions[OFFLOAD] = offload
    emitter = Emitter(
        observe_turns(  # the per-turn log line and metrics watch what rooms are told
            app,
            lambda event, data, *, to, skip_sid=None: server.emit(
                event, data, to=to, skip_sid=skip_sid, namespace="/"
            ),
        )
    )
    init_frames(socketio, emitter)
    cluster = None
    if app.config["REDIS_URL"]:  # shared mode: the rooms' state lives in Redis
        cluster = Cluster(
            connect(app.config["REDIS_URL"]),
            app.config["REDIS_PREFIX"],
            spawn=server.start_background_task,
            sleep=server.sleep,
        )
    rooms = Rooms(
        lambda: app.extensions["threadroom.assistant"],
        ThreadDirectory(app.config["DATABASE_URL"] or app.config["ENGINE_DB"], offload),
        secret=app.config["SECRET_KEY"],
        emitter=emitter,
        spawn=server.start_background_task,
        sleep=server.sleep,
        empty_room_ttl_s=app.config["EMPTY_ROOM_TTL_S"],
        stream_mode=app.config["STREAM_MODE"],
        limits=Limits(LimitSettings.from_config(app.config)),
        ban_s=app.config["ROOM_BAN_S"],
        legacy_stream_senders=app.config["LEGACY_STREAM_SENDERS"] == "address",
        state=cluster.state if cluster else None,
        peers=cluster,
    )
    if cluster:
        try:
            cluster.start(rooms)
        except redis.RedisError as exc:
            where = urlsplit(app.config["REDIS_URL"]).netloc.rpartition("@")[2]
            raise ConfigError(
                f"Cannot reach Redis at {where} (REDIS_URL): {str(exc).rstrip('.')}."
                " Start Redis, or"
                " unset REDIS_URL to run a single process."
            ) from exc
    app.extensions[EXTENSION] = rooms
    socketio.on_namespace(ChatNamespace(rooms, app.config["MAX_MESSAGE_CHARS"]))
    return socketio


def get_socketio(app: Flask) -> SocketIO:
    """Return the app's ``SocketIO`` (what ``socketio.run`` and test clients need)."""
    return app.extensions["socketio"]

"""Threadroom: one AI assistant in a shared group chat.

``python app.py`` serves the app on eventlet; ``gunicorn -k eventlet -w 1
'app:create_app()'`` does the same under gunicorn.  Monkey-patching is the entry
point's job and happens in ``__main__`` only, so tests and other servers import this
module untouched (switching to gevent is a one-line change here).
"""

from __future__ import annotations

if __name__ == "__main__":  # the entry point: patch before anything else is imported
    import warnings

    # eventlet announces its own deprecation on import; we know, and chose it for
    # deployment (gevent is a one-line switch here).
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    import eventlet

    eventlet.monkey_patch()

import logging
import os
import secrets
from collections.abc import Callable
from collections.abc import Mapping

from flask import Flask

from assistant.setup import init_assistant
from config import Config
from rooms.directory import call_here
from rooms.rooms import get_rooms
from routes import init_routes
from routes.security import init_security
from sockets import get_socketio
from sockets import init_sockets

LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"


def init_logging() -> None:
    """Log at INFO to stderr, without a line for every in-process engine call."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    logging.getLogger("httpx2").setLevel(logging.WARNING)


def instance_secret(folder: str) -> str:
    """Return this installation's random secret key, made on first use.

    A published default would let anyone forge identity tokens; a key made per
    process would sign everyone out at every restart.
    """
    path = os.path.join(folder, "secret_key")
    if not os.path.exists(path):
        os.makedirs(folder, exist_ok=True)
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(secrets.token_hex(32))
    with open(path) as f:
        return f.read().strip()


def blocking_offload(async_mode: str) -> Callable:
    """Return how to run a blocking call (SQLite) off the event loop in this async
    mode: in a real OS thread under eventlet or gevent, as it is otherwise.

    SQLite is C code the hub cannot switch around: on the loop, one locked file
    would freeze every connection.  This is the one place that knows the servers.
    """
    if async_mode == "eventlet":
        from eventlet import tpool

        return tpool.execute
    if async_mode == "gevent":
        import gevent

        return lambda fn, *args: gevent.get_hub().threadpool.apply(fn, args)
    return call_here


def create_app(config: Mapping | None = None, *, assistant=None) -> Flask:
    """Create and configure an instance of the Threadroom application.

    :param config: settings that override ``Config`` (tests pass their own).
    :param assistant: an ``AssistantService`` to use instead of building one.
    """
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_object(Config)
    if config:
        app.config.from_mapping(config)
    if not app.config["ENGINE_DB"]:
        os.makedirs(app.instance_path, exist_ok=True)
        app.config["ENGINE_DB"] = os.path.join(app.instance_path, "threadroom.sqlite3")
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = instance_secret(app.instance_path)
    init_logging()
    init_sockets(app, blocking_offload)
    init_assistant(app, assistant)
    # After the engine took its file lock: never mend another live process's rooms.
    get_rooms(app).recover()
    init_routes(app)
    init_security(app)  # last: it wraps Socket.IO and the /v1 mount as well
    return app


if __name__ == "__main__":
    application = create_app({"ASYNC_MODE": "eventlet"})
    host, port = application.config["HOST"], application.config["PORT"]
    logging.getLogger("threadroom").info("serving on http://%s:%s", host, port)
    get_socketio(application).run(
        application,
        host=host,
        port=port,
        log_output=False,
        # eventlet's WSGI server stops accepting at 1,024 connections by default.
        max_size=10_000,
        # ...and holds back writes under 4 KiB, which would buffer a whole /stream
        # reply; send each SSE frame as it is written.
        minimum_chunk_size=0,
    )

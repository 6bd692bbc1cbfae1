"""Threadroom: one AI assistant in a shared group chat.

``python app.py`` serves the app on eventlet; ``gunicorn -k gevent -w 1
'app:create_app()'`` (or ``-k eventlet`` with gunicorn < 26) serves it under
gunicorn.  Monkey-patching is the entry point's job (``__main__`` here, the worker
under gunicorn), so tests and other servers import this module untouched; the
factory then picks the async mode that the process was patched for.
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
import sys
from collections.abc import Callable
from collections.abc import Mapping

from flask import Flask

from assistant.setup import init_assistant
from config import Config
from config import ConfigError
from config import check_config
from ops.file_limit import raise_file_limit
from ops.logs import init_logging
from ops.logs import log_wsgi_errors
from ops.proxy import init_proxy
from ops.setup import init_observers
from ops.setup import init_ops
from rooms.directory import call_here
from rooms.rooms import get_rooms
from routes import init_routes
from routes.security import init_security
from sockets import get_socketio
from sockets import init_sockets

log = logging.getLogger("threadroom")


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


def patched_async_mode() -> str | None:
    """Return the async mode this process was monkey-patched for, if any.

    gunicorn's gevent and eventlet workers patch before loading the app; left to
    itself, python-engineio would pick eventlet whenever it is installed, even in
    a gevent worker.  Only a library already imported is asked.
    """
    gevent_monkey = sys.modules.get("gevent.monkey")
    if gevent_monkey is not None and gevent_monkey.is_module_patched("socket"):
        return "gevent"
    eventlet_patcher = sys.modules.get("eventlet.patcher")
    if eventlet_patcher is not None and eventlet_patcher.is_monkey_patched("socket"):
        return "eventlet"
    return None


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
        if app.config["REDIS_URL"]:  # a token signed by one process is read by all
            raise ConfigError(
                "Shared mode (REDIS_URL) needs SECRET_KEY, the same on every"
                " process, e.g. SECRET_KEY=$(python3 -c 'import secrets;"
                " print(secrets.token_hex(32))')"
            )
        app.config["SECRET_KEY"] = instance_secret(app.instance_path)
    if not app.config["ASYNC_MODE"]:
        app.config["ASYNC_MODE"] = patched_async_mode()
    check_config(app.config)
    init_logging(app.config["LOG_LEVEL"], app.config["LOG_FORMAT"])
    init_observers(app)  # before the sockets and the assistant, which it observes
    init_sockets(app, blocking_offload)
    init_assistant(app, assistant)
    # After the engine took its file lock: never mend another live process's rooms.
    # In shared mode the process taking over a room's lapsed lease does it.
    if not app.config["REDIS_URL"]:
        get_rooms(app).record.recover()
    init_routes(app)
    init_ops(app, get_rooms(app), get_socketio(app).server)
    init_security(app)  # it wraps Socket.IO and the /v1 mount as well
    app.wsgi_app = log_wsgi_errors(app.wsgi_app)  # type: ignore[method-assign]
    init_proxy(app)  # outermost: every layer sees the client's address and prefix
    return app


# eventlet's WSGI server's connection cap here (``max_size``), and the open-file
# limit it needs: a descriptor per connection, and some spare for the listener,
# the store, logs and outgoing requests.
MAX_CONNECTIONS = 10_000
SPARE_FILES = 100


def listen(host: str, port: int):
    """Return eventlet's listening socket for ``host:port``, with Nagle off.

    Connections accepted from it inherit TCP_NODELAY (Linux, BSD): otherwise a
    small WebSocket frame written right after another (an ack, then the
    broadcast) waits for the client's delayed ACK, up to 40 ms.  Node and
    gunicorn set it for the same reason.
    """
    import socket

    import eventlet

    listener = eventlet.listen((host, port))
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return listener


def small_buffer_protocol():
    """Return eventlet's HTTP protocol with 1 KiB socket buffers instead of 8 + 16.

    Every connection keeps the read and write buffers of the request that opened
    it, and a WebSocket's request never ends: eventlet's defaults cost an idle
    Socket.IO connection about 11 KB of its 70 (issue 14).  WebSocket frames go
    straight to the socket; larger HTTP writes bypass a small buffer.  Never 0:
    eventlet's unbuffered ``writelines`` can lose data (its issue 295).
    """
    import eventlet.wsgi

    class SmallBufferProtocol(eventlet.wsgi.HttpProtocol):
        rbufsize = 1024
        wbufsize = 1024

    return SmallBufferProtocol


def serve(app: Flask) -> None:
    """Serve the app on eventlet's WSGI server (the entry point has patched).

    Called directly rather than through ``socketio.run``, which keeps eventlet's
    default ``debug=True``: that sends a 500's traceback to the client.
    """
    import eventlet
    import eventlet.wsgi

    host, port = app.config["HOST"], app.config["PORT"]
    log.info("serving on http://%s:%s", host, port)
    eventlet.wsgi.server(
        listen(host, port),
        app,
        debug=False,
        log_output=False,
        # eventlet's WSGI server stops accepting at 1,024 connections by default.
        max_size=MAX_CONNECTIONS,
        protocol=small_buffer_protocol(),
        # ...and holds back writes under 4 KiB, which would buffer a whole /stream
        # reply; send each SSE frame as it is written.
        minimum_chunk_size=0,
    )


if __name__ == "__main__":
    try:
        application = create_app({"ASYNC_MODE": "eventlet"})
    except ConfigError as exc:
        init_logging()
        log.error("configuration error: %s", exc)
        sys.exit(2)
    raise_file_limit(log, MAX_CONNECTIONS + SPARE_FILES)
    serve(application)

"""gunicorn's settings for Threadroom (gunicorn reads ./gunicorn.conf.py by default).

One worker per process (Socket.IO needs sticky sessions; scale with shared mode),
up to 10,000 connections each, and, as ``python app.py`` does, the soft limit on
open files raised to the hard limit before the worker starts: each connection
holds a file descriptor, and the usual soft limit (1,024) would refuse
connections long before 10,000.  It imports only ``ops.file_limit`` (standard
library only): the master must not import the app before its worker has
monkey-patched.
"""

from ops.file_limit import raise_file_limit

workers = 1
worker_connections = 10_000


def on_starting(server) -> None:
    """Raise the soft open-file limit to the hard limit; the worker inherits it."""
    limit = raise_file_limit(server.log, worker_connections + 100)
    server.log.info("open-file limit: %s", limit)

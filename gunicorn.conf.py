"""gunicorn's settings for Threadroom (gunicorn reads ./gunicorn.conf.py by default).

One worker per process (Socket.IO needs sticky sessions; scale with shared mode),
up to 10,000 connections each, and, as ``python app.py`` does, the soft limit on
open files raised to the hard limit before the worker starts: each connection
holds a file descriptor, and the usual soft limit (1,024) would refuse
connections long before 10,000.  Stdlib only: the master must not import the app
before its worker has monkey-patched.
"""

import resource

workers = 1
worker_connections = 10_000


def on_starting(server) -> None:
    """Raise the soft open-file limit to the hard limit; the worker inherits it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:  # a platform cap below the hard limit
            server.log.warning("could not raise the open-file limit: %s", exc)
    server.log.info("open-file limit: %s", soft)

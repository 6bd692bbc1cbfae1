"""The open-file limit: each connection holds a file descriptor, and the usual soft
limit (1,024) would refuse connections long before the server's 10,000.

Standard library only: gunicorn's master imports this from ``gunicorn.conf.py``
before its worker has monkey-patched, so nothing here may import the app.
"""

from __future__ import annotations

import resource


def raise_file_limit(log=None, needed: int = 0) -> int:
    """Raise this process's soft limit on open files to its hard limit (children
    inherit it); return the soft limit it ends with.

    Only the hard limit needs an administrator (``ulimit -Hn``, systemd's
    ``LimitNOFILE``).  With ``log`` (a ``logging.Logger`` or gunicorn's), a refusal,
    and a limit below ``needed`` descriptors, are said once."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:  # a platform cap below the hard limit
            if log is not None:
                log.warning("could not raise the open-file limit to %s: %s", hard, exc)
    if log is not None and soft != resource.RLIM_INFINITY and soft < needed:
        log.warning(
            "the open-file limit is %s, below the %s this server may need; raise the"
            " hard limit (ulimit -Hn, systemd LimitNOFILE)",
            soft,
            needed,
        )
    return soft

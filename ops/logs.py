"""Where log lines go and how they look: text for people, JSON for log shippers.

Also quiets one known-harmless line: eventlet's WebSocket ``close()`` shuts a
socket down that the browser's leaving already closed, and writes ``socket
shutdown error: [Errno 9] Bad file descriptor`` to ``wsgi.errors`` each time
(eventlet ignores only ENOTCONN there).  Everything else written to
``wsgi.errors`` is logged as a warning, so real errors still show.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable

from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"
_OURS = "_threadroom_handler"  # marks the handler this module installed
HARMLESS_WSGI_ERRORS = re.compile(r"socket shutdown error: \[Errno 9\] ")


def init_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Log at ``level`` to stderr, as text or one JSON object per line.

    When something else already configured the root logger (a test runner, an
    embedding application, gunicorn's ``--log-config``), its handlers are kept.
    """
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, _OURS, False)]
    if not ours and root.handlers:
        return
    handler = ours[0] if ours else logging.StreamHandler(sys.stderr)
    setattr(handler, _OURS, True)
    handler.setFormatter(json_formatter() if fmt == "json" else text_formatter())
    if not ours:
        root.addHandler(handler)
    root.setLevel(level.upper())
    # One line per in-process engine call would drown the per-turn lines.
    logging.getLogger("httpx2").setLevel(logging.WARNING)


def text_formatter() -> logging.Formatter:
    """Return the plain-text formatter."""
    return logging.Formatter(TEXT_FORMAT)


def json_formatter() -> logging.Formatter:
    """Return the JSON formatter: time, level, logger, message and any extra
    fields (a turn's line carries its fields under ``turn``)."""
    return JsonFormatter(
        JSON_FIELDS,
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
    )


class WsgiErrors:
    """A ``wsgi.errors`` stream that writes to a logger, line by line."""

    def __init__(self, logger: logging.Logger) -> None:
        self._log = logger

    def write(self, text: str) -> int:
        """Log each line; the known-harmless shutdown line only at DEBUG."""
        for line in text.splitlines():
            if not line.strip():
                continue
            harmless = HARMLESS_WSGI_ERRORS.search(line)
            self._log.log(logging.DEBUG if harmless else logging.WARNING, "%s", line)
        return len(text)

    def writelines(self, lines) -> None:
        """Log several chunks."""
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        """Nothing is buffered."""


def log_wsgi_errors(wsgi_app: Callable) -> Callable:
    """Wrap a WSGI app so what servers write to ``wsgi.errors`` goes to logging."""
    stream = WsgiErrors(logging.getLogger("threadroom.wsgi"))

    def app(environ, start_response):
        environ["wsgi.errors"] = stream
        return wsgi_app(environ, start_response)

    return app

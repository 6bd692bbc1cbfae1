"""Map errors to JSON at the HTTP edge (the page itself is the only HTML)."""

from __future__ import annotations

import logging

from flask import Flask
from flask import jsonify
from werkzeug.exceptions import HTTPException

from assistant.errors import AssistantError

log = logging.getLogger(__name__)


def init_errors(app: Flask) -> None:
    """Install handlers that answer every error as ``{"error": "..."}``."""

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        """Answer 404s, 405s and friends as JSON."""
        return jsonify(error=exc.description), exc.code

    @app.errorhandler(AssistantError)
    def assistant_error(exc: AssistantError):
        """Answer a backend failure with its plain sentence."""
        return jsonify(error=exc.message), exc.status

    @app.errorhandler(Exception)
    def unexpected_error(exc: Exception):
        """Log a bug and answer a generic 500."""
        log.exception("unhandled error", exc_info=exc)
        return jsonify(error="Something went wrong on the server."), 500

"""HTTP blueprints: the page and health check, and the ``/stream`` endpoint."""

from __future__ import annotations

from flask import Flask

from routes.errors import init_errors
from routes.pages import bp as pages_bp
from routes.stream import bp as stream_bp


def init_routes(app: Flask) -> None:
    """Register the blueprints and the JSON error handlers."""
    app.register_blueprint(pages_bp)
    app.register_blueprint(stream_bp)
    init_errors(app)

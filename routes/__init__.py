"""HTTP blueprints: the page and health checks (/healthz, /readyz, /metrics),
``/stream`` and ``/export``."""

from __future__ import annotations

from flask import Flask

from assistant.engine.jsonbounds import BoundedJSONProvider
from routes.errors import init_errors
from routes.export import bp as export_bp
from routes.ops import bp as ops_bp
from routes.pages import bp as pages_bp
from routes.stream import bp as stream_bp
from web.cors import init_cors


def init_routes(app: Flask) -> None:
    """Register the blueprints and the JSON error handlers."""
    # Bodies nested thousands deep would end in RecursionError (a 500); this
    # provider refuses them as malformed JSON, which every route answers with 400.
    app.json = BoundedJSONProvider(app)
    app.register_blueprint(pages_bp)
    app.register_blueprint(stream_bp)
    app.register_blueprint(export_bp)
    app.register_blueprint(ops_bp)
    init_cors(app)
    init_errors(app)

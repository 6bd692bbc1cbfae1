"""The chat page and the health check."""

from __future__ import annotations

from flask import Blueprint
from flask import current_app
from flask import jsonify
from flask import render_template

from assistant.setup import get_assistant

bp = Blueprint("pages", __name__)


@bp.get("/")
def index():
    """Serve the one page people use."""
    info = get_assistant(current_app).info
    return render_template(
        "index.html",
        assistant_name=info.name,
        backend=info.backend,
        model=info.model,
        is_demo=info.is_demo,
        max_message_chars=current_app.config["MAX_MESSAGE_CHARS"],
        stream_default=True,
        # Shared mode runs behind a load balancer: long-polling's requests must all
        # reach one process (sticky sessions), a WebSocket is one connection.
        websocket_only=bool(current_app.config["REDIS_URL"]),
    )


@bp.get("/healthz")
def healthz():
    """Say the app is up and which backend and model answer (never a key)."""
    info = get_assistant(current_app).info
    return jsonify(status="ok", backend=info.backend, model=info.model)

"""``GET /export``: a room's conversation as a Markdown file, for its members."""

from __future__ import annotations

import datetime

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import jsonify
from flask import request

from rooms.errors import Refusal
from rooms.rooms import get_rooms

bp = Blueprint("export", __name__)


@bp.get("/export")
def export():
    """Send the conversation of ``?room=`` to someone in it; who they are comes in
    the ``X-Threadroom-User-Id`` and ``X-Threadroom-Token`` headers (never in the
    URL, which ends up in logs and history)."""
    room = request.args.get("room", "")
    user_id = request.headers.get("X-Threadroom-User-Id", "")
    token = request.headers.get("X-Threadroom-Token", "")
    try:
        markdown = get_rooms(current_app).transcript(room, user_id, token)
    except Refusal as exc:
        return jsonify(error=exc.message), exc.status
    day = datetime.date.today().isoformat()
    filename = f"threadroom-{room}-{day}.md"  # room names are [a-z0-9_-] only
    return Response(
        markdown,
        mimetype="text/markdown",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )

"""Server-sent events: the frames and headers of every event stream the app sends.

Both ``/stream`` (routes/) and the engine's Assistants streams (assistant/engine/)
write through here, so neither imports the other.
"""

from __future__ import annotations

import json
from typing import Any

# no-cache: a proxy must not hold the stream; X-Accel-Buffering: nginx must not
# buffer it until the end.
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def frame(event: str, data: Any) -> str:
    """Return one event with compact JSON data, ended by the blank line."""
    return text_frame(event, json.dumps(data, separators=(",", ":")))


def text_frame(event: str, text: str) -> str:
    """Return one event whose data is ``text`` as it is (one line, no newline)."""
    return f"event: {event}\ndata: {text}\n\n"


def comment(text: str) -> str:
    """Return a comment line, which clients ignore (a keep-alive, an early byte)."""
    return f": {text}\n\n"

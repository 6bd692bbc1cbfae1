"""The engine's API error, shaped like OpenAI's ``{"error": {...}}`` bodies."""

from __future__ import annotations

from typing import Any


class EngineError(Exception):
    """A request the engine refuses; ``api.py`` turns it into a JSON error response."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        param: str | None = None,
        code: str | None = None,
        type: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.param = param
        self.code = code
        self.type = type

    def body(self) -> dict[str, Any]:
        """Return the wire error body."""
        error = {
            "message": self.message,
            "type": self.type,
            "param": self.param,
            "code": self.code,
        }
        return {"error": error}


def not_found(kind: str, obj_id: str) -> EngineError:
    """Return the 404 for an unknown id, e.g. "No thread found with id 'thread_x'."."""
    return EngineError(f"No {kind} found with id '{obj_id}'.", status=404)

"""The one exception that leaves ``assistant/``."""


class AssistantError(Exception):
    """Something went wrong talking to the assistant backend.

    ``message`` is a plain sentence safe to show to people in the room.  ``reason``
    says what the caller can do about it: ``"busy"`` (the backend's store is busy:
    try the same again shortly), ``"rejected"`` (the backend refused the request
    itself: sending it again will fail again) or ``"backend"`` (anything else).
    """

    def __init__(
        self, message: str, *, status: int = 502, reason: str = "backend"
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.reason = reason

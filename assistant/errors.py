"""The one exception that leaves ``assistant/``."""


class AssistantError(Exception):
    """Something went wrong talking to the assistant backend.

    ``message`` is a plain sentence safe to show to people in the room.
    """

    def __init__(self, message: str, *, status: int = 502) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

"""The one exception the room domain raises at people: a clear refusal."""

from __future__ import annotations


class Refusal(Exception):
    """Something a person asked for is refused; ``message`` says why, plainly.

    ``retry_after`` (seconds) is set when waiting helps (a rate or capacity limit):
    Socket.IO acks carry it, HTTP answers 429 with ``Retry-After``.
    """

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after

    def ack(self) -> dict:
        """Return the Socket.IO ack for this refusal."""
        ack: dict = {"ok": False, "error": self.message}
        if self.retry_after is not None:
            ack["retry_after"] = self.retry_after
        return ack

    @property
    def status(self) -> int:
        """Return the HTTP status: 429 for limits, 400 for everything else."""
        return 429 if self.retry_after is not None else 400

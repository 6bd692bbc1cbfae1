"""The one exception the room domain raises at people: a clear refusal."""

from __future__ import annotations

from rooms.protocol import Ack


class Refusal(Exception):
    """Something a person asked for is refused; ``message`` says why, plainly.

    ``retry_after`` (seconds) is set when waiting helps (a rate or capacity limit):
    Socket.IO acks carry it, HTTP answers 429 with ``Retry-After``.
    """

    def __init__(
        self, message: str, *, retry_after: int | None = None, status: int = 0
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        self._status = status

    def ack(self) -> Ack:
        """Return the Socket.IO ack for this refusal."""
        ack = Ack(ok=False, error=self.message)
        if self.retry_after is not None:
            ack["retry_after"] = self.retry_after
        return ack

    @property
    def status(self) -> int:
        """Return the HTTP status: as given, else 429 for limits and 400 for
        everything else."""
        if self._status:
            return self._status
        return 429 if self.retry_after is not None else 400


STORE_BUSY = "The conversation store is busy; try again in a moment."


class StoreBusy(Refusal):
    """The room's store stayed locked past its timeout: try again shortly."""

    def __init__(self) -> None:
        super().__init__(STORE_BUSY, retry_after=2, status=503)

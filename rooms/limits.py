"""Rate limits of the rooms, on the ``limits`` library (memory now, Redis later).

Rates (per person, per client address) are moving windows kept in a ``limits``
storage named by URI: ``memory://`` for one process, ``redis://…`` once several
processes share the rooms.  Counts (rooms, connections, members, queue depth) are
checked where the state lives; their numbers are held here with the rates, so
every limit is configured in one place.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

from limits import RateLimitItem
from limits import parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from rooms.errors import Refusal


@dataclass(frozen=True)
class LimitSettings:
    """Every limit, as configured (``config.py`` documents each)."""

    message_rate: str = "10 per 10 seconds; 60 per minute"
    queued_per_person: int = 5
    registration_rate: str = "60 per minute"
    new_room_rate: str = "10 per minute"
    max_rooms: int = 1000
    max_connections: int = 10000
    max_room_members: int = 200
    max_room_queue: int = 50
    storage_uri: str = "memory://"
    key_prefix: str = "threadroom"  # Redis storage: keys under <prefix>:limits

    @classmethod
    def from_config(cls, config: Mapping) -> LimitSettings:
        """Read the ``LIMIT_*`` settings of an app's config."""
        return cls(
            message_rate=config["LIMIT_MESSAGE_RATE"],
            queued_per_person=config["LIMIT_QUEUED_PER_PERSON"],
            registration_rate=config["LIMIT_REGISTRATION_RATE"],
            new_room_rate=config["LIMIT_NEW_ROOM_RATE"],
            max_rooms=config["LIMIT_ROOMS"],
            max_connections=config["LIMIT_CONNECTIONS"],
            max_room_members=config["LIMIT_ROOM_MEMBERS"],
            max_room_queue=config["LIMIT_ROOM_QUEUE"],
            # Shared mode counts in Redis, so a limit holds across every process.
            storage_uri=config["LIMIT_STORAGE_URI"]
            or config.get("REDIS_URL")
            or "memory://",
            key_prefix=config.get("REDIS_PREFIX") or "threadroom",
        )


class Limits:
    """Check people's actions against the configured rates and counts."""

    def __init__(self, settings: LimitSettings | None = None) -> None:
        self.settings = settings or LimitSettings()
        uri = self.settings.storage_uri
        options = {}
        if uri.startswith(("redis://", "rediss://")):  # deployments may share Redis
            options["key_prefix"] = f"{self.settings.key_prefix}:limits"
        self._limiter = MovingWindowRateLimiter(storage_from_string(uri, **options))
        self._message_rate = _parse(self.settings.message_rate)
        self._registration_rate = _parse(self.settings.registration_rate)
        self._new_room_rate = _parse(self.settings.new_room_rate)
        self.refusals = 0  # counted for the operators' metrics

    def message(self, user_id: str) -> None:
        """Count a message of ``user_id``; refuse it past the message rate."""
        self._hit(
            self._message_rate,
            "message",
            user_id,
            "You are sending messages too fast; wait {wait} s and try again.",
        )

    def registration(self, address: str) -> None:
        """Count a registration from ``address``; refuse it past the rate."""
        self._hit(
            self._registration_rate,
            "register",
            address,
            "Too many sign-ins from your network; wait {wait} s and try again.",
        )

    def new_room(self, address: str) -> None:
        """Count a room opened from ``address``; refuse it past the rate."""
        self._hit(
            self._new_room_rate,
            "room",
            address,
            "Too many new rooms from your network; wait {wait} s, or join an"
            " existing room.",
        )

    def refuse(self, message: str, retry_after: int | None = None) -> Refusal:
        """Return a refusal for a count limit (and count it)."""
        self.refusals += 1
        return Refusal(message, retry_after=retry_after)

    def _hit(
        self, rates: list[RateLimitItem], kind: str, key: str, sentence: str
    ) -> None:
        """Take one from every window of ``rates``, or raise the first refusal.

        Windows are tested before any is hit, so a refused action costs nothing.
        """
        for rate in rates:
            if not self._limiter.test(rate, kind, key):
                reset = self._limiter.get_window_stats(rate, kind, key).reset_time
                wait = max(1, math.ceil(reset - time.time()))
                raise self.refuse(sentence.format(wait=wait), retry_after=wait)
        for rate in rates:
            self._limiter.hit(rate, kind, key)


def _parse(rates: str) -> list[RateLimitItem]:
    """Parse ``"10 per 10 seconds; 60 per minute"``; blank means no limit."""
    return parse_many(rates) if rates.strip() else []

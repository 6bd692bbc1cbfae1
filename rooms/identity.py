"""Who people are: identity tokens, the rules for claiming a user id, nicknames
that are unique in a room and never the assistant's."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from itsdangerous import BadSignature
from itsdangerous import Signer

from rooms.directory import ThreadDirectory
from rooms.errors import Refusal
from rooms.inbound import MAX_NAME_CHARS
from rooms.messages import SYSTEM_NAME
from rooms.names import lookalike_keys
from rooms.protocol import RegisterFields
from rooms.state import Member
from rooms.state import Room


class Identities:
    """Hand out and check identities (a user id and the token proving it)."""

    def __init__(
        self,
        directory: ThreadDirectory,
        secret: str,
        *,
        assistant_name: Callable[[], str],
        legacy_stream_senders: bool = False,
    ) -> None:
        self.directory = directory
        # A user id's token is its signature: only this installation can make one.
        self._signer = Signer(secret, salt="threadroom.user-id")
        self._assistant_name = assistant_name
        self.legacy_stream_senders = legacy_stream_senders

    def identify(
        self, room: Room, fields: RegisterFields, sid: str = "", address: str = ""
    ) -> Member:
        """Decide who a registration (or an HTTP-only sender) is.

        Several tabs of one person share a ``user_id`` and a name.  Claiming a
        ``user_id`` this server has handed out before needs the token that came with
        it, so a copied id becomes a new person, never an impersonation (even of
        someone who is away).
        """
        self._check_not_reserved(fields["name"])
        user_id = fields["user_id"]
        known = self.directory.has_user(user_id)
        if known and not self.token_valid(user_id, fields["token"]):
            user_id, known = uuid.uuid4().hex, False
        if not known:  # its token is handed out from now on
            self.directory.add_user(user_id)
        name = unique_name(room, fields["name"], user_id)
        return Member(sid, user_id, name, room.name, address)

    def legacy_sender(
        self, room: Room | None, fields: RegisterFields, address: str
    ) -> Member | None:
        """Find the socket a tokenless ``POST /stream`` comes from, when
        ``LEGACY_STREAM_SENDERS=address`` allows it: the original client registers
        over Socket.IO, then posts its ``user_id`` without the token.  It is taken
        for the registered tab with that ``user_id`` in that room from the same
        client address (so it is not a second person, and its own message is not
        echoed back to it); anything else stays a new person."""
        if not self.legacy_stream_senders or fields["token"] or not address:
            return None
        if room is None:
            return None
        with room.lock:
            return next(
                (
                    m
                    for m in room.members.values()
                    if m.user_id == fields["user_id"] and m.address == address
                ),
                None,
            )

    def _check_not_reserved(self, name: str) -> None:
        """Refuse a nickname that looks like the assistant's or the server's."""
        reserved = (self._assistant_name(), SYSTEM_NAME, "system", "assistant")
        keys = lookalike_keys(name)
        if any(keys & lookalike_keys(taken) for taken in reserved):
            raise Refusal(
                f"The nickname {name!r} is reserved for the assistant or the server;"
                " please choose another."
            )

    def token_for(self, user_id: str) -> str:
        """Return the token that proves a client registered as ``user_id``."""
        return self._signer.get_signature(user_id).decode()

    def token_valid(self, user_id: str, token: str) -> bool:
        """Check a token against ``user_id`` (in constant time)."""
        try:
            return self._signer.verify_signature(user_id, token or "")
        except BadSignature:  # a token that is not even base64
            return False


def unique_name(room: Room, name: str, user_id: str) -> str:
    """Return ``name``, or ``name (2)``, ``name (3)``… if someone else has it,
    shortening the name so the result stays within 32 characters."""
    candidate, number = name, 1
    while room.name_taken(candidate, user_id):
        number += 1
        suffix = f" ({number})"
        candidate = name[: MAX_NAME_CHARS - len(suffix)].rstrip() + suffix
    return candidate

"""Check what browsers and HTTP clients send, at the edge, before anything changes.

Each ``parse_*`` returns ``(value, None)`` or ``(None, "a plain error sentence")``;
the ``register``/``message`` payloads (and a ``/stream`` body) come out as the
protocol's typed fields.  Socket.IO handlers and HTTP routes share these rules.
"""

from __future__ import annotations

import re
import unicodedata
import uuid

from rooms.names import clean_name
from rooms.protocol import MessageFields
from rooms.protocol import RegisterFields

MAX_NAME_CHARS = 32
MAX_ID_CHARS = 64
DEFAULT_ROOM = "lobby"
# Used with fullmatch: Python's "$" also matches before a final "\n", which would
# let "lobby\n" through as a room name (a key, a channel, a line in logs).
ROOM_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
ID_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
ALLOWED_CONTROLS = frozenset("\n\t")
# Ids the server uses for its own speakers: nobody may register as one of them.
RESERVED_USER_IDS = frozenset({"system", "assistant"})


INVALID_CHARACTER = "{what} contains an invalid character (a lone UTF-16 surrogate)."

# Bidirectional overrides can make a name or message display as something else.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def has_control_chars(text: str, allowed: frozenset[str] = frozenset()) -> bool:
    """Tell whether ``text`` holds control characters (other than ``allowed``) or
    bidi overrides.  Format characters such as the zero-width joiner inside emoji
    sequences are fine."""
    return any(
        (unicodedata.category(ch) == "Cc" and ch not in allowed) or ch in BIDI_CONTROLS
        for ch in text
    )


def has_lone_surrogate(text: str) -> bool:
    """Tell whether ``text`` holds a lone UTF-16 surrogate: Python accepts one in a
    string, but it cannot be encoded as UTF-8, so it would break the room later,
    far from where it came in."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def is_visible(text: str) -> bool:
    """Tell whether ``text`` shows anything (not only spaces or invisible marks)."""
    return any(not ch.isspace() and unicodedata.category(ch) != "Cf" for ch in text)


def parse_name(value) -> tuple[str | None, str | None]:
    """Return a nickname cleaned by ``clean_name`` (1-32 visible characters) or an
    error."""
    if not isinstance(value, str):
        return None, "Please choose a nickname."
    if has_lone_surrogate(value):
        return None, INVALID_CHARACTER.format(what="A nickname")
    if has_control_chars(value):
        return None, "A nickname cannot contain control characters."
    name = clean_name(value)
    if not is_visible(name):
        return None, "A nickname cannot be blank."
    if len(name) > MAX_NAME_CHARS:
        return None, f"A nickname can be at most {MAX_NAME_CHARS} characters long."
    return name, None


def parse_id(value, what: str) -> tuple[str | None, str | None]:
    """Return a client-chosen id, a fresh one when absent, or an error."""
    if value is None or value == "":
        return uuid.uuid4().hex, None
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        return None, f"The {what} must be up to {MAX_ID_CHARS} letters, digits or -_.:"
    return value, None


def parse_user_id(value) -> tuple[str | None, str | None]:
    """Return a client-chosen user id that is not one of the server's own."""
    user_id, error = parse_id(value, "user id")
    if user_id is not None and user_id.casefold() in RESERVED_USER_IDS:
        return None, f"The user id {user_id!r} is reserved; please use another."
    return user_id, error


def parse_room(value) -> tuple[str | None, str | None]:
    """Return the room name (``lobby`` when absent) or an error."""
    if value is None or value == "":
        return DEFAULT_ROOM, None
    if not isinstance(value, str) or not ROOM_PATTERN.fullmatch(value):
        return None, "A room name is 1-32 lowercase letters, digits, - or _."
    return value, None


def parse_register(data) -> tuple[RegisterFields | None, str | None]:
    """Validate a ``register`` payload: ``{user_id, name, room?}``."""
    if not isinstance(data, dict):
        return None, "register expects an object with user_id and name."
    name, error = parse_name(data.get("name"))
    if name is None:
        return None, error
    user_id, error = parse_user_id(data.get("user_id"))
    if user_id is None:
        return None, error
    room, error = parse_room(data.get("room"))
    if room is None:
        return None, error
    token = _short_text(data.get("token"), 128)
    passcode = _short_text(data.get("passcode"), 64)
    fields = RegisterFields(
        user_id=user_id, name=name, room=room, token=token, passcode=passcode
    )
    return fields, None


def _short_text(value, max_chars: int) -> str:
    """Return an optional short string field, or "" when it is not one."""
    return value if isinstance(value, str) and len(value) <= max_chars else ""


def parse_content(value, max_chars: int) -> tuple[str | None, str | None]:
    """Return message text that is non-empty, short enough and printable, in NFC
    (so the same words typed on two keyboards are the same text)."""
    if not isinstance(value, str):
        return None, "A message needs text content."
    if has_lone_surrogate(value):
        return None, INVALID_CHARACTER.format(what="This message")
    text = unicodedata.normalize("NFC", value.replace("\r\n", "\n").replace("\r", "\n"))
    error = None
    if not is_visible(text):
        error = "A message cannot be empty."
    elif len(text) > max_chars:
        error = f"A message can be at most {max_chars} characters long."
    elif has_control_chars(text, ALLOWED_CONTROLS):
        error = "A message cannot contain control characters."
    return (None, error) if error else (text.strip("\n"), None)


def parse_message(data, max_chars: int) -> tuple[MessageFields | None, str | None]:
    """Validate a ``message`` payload; identity and role are the server's to set."""
    if not isinstance(data, dict):
        return None, "message expects a message object."
    content, error = parse_content(data.get("content"), max_chars)
    if content is None:
        return None, error
    message_id, error = parse_id(data.get("id"), "message id")
    if message_id is None:
        return None, error
    fields = MessageFields(id=message_id, content=content)
    if data.get("reply_to") is not None:  # an extension: the message it answers
        reply_to = data["reply_to"]
        if not isinstance(reply_to, str) or not ID_PATTERN.fullmatch(reply_to):
            return None, "reply_to must be the id of a message in this room."
        fields["reply_to"] = reply_to
    return fields, None

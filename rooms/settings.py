"""A room's own settings, set by its owner, and when the assistant is addressed.

Whoever opens a room first owns it (their identity token proves it later); the
lobby, the room everyone lands in, has no owner.  The owner chooses when the
assistant answers (every message, or only when addressed), the room's name for
the assistant and instructions added to the global ones, who may stop a reply,
and a passcode that locks the room.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from werkzeug.security import check_password_hash
from werkzeug.security import generate_password_hash

from rooms.inbound import has_control_chars
from rooms.inbound import has_lone_surrogate
from rooms.inbound import parse_name
from rooms.protocol import RoomInfo

ANSWER_MODES = ("every", "addressed")
STOP_POLICIES = ("anyone", "owner_and_asker")
MAX_INSTRUCTIONS_CHARS = 2000
PASSCODE_CHARS = (4, 64)


@dataclass
class RoomSettings:
    """What a room's owner decided (kept in the room directory)."""

    owner: str | None = None  # user id; None: nobody owns the room (the lobby)
    answer_mode: str = "every"
    assistant_name: str = ""  # "" : the assistant's own name
    instructions: str = ""
    stop_policy: str = "anyone"
    passcode_hash: str = ""  # "" : the room is open
    extra: dict[str, Any] = field(default_factory=dict)  # settings of later versions

    def public(self, assistant_name: str) -> RoomInfo:
        """Describe the room's settings to its members (never the passcode)."""
        return RoomInfo(
            owner=self.owner,
            answer_mode=self.answer_mode,
            assistant_name=self.assistant_name or assistant_name,
            instructions=self.instructions,
            stop_policy=self.stop_policy,
            locked=bool(self.passcode_hash),
        )

    def admits(self, passcode: str) -> bool:
        """Tell whether ``passcode`` opens the room (any does when it is open)."""
        if not self.passcode_hash:
            return True
        return bool(passcode) and check_password_hash(self.passcode_hash, passcode)

    def to_record(self) -> dict[str, Any]:
        """Return the settings as stored."""
        return asdict(self)

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> RoomSettings:
        """Read stored settings, keeping fields this version does not know."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        unknown = {k: v for k, v in data.items() if k not in known}
        return cls(**{**known, "extra": {**known.get("extra", {}), **unknown}})


def apply_changes(
    settings: RoomSettings, data: Any
) -> tuple[list[str] | None, str | None]:
    """Check a ``room-settings`` payload and apply it to ``settings``.

    Returns the names of what changed, or an error sentence (and changes nothing).
    """
    if not isinstance(data, dict) or not data:
        return None, "room-settings expects an object with the settings to change."
    unknown = sorted(set(data) - {*CHECKS, "passcode"})
    if unknown:
        return None, f"Unknown room setting {unknown[0][:40]!r}."
    values: dict[str, Any] = {}
    for key, check in CHECKS.items():
        if key in data:
            value, error = check(data[key])
            if error:
                return None, error
            values[key] = value
    if "passcode" in data:
        passcode, error = parse_passcode(data["passcode"])
        if error:
            return None, error
        values["passcode_hash"] = generate_password_hash(passcode) if passcode else ""
    changed = [k for k, v in values.items() if getattr(settings, k) != v]
    for key in changed:
        setattr(settings, key, values[key])
    return changed, None


def _choice(options: tuple[str, ...], what: str):
    """Return a check that accepts one of ``options``."""

    def check(value: Any) -> tuple[str | None, str | None]:
        if value not in options:
            return None, f"The {what} must be one of: {', '.join(options)}."
        return value, None

    return check


def parse_assistant_name(value: Any) -> tuple[str | None, str | None]:
    """Return the room's name for the assistant ("" : its own), checked like a
    nickname."""
    if value == "" or value is None:
        return "", None
    name, error = parse_name(value)
    if error:
        return None, error.replace("A nickname", "The assistant's name")
    return name, None


def parse_instructions(value: Any) -> tuple[str | None, str | None]:
    """Return the room's instructions for the assistant (may be empty)."""
    if value is None:
        return "", None
    if not isinstance(value, str):
        return None, "The room's instructions must be text."
    if has_lone_surrogate(value) or has_control_chars(value, frozenset("\n\t")):
        return None, "The room's instructions contain an invalid character."
    text = value.strip()
    if len(text) > MAX_INSTRUCTIONS_CHARS:
        return None, (
            f"The room's instructions can be at most {MAX_INSTRUCTIONS_CHARS}"
            " characters long."
        )
    return text, None


def parse_passcode(value: Any) -> tuple[str | None, str | None]:
    """Return a new passcode ("" or None unlocks the room)."""
    if value is None or value == "":
        return "", None
    low, high = PASSCODE_CHARS
    if (
        not isinstance(value, str)
        or not low <= len(value) <= high
        or has_lone_surrogate(value)
        or has_control_chars(value)
    ):
        return None, f"A passcode is {low}-{high} printable characters."
    return value, None


CHECKS = {
    "answer_mode": _choice(ANSWER_MODES, "answer mode"),
    "assistant_name": parse_assistant_name,
    "instructions": parse_instructions,
    "stop_policy": _choice(STOP_POLICIES, "stop setting"),
}


def is_addressed(content: str, assistant_name: str) -> bool:
    """Tell whether a message speaks to the assistant by name: an @mention
    anywhere, the name first ("Ada, …", "Ada: …"), or a question naming it
    ("What do you think, Ada?")."""
    name = re.escape(assistant_name.casefold())
    text = content.casefold()
    if re.search(rf"@{name}(?!\w)", text):
        return True
    if re.match(rf"\s*((hey|hi|ok)\s+)?{name}\s*[,:!]", text):
        return True
    named = re.search(rf"(?<!\w){name}(?!\w)", text) is not None
    return named and text.rstrip().endswith("?")

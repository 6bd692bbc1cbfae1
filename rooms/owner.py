"""What a room's owner may do, and what it means for everyone else.

The owner is whoever opened the room (the lobby has none).  Their identity token
proves who they are, so ownership survives a reconnect and a restart (it is kept
in the room directory until the room expires).  They change the room's settings,
remove a person (who cannot come back for a while), and lock the room with a
passcode.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from rooms.directory import ThreadDirectory
from rooms.errors import Refusal
from rooms.inbound import DEFAULT_ROOM
from rooms.protocol import Emitter
from rooms.protocol import RemovedInfo
from rooms.protocol import RoomInfo
from rooms.settings import RoomSettings
from rooms.settings import apply_changes
from rooms.state import Member
from rooms.state import Room

NOT_OWNER = "Only the room's owner can do that."
NO_OWNER = "The lobby has no owner; open a room of your own to set one up."
SETTING_NAMES = {
    "answer_mode": "answer mode",
    "assistant_name": "assistant's name",
    "instructions": "instructions",
    "stop_policy": "stop setting",
    "passcode_hash": "passcode",
}


class RoomOwner:
    """The owner's side of a room: settings, removals, the passcode."""

    def __init__(
        self,
        directory: ThreadDirectory,
        emitter: Emitter,
        *,
        assistant_name: Callable[[], str],
        tell: Callable[[Room, str, str], None],
        ban_s: int = 600,
    ) -> None:
        self.directory = directory
        self.emitter = emitter
        self._assistant_name = assistant_name
        self._tell = tell
        self.ban_s = ban_s

    def settings(self, room: Room, claimant: str | None = None) -> RoomSettings:
        """Return the room's settings, read once; a room nobody owns yet becomes
        ``claimant``'s (the person opening it).  Call with the room lock held."""
        if room.settings is None:
            saved = self.directory.settings(room.name)
            room.settings = RoomSettings.from_record(saved) if saved else None
        if room.settings is None:
            room.settings = RoomSettings()
            if room.name != DEFAULT_ROOM and claimant:
                room.settings.owner = claimant
                self.directory.save_settings(room.name, room.settings.to_record())
        return room.settings

    def info(self, room: Room) -> RoomInfo:
        """Describe the room's settings to its members."""
        return self.settings(room).public(self._assistant_name())

    def assistant_name(self, room: Room) -> str:
        """Return what the assistant is called in this room."""
        return self.settings(room).assistant_name or self._assistant_name()

    def admit(self, room: Room, member: Member, passcode: str) -> None:
        """Refuse someone the owner removed, or a newcomer to a locked room without
        its passcode.  Another tab of someone present, and the owner, need none."""
        settings = self.settings(room)
        if member.user_id == settings.owner:
            return
        until = self.directory.banned_until(room.name, member.user_id)
        if until is not None and until > time.time():
            minutes = math.ceil((until - time.time()) / 60)
            raise Refusal(
                "The room's owner removed you from this room; you can come back in"
                f" {minutes} minute{'s' if minutes != 1 else ''}.",
                retry_after=math.ceil(until - time.time()),
                status=403,
            )
        present = any(m.user_id == member.user_id for m in room.members.values())
        if present or settings.admits(passcode):
            return
        sentence = "That passcode is not right." if passcode else "This room is locked."
        raise Refusal(f"{sentence} Ask its owner for the passcode.", status=403)

    def change(self, room: Room, member: Member, data: object) -> RoomInfo:
        """Apply the owner's changes, tell the room, and return the new settings."""
        with room.lock:
            settings = self._owned_by(room, member)
            changed, error = apply_changes(settings, data)
            if changed is None:
                raise Refusal(error or "Those settings are not valid.")
            if changed:
                self.directory.save_settings(room.name, settings.to_record())
        info = self.info(room)
        if changed:
            self.emitter.room(room.name, info)
            what = ", ".join(SETTING_NAMES[name] for name in changed)
            self._tell(room, f"{member.name} changed the room's {what}.", "info")
        return info

    def remove(self, room: Room, member: Member, user_id: object) -> Member:
        """Keep a person out of the room for ``ban_s`` seconds; return them as the
        room knew them.  Their tabs are told; the caller takes them out."""
        with room.lock:
            self._owned_by(room, member)
            target = room.person(user_id) if isinstance(user_id, str) else None
            if target is None:
                raise Refusal("That person is not in this room.")
            if target.user_id == member.user_id:
                raise Refusal("You cannot remove yourself; leave the room instead.")
            until = time.time() + self.ban_s
            self.directory.ban(room.name, target.user_id, until)
            room.http_people.pop(target.user_id, None)
            tabs = [m for m in room.members.values() if m.user_id == target.user_id]
        notice = RemovedInfo(room=room.name, by=member.name, until=int(until * 1000))
        for tab in tabs:
            self.emitter.removed(tab.sid, notice)
        self._tell(room, f"{member.name} removed {target.name} from the room.", "info")
        return target

    def _owned_by(self, room: Room, member: Member) -> RoomSettings:
        """Return the room's settings if ``member`` owns the room; refuse others."""
        settings = self.settings(room)
        if settings.owner is None:
            raise Refusal(NO_OWNER, status=403)
        if settings.owner != member.user_id:
            raise Refusal(NOT_OWNER, status=403)
        return settings

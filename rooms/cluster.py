"""Shared mode: this process among the others serving the same rooms.

- **Heartbeat**: every ``SWEEP_S`` the process renews its ``alive`` key (expiring
  after ``ALIVE_S``).  Any process that finds another's key gone takes that
  process's people out of their rooms (the others hear ``leave``); the Redis hash
  delete decides which process tells, so each leave is said once.
- **Take-over**: a room with messages waiting or a turn shown in progress, whose
  lease nobody holds, is claimed by the first process to notice; a turn left by a
  dead process is ended as interrupted, then the queue is answered.
- **Control channel** (Redis pub/sub): Stop for a turn another process runs,
  settings to read again, connections to forget, rooms that expired.

Socket.IO's own fan-out is python-socketio's Redis manager, not this.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

import redis

from rooms.shared import Keys
from rooms.shared import RedisClient
from rooms.shared import RedisState
from rooms.shared import relay_sink
from rooms.state import Member
from rooms.state import Room
from rooms.state import Sink
from rooms.state import StreamSink

if TYPE_CHECKING:
    from rooms.rooms import Rooms

log = logging.getLogger(__name__)

SWEEP_S = 1.0  # how often a process beats and looks for work left behind
ALIVE_S = 5.0  # a process not heard from this long is dead: its people leave
THREAD_GUARD_S = 30.0  # the longest one process may take to give a room a thread


def connect(url: str) -> RedisClient:
    """Return a client for ``REDIS_URL`` whose replies are str."""
    return redis.Redis.from_url(url, decode_responses=True, health_check_interval=30)


class Cluster:
    """This process's part in shared mode (``Rooms.peers``)."""

    def __init__(
        self,
        client: RedisClient,
        prefix: str,
        *,
        spawn: Callable,
        sleep: Callable[[float], None],
    ) -> None:
        self.client = client
        self.keys = Keys(prefix)
        self.process = uuid.uuid4().hex[:12]
        self.spawn = spawn
        self.sleep = sleep
        self.state = RedisState(
            client,
            self.keys,
            self.process,
            spawn=spawn,
            sleep=sleep,
            publish=self.publish,
        )
        self.rooms: Rooms | None = None
        self._running = False
        self._beaten = False  # the first beat finds no earlier key, rightly

    def start(self, rooms: Rooms) -> None:
        """Beat, sweep and listen, in background tasks, for ``rooms``.

        Raises ``redis.RedisError`` when Redis does not answer: a process that
        cannot reach the shared state must not pretend to serve."""
        self.rooms = rooms
        self._running = True
        self.beat()  # alive before the first connection registers
        self.spawn(self._sweep_forever)
        self.spawn(self._listen_forever)

    def stop(self) -> None:
        """Stop beating (the process's people leave once its key lapses)."""
        self._running = False

    # -- Peers: what Rooms asks of the other processes ----------------------

    def stop_turn(self, room: Room, member: Member) -> None:
        """Ask the process running ``room``'s turn to stop it for ``member``."""
        member_data = dataclasses.asdict(member)
        self.publish({"op": "stop", "room": room.name, "member": member_data})

    def settings_changed(self, room: Room) -> None:
        """Tell the others to read ``room``'s settings again."""
        self.publish({"op": "settings", "room": room.name})

    def forgot(self, room: Room) -> bool:
        """Drop what Redis holds of an expired room, unless someone arrived on
        another process after all; the others drop their copy."""
        if not self.state.forget(room):
            return False
        self.publish({"op": "forget", "room": room.name})
        return True

    def thread_guard(self, name: str) -> AbstractContextManager:
        """A lock across processes while room ``name`` gets its thread."""
        return self.client.lock(
            self.keys.room(name, "thread-lock"),
            timeout=THREAD_GUARD_S,
            blocking_timeout=THREAD_GUARD_S,
            thread_local=False,
        )

    def relay(self, sink: StreamSink) -> Sink:
        """Feed a /stream request of this process with its reply's frames, on a
        channel of its own (a random name, never a client's message id)."""
        return relay_sink(self.client, self.keys, sink, self.spawn)

    def publish(self, message: dict) -> None:
        """Say something on the control channel."""
        message = {**message, "from": self.process}
        self.client.publish(self.keys.control, json.dumps(message))

    # -- heartbeat and take-over --------------------------------------------

    def beat(self) -> None:
        """Say this process is alive; if it was taken for dead meanwhile (it
        stalled past ``ALIVE_S``), put its people back in their rooms."""
        alive = self.keys.process(self.process)
        with self.client.pipeline() as pipe:
            pipe.set(alive, "1", px=int(ALIVE_S * 1000), get=True)
            pipe.sadd(self.keys.processes, self.process)
            previous, _ = pipe.execute()
        if previous is None and self._beaten:
            log.warning("shared mode: this process was taken for dead; its people"
                        " rejoin their rooms")  # fmt: skip
            self._rejoin()
        self._beaten = True

    def _rejoin(self) -> None:
        """Write this process's connections back into their rooms (another
        process took them out, and told the rooms they left)."""
        assert self.rooms is not None
        for member in self.state.bound():
            room = self.rooms.room(member.room)
            present = room.members.values()
            if any(m.sid == member.sid for m in present):
                continue
            came_back = all(m.user_id != member.user_id for m in present)
            room.members[member.sid] = member
            room.joins.bump()  # an expiry the burial scheduled is now stale
            if came_back:
                self.rooms.emitter.join(room.name, member.public())

    def _sweep_forever(self) -> None:
        while self._running:
            try:
                self.beat()
                self.sweep()
            except redis.RedisError as exc:
                log.warning("shared mode: Redis did not answer the sweep: %s", exc)
            except Exception:
                log.exception("shared mode: the sweep failed")
            self.sleep(SWEEP_S)

    def sweep(self) -> None:
        """Take the people of dead processes out, and the rooms nobody works for.

        One process sweeps per interval (whichever takes the sweeper key first),
        so the cost does not grow with the number of processes."""
        sweeper = self.client.set(
            self.keys.sweeper, self.process, nx=True, px=int(SWEEP_S * 900)
        )
        if not sweeper:
            return
        for process in self.client.smembers(self.keys.processes):
            if process != self.process and not self.client.exists(
                self.keys.process(process)
            ):
                self._bury(process)
        for name in self.client.smembers(self.keys.active):
            self._visit(name)

    def _bury(self, process: str) -> None:
        """Take the people of a dead process out of their rooms."""
        assert self.rooms is not None
        index = self.keys.process(process, "members")
        for entry in self.client.smembers(index):
            room_name, _, sid = entry.partition("\n")
            room = self.rooms.room(room_name)
            member = room.members.pop(sid, None)
            if member is None:
                continue  # another process took this one out
            if all(m.user_id != member.user_id for m in room.members.values()):
                self.rooms.emitter.leave(room.name, member.public())
            if not room.members:
                self.rooms.schedule_expiry(room)
        self.client.delete(index)
        self.client.srem(self.keys.processes, process)
        log.warning("shared mode: process %s stopped; its people left", process)

    def _visit(self, name: str) -> None:
        """Claim a room with work and no worker; forget a room with no work."""
        assert self.rooms is not None
        room = self.rooms.room(name)
        if room.lease.held():
            return
        if not (room.pending or room.redo or room.busy.read() is not None):
            self.client.srem(self.keys.active, name)
            return
        if room.lease.claim():
            self.spawn(self.rooms.take_over, room)

    # -- the control channel -------------------------------------------------

    def _listen_forever(self) -> None:
        while self._running:
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self.keys.control)
                while self._running:
                    item = pubsub.get_message(timeout=1.0)
                    if item is not None and item["type"] == "message":
                        self._handle(json.loads(item["data"]))
            except redis.RedisError as exc:
                log.warning("shared mode: the control channel broke: %s", exc)
                self.sleep(SWEEP_S)
            except Exception:
                log.exception("shared mode: a control message failed")
            finally:
                pubsub.close()

    def _handle(self, message: dict) -> None:
        """Act on what another process (or this one) said."""
        assert self.rooms is not None
        op = message.get("op")
        if op == "unbind":
            for sid in message["sids"]:
                self.state.unbind_here(sid)
            return
        room = self.state.local(message.get("room", ""))
        if room is None:
            return  # this process holds nothing of that room
        if op == "stop" and room.turn is not None:
            member = Member(**message["member"])
            self.spawn(self.rooms.stop, member)
        elif op == "settings":
            room.settings = None  # read again from the database when needed
        elif op == "forget" and message.get("from") != self.process:
            with room.lock:
                room.thread_id = None
                room.settings = None
                self.state.close(room)

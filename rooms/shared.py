"""Shared mode: a room's state in Redis, so any number of processes on any hosts
serve the same rooms (``REDIS_URL`` with ``DATABASE_URL``).

Each class here is the Redis twin of a ``Memory*`` class of ``rooms.state``, with
the same methods, so ``Rooms``, ``TurnWorker`` and ``TurnRunner`` do not know which
mode they run in.  Every key starts with ``REDIS_PREFIX``:

- ``room:<name>:members`` (hash sid -> member): every connection in the room, on
  every process, each marked with its process; ``proc:<id>:members`` (set) indexes
  them by process, so the people of a process that died can be taken out.
- ``room:<name>:queue`` (list): the messages waiting for the next turn;
  ``room:<name>:unsaved`` (list): accepted, not in the thread yet.
- ``room:<name>:busy*``: the turn in progress and the reply written so far (a
  joiner on any process sees it); ``room:<name>:lease``: redis-py's lock naming the
  one process that runs the room's turns, renewed while it works.
- ``sink:<message id>`` (pub/sub channel): a ``/stream`` reply, from whichever
  process runs the turn to the process holding the HTTP request.

``cluster.Cluster`` runs the heartbeats and takes over the rooms of a process
that died.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import MutableMapping
from typing import Any

import redis
from redis.exceptions import LockError
from redis.lock import Lock

from rooms.protocol import ChatMessage
from rooms.state import BusyRecord
from rooms.state import Member
from rooms.state import MemoryState
from rooms.state import Pending
from rooms.state import Room
from rooms.state import Sink
from rooms.state import StreamSink
from rooms.state import Turn

log = logging.getLogger(__name__)

# A dead worker's room is taken over within LEASE_S (plus a sweep); renewed every
# RENEW_S, so a process must stall over 6 s (a long GC pause, a suspended VM,
# Redis out of reach) before another takes its room.
LEASE_S = 8.0
RENEW_S = 2.0
SEEN_IDS_KEPT = 2000
SINK_WAIT_S = 3600.0  # the longest a /stream request waits for its reply's frames

# A ``redis.Redis`` made with ``decode_responses=True``: every reply is a str (the
# library's annotations cannot say so, hence Any).
RedisClient = Any


class Keys:
    """Names every Redis key and channel of one deployment (``REDIS_PREFIX``)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def room(self, name: str, part: str) -> str:
        """Return the key of one part of a room's state."""
        return f"{self.prefix}:room:{name}:{part}"

    def process(self, process_id: str, part: str = "alive") -> str:
        """Return the key of one part of a process's state."""
        return f"{self.prefix}:proc:{process_id}:{part}"

    @property
    def processes(self) -> str:
        """The set of processes that have served rooms."""
        return f"{self.prefix}:procs"

    @property
    def active(self) -> str:
        """The set of rooms with something queued or a turn in progress."""
        return f"{self.prefix}:active"

    @property
    def sweeper(self) -> str:
        """Held for one sweep interval by the process sweeping in it."""
        return f"{self.prefix}:sweeper"

    @property
    def sids(self) -> str:
        """Hash: connection sid -> its member, whichever process holds it."""
        return f"{self.prefix}:sids"

    @property
    def control(self) -> str:
        """The channel processes tell each other things on (Stop, settings…)."""
        return f"{self.prefix}:control"

    def sink(self, token: str) -> str:
        """The channel one ``/stream`` request's reply travels on."""
        return f"{self.prefix}:sink:{token}"


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def member_from(raw: str | bytes | dict) -> Member:
    """Read a member written by ``RedisMembers`` (its JSON, or that decoded)."""
    data = raw if isinstance(raw, dict) else json.loads(raw)
    return Member(
        data["sid"],
        data["user_id"],
        data["name"],
        data["room"],
        data.get("address", ""),
    )


class RedisMembers(MutableMapping[str, Member]):
    """A room's connections (sid -> member), on every process."""

    def __init__(self, client: RedisClient, keys: Keys, room: str, process: str):
        self.client = client
        self.names = keys  # not .keys: a Mapping's keys()
        self.key = keys.room(room, "members")
        self.index = keys.process(process, "members")
        self.room = room
        self.process = process

    def _entries(self) -> list[dict]:
        raw = self.client.hvals(self.key)
        entries = [json.loads(value) for value in raw]
        entries.sort(key=lambda e: (e.get("at", 0), e["sid"]))  # order of arrival
        return entries

    def __getitem__(self, sid: str) -> Member:
        raw = self.client.hget(self.key, sid)
        if raw is None:
            raise KeyError(sid)
        return member_from(raw)

    def __setitem__(self, sid: str, member: Member) -> None:
        old = self.client.hget(self.key, sid)  # a renamed tab keeps its place
        at = json.loads(old)["at"] if old else time.time()
        entry = _dump({**dataclasses.asdict(member), "at": at, "proc": self.process})
        with self.client.pipeline() as pipe:
            pipe.hset(self.key, sid, entry)
            pipe.hset(self.names.sids, sid, entry)
            pipe.sadd(self.index, f"{self.room}\n{sid}")
            pipe.execute()

    def __delitem__(self, sid: str) -> None:
        if self.pop(sid, None) is None:
            raise KeyError(sid)

    def pop(self, sid: str, default: Any = None) -> Any:
        """Remove ``sid``; return its member, or ``default`` when another process
        (or an earlier call) removed it first: exactly one caller gets it."""
        with self.client.pipeline() as pipe:
            pipe.hget(self.key, sid)
            pipe.hdel(self.key, sid)
            pipe.hdel(self.names.sids, sid)
            raw, removed, _ = pipe.execute()
        if not removed:
            return default
        proc = json.loads(raw).get("proc", self.process)
        self.client.srem(self.names.process(proc, "members"), f"{self.room}\n{sid}")
        return member_from(raw)

    def __iter__(self) -> Iterator[str]:
        return iter([entry["sid"] for entry in self._entries()])

    def __len__(self) -> int:
        return int(self.client.hlen(self.key))

    def values(self) -> list[Member]:  # type: ignore[override]
        """Return the members in order of arrival (one Redis call)."""
        return [member_from(entry) for entry in self._entries()]

    def items(self) -> list[tuple[str, Member]]:  # type: ignore[override]
        """Return (sid, member) pairs in order of arrival (one Redis call)."""
        return [(m.sid, m) for m in self.values()]


class RedisPeople(MutableMapping[str, str]):
    """A room's HTTP-only people (user id -> name), on every process."""

    def __init__(self, client: RedisClient, key: str) -> None:
        self.client = client
        self.key = key

    def __getitem__(self, user_id: str) -> str:
        name = self.client.hget(self.key, user_id)
        if name is None:
            raise KeyError(user_id)
        return name

    def __setitem__(self, user_id: str, name: str) -> None:
        self.client.hset(self.key, user_id, name)

    def __delitem__(self, user_id: str) -> None:
        if not self.client.hdel(self.key, user_id):
            raise KeyError(user_id)

    def __iter__(self) -> Iterator[str]:
        return iter(self.client.hkeys(self.key))

    def __len__(self) -> int:
        return int(self.client.hlen(self.key))

    def items(self) -> list[tuple[str, str]]:  # type: ignore[override]
        """Return (user id, name) pairs (one Redis call)."""
        return list(self.client.hgetall(self.key).items())


class RelaySink:
    """A ``/stream`` caller's sink on another process (or this one): frames go
    out on the message's channel, and ``relay_sink`` hands them to the request."""

    def __init__(self, client: RedisClient, channel: str) -> None:
        self.client = client
        self.channel = channel

    def put(self, kind: str, data: dict) -> None:
        """Send a frame (``delta``, ``tool``, ``error``)."""
        self.client.publish(self.channel, _dump([kind, data]))

    def close(self) -> None:
        """Send the end of the reply."""
        self.client.publish(self.channel, _dump(["end", {}]))


def relay_sink(client: RedisClient, keys: Keys, sink: StreamSink, spawn) -> RelaySink:
    """Feed ``sink`` (a ``/stream`` request of this process) from a channel of its
    own, whichever process answers it; return the end that process writes to.

    The channel's name is random, never the client's message id: ids are the
    client's choice and may repeat across rooms, and nobody may read or write
    another request's reply.  Subscribed before returning, so no frame sent after
    the message is queued can be missed."""
    channel = keys.sink(uuid.uuid4().hex)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel)
    pubsub.get_message(timeout=1.0)  # the subscription is confirmed

    def forward() -> None:
        deadline = time.monotonic() + SINK_WAIT_S
        try:
            while time.monotonic() < deadline:
                item = pubsub.get_message(timeout=1.0)
                if item is None or item["type"] != "message":
                    continue
                kind, data = json.loads(item["data"])
                if kind == "end":
                    break
                sink.put(kind, data)
        except Exception:
            log.exception("the reply stream on %s broke", channel)
            sink.put("error", {"error": "The reply stream broke."})
        finally:
            sink.close()
            pubsub.close()

    spawn(forward)
    return RelaySink(client, channel)


class RedisQueue:
    """The messages waiting for a room's next turn (``MemoryQueue``'s twin)."""

    def __init__(self, client: RedisClient, keys: Keys, room: str) -> None:
        self.client = client
        self.keys = keys
        self.key = keys.room(room, "queue")
        self.room = room

    def _encode(self, pending: Pending) -> str:
        return _dump(
            {
                "message": pending.message,
                # The reply's channel (a RelaySink's: ``Rooms.submit`` made it).
                "sink": getattr(pending.sink, "channel", None),
                "skip": pending.reply_skip_sid,
            }
        )

    def _decode(self, raw: str) -> Pending:
        data = json.loads(raw)
        message = data["message"]
        channel = data["sink"]
        sink = RelaySink(self.client, channel) if channel else None
        return Pending(message, sink=sink, reply_skip_sid=data["skip"])

    def append(self, pending: Pending) -> None:
        """Queue a message (the room is now one a worker must visit)."""
        with self.client.pipeline() as pipe:
            pipe.rpush(self.key, self._encode(pending))
            pipe.sadd(self.keys.active, self.room)
            pipe.execute()

    def take_all(self) -> list[Pending]:
        """Remove and return everything waiting, oldest first, atomically."""
        with self.client.pipeline() as pipe:  # MULTI/EXEC
            pipe.lrange(self.key, 0, -1)
            pipe.delete(self.key)
            raw, _ = pipe.execute()
        return [self._decode(item) for item in raw]

    def put_back(self, batch: list[Pending]) -> None:
        """Put a batch back first in line, in its order."""
        if batch:
            self.client.lpush(self.key, *[self._encode(p) for p in reversed(batch)])

    def _messages(self) -> list[ChatMessage]:
        raw = self.client.lrange(self.key, 0, -1)
        return [json.loads(item)["message"] for item in raw]

    def ids(self) -> list[str]:
        """Return the ids of the waiting messages, oldest first."""
        return [m["id"] for m in self._messages()]

    def from_user(self, user_id: str) -> int:
        """Count the waiting messages of ``user_id``."""
        return sum(1 for m in self._messages() if m["user_id"] == user_id)

    def __len__(self) -> int:
        return int(self.client.llen(self.key))

    def __bool__(self) -> bool:
        return len(self) > 0


class RedisUnsaved:
    """Messages accepted but not in the thread yet (``MemoryUnsaved``'s twin)."""

    def __init__(self, client: RedisClient, key: str) -> None:
        self.client = client
        self.key = key

    def add(self, message: ChatMessage) -> None:
        """Add an accepted message."""
        self.client.rpush(self.key, _dump(message))

    def discard(self, ids: set[str]) -> None:
        """Forget the messages with these ids."""
        raw = self.client.lrange(self.key, 0, -1)
        gone = [item for item in raw if json.loads(item)["id"] in ids]
        if gone:
            with self.client.pipeline() as pipe:
                for item in gone:
                    pipe.lrem(self.key, 1, item)
                pipe.execute()

    def all(self) -> list[ChatMessage]:
        """Return them, oldest first."""
        return [json.loads(item) for item in self.client.lrange(self.key, 0, -1)]


class RedisSeen:
    """The message ids a room accepted lately (``MemorySeen``'s twin)."""

    def __init__(self, client: RedisClient, key: str) -> None:
        self.client = client
        self.key = key

    def __contains__(self, message_id: object) -> bool:
        return self.client.zscore(self.key, str(message_id)) is not None

    def add(self, message_id: str) -> bool:
        """Remember ``message_id``; False if it was already remembered (``ZADD
        NX`` decides, so of two processes getting one resend, one stores it).  The
        oldest are forgotten past a bound."""
        with self.client.pipeline() as pipe:
            pipe.zadd(self.key, {message_id: time.time()}, nx=True)
            pipe.zremrangebyrank(self.key, 0, -SEEN_IDS_KEPT - 1)
            added, _ = pipe.execute()
        return bool(added)

    def discard(self, message_id: str) -> None:
        """Forget ``message_id`` (a message refused after all)."""
        self.client.zrem(self.key, message_id)


class RedisRedo:
    """A reply someone asked to write again (``MemoryRedo``'s twin)."""

    def __init__(self, client: RedisClient, key: str) -> None:
        self.client = client
        self.key = key

    def put(self, member: Member, reply: list[ChatMessage]) -> None:
        """Ask for ``reply`` to be written again."""
        self.client.set(self.key, _dump([dataclasses.asdict(member), reply]))

    def take(self) -> tuple[Member, list[ChatMessage]] | None:
        """Return and clear what was asked, if anything."""
        raw = self.client.getdel(self.key)
        if raw is None:
            return None
        member, reply = json.loads(raw)
        return Member(**member), reply

    def __bool__(self) -> bool:
        return bool(self.client.exists(self.key))


class RedisIds:
    """Ids of the assistant's replies in a room (for "reply to the assistant")."""

    def __init__(self, client: RedisClient, key: str) -> None:
        self.client = client
        self.key = key

    def add(self, message_id: str) -> None:
        self.client.sadd(self.key, message_id)

    def update(self, ids: list[str]) -> None:
        if ids:
            self.client.sadd(self.key, *ids)

    def __contains__(self, message_id: object) -> bool:
        return bool(message_id) and bool(
            self.client.sismember(self.key, str(message_id))
        )


class RedisJoins:
    """How many times people joined a room, on any process (``MemoryJoins``'
    twin): an expiry scheduled on one process sees a join on another."""

    def __init__(self, client: RedisClient, key: str) -> None:
        self.client = client
        self.key = key

    def bump(self) -> None:
        """Count a join."""
        self.client.incr(self.key)

    def value(self) -> int:
        """Return the count."""
        return int(self.client.get(self.key) or 0)


class RedisLease:
    """The one process that runs a room's turns, cluster-wide (``MemoryLease``'s
    twin): redis-py's lock with an expiry, renewed while this process works.  If
    the process dies, the lock lapses within ``LEASE_S`` and another takes over.

    If it only stalled (a long GC pause, a suspended VM, Redis out of reach) past
    ``LEASE_S``, it takes the lease back when it wakes if nobody else did; else it
    has lost the room, ``held_here`` says so, and its turn goes quiet."""

    def __init__(self, client: RedisClient, key: str, spawn, sleep) -> None:
        # thread_local=False: the green thread that claims is not always the one
        # that releases (submit claims, the worker releases).
        self.lock = Lock(client, key, timeout=LEASE_S, thread_local=False)
        self.spawn = spawn
        self.sleep = sleep
        self._held = False
        self._renewed_at = 0.0  # monotonic: when the lease was last known ours

    def claim(self) -> bool:
        """Become the room's worker; False if a worker (here or elsewhere) runs."""
        if self._held or not self.lock.acquire(blocking=False):
            return False
        self._hold()
        return True

    def _hold(self) -> None:
        """Note the lease is ours (just acquired) and keep renewing it."""
        self._held = True
        self._renewed_at = time.monotonic()
        self.spawn(self._renew, self.lock.local.token)

    def _renew(self, token: bytes) -> None:
        """Keep the lease while this claim (this token) lasts."""
        while True:
            self.sleep(RENEW_S)
            if not self._held or self.lock.local.token != token:
                return
            self._confirm()

    def _confirm(self) -> bool:
        """Extend the lease, or take it back if it lapsed and nobody else took it
        (a new claim, with its own renewal); else it is lost."""
        try:
            self.lock.reacquire()
        except LockError:
            if self.lock.acquire(blocking=False):
                log.warning("the turn lease of %s lapsed; took it back", self.lock.name)
                self._hold()
                return True
            self._held = False
            log.error(
                "lost the turn lease of %s to another process (this process stalled)",
                self.lock.name,
            )
            return False
        except redis.RedisError:  # cannot tell: keep going, the next renewal sees
            log.warning("could not renew the turn lease of %s", self.lock.name)
            return True
        self._renewed_at = time.monotonic()
        return True

    def release(self) -> None:
        """Stop being the room's worker."""
        if not self._held:
            return
        self._held = False
        try:
            self.lock.release()
        except LockError:  # it lapsed meanwhile; another process may have it
            log.warning("the turn lease of %s had lapsed", self.lock.name)

    def held(self) -> bool:
        """Tell whether any process runs the room's turns."""
        return self._held or self.lock.locked()

    def held_here(self) -> bool:
        """Tell whether this process runs the room's turns.  After a silence
        longer than a renewal (a stall: the renewal has not run yet), it asks
        Redis before answering, so a process that wakes says nothing more in a
        room another process took over."""
        if not self._held:
            return False
        if time.monotonic() - self._renewed_at < RENEW_S * 1.5:
            return True
        return self._confirm()


class RedisBusy:
    """The room's turn in progress, as every process sees it (``MemoryBusy``'s
    twin): who it answers, its run, and the reply's text so far."""

    def __init__(self, client: RedisClient, keys: Keys, room: str) -> None:
        self.client = client
        self.keys = keys
        self.room = room
        self.key = keys.room(room, "busy")
        self.ids_key = keys.room(room, "busy-ids")
        self._ids: set[str] = set()  # message ids of this process's turn

    def _text_key(self, message_id: str) -> str:
        return self.keys.room(self.room, f"busy-text:{message_id}")

    def next_number(self) -> int:
        """Return the number of the room's next turn (unique across processes)."""
        return int(self.client.incr(self.keys.room(self.room, "turns")))

    def start(self, turn: Turn, sinks: list[Sink]) -> None:
        """Show ``turn`` as the one in progress."""
        self._ids = set()
        info = {
            "number": turn.number,
            "replying_to": turn.replying_to,
            "askers": turn.askers,
            # Where its /stream callers read (to end them if this process dies).
            "sinks": [getattr(sink, "channel", "") for sink in sinks],
        }
        with self.client.pipeline() as pipe:
            pipe.delete(self.key, self.ids_key)
            pipe.hset(self.key, mapping={"info": _dump(info)})
            pipe.execute()

    def run(self, run_id: str) -> None:
        """Note the turn's run."""
        self.client.hset(self.key, "run_id", run_id)

    def delta(self, message_id: str, text: str) -> None:
        """Add a fragment of the reply (one round trip)."""
        with self.client.pipeline(transaction=False) as pipe:
            if message_id not in self._ids:
                self._ids.add(message_id)
                pipe.rpush(self.ids_key, message_id)
            pipe.append(self._text_key(message_id), text)
            pipe.execute()

    def end(self) -> None:
        """The turn is over: forget it (it may be a dead process's turn)."""
        ids = self.client.lrange(self.ids_key, 0, -1)
        self.client.delete(self.key, self.ids_key, *[self._text_key(i) for i in ids])
        self._ids = set()

    def read(self) -> BusyRecord | None:
        """Return the turn in progress, on whichever process, if any."""
        with self.client.pipeline(transaction=True) as pipe:
            pipe.hgetall(self.key)
            pipe.lrange(self.ids_key, 0, -1)
            fields, ids = pipe.execute()
        if "info" not in fields:
            return None
        texts = self.client.mget([self._text_key(i) for i in ids]) if ids else []
        info = json.loads(fields["info"])
        return BusyRecord(
            number=info["number"],
            replying_to=info["replying_to"],
            askers=info["askers"],
            partial={i: t or "" for i, t in zip(ids, texts, strict=True)},
            run_id=fields.get("run_id"),
            sinks=[RelaySink(self.client, c) for c in info["sinks"] if c],
        )


class RedisState(MemoryState):
    """``RoomState`` for shared mode: each process keeps its own ``Room`` objects
    (locks, caches, the turn it runs), whose shared parts live in Redis."""

    def __init__(
        self,
        client: RedisClient,
        keys: Keys,
        process: str,
        *,
        spawn: Callable,
        sleep: Callable[[float], None],
        publish: Callable[[dict], None],
    ) -> None:
        super().__init__()  # the Room objects and connections of this process
        self.client = client
        self.keys = keys
        self.process = process
        self.spawn = spawn
        self.sleep = sleep
        self.publish = publish

    def new_room(self, name: str) -> Room:
        """Make the ``Room`` object for ``name``, its shared parts in Redis."""
        client, keys = self.client, self.keys
        return Room(
            name,
            members=RedisMembers(client, keys, name, self.process),
            http_people=RedisPeople(client, keys.room(name, "http")),
            pending=RedisQueue(client, keys, name),
            unsaved=RedisUnsaved(client, keys.room(name, "unsaved")),
            busy=RedisBusy(client, keys, name),
            lease=RedisLease(client, keys.room(name, "lease"), self.spawn, self.sleep),
            redo=RedisRedo(client, keys.room(name, "redo")),
            assistant_ids=RedisIds(client, keys.room(name, "replies")),
            seen_ids=RedisSeen(client, keys.room(name, "seen")),
            joins=RedisJoins(client, keys.room(name, "joins")),
        )

    def get(self, name: str) -> Room | None:
        """Return the room if it is open here, or has people on another process."""
        room = self._rooms.get(name)
        if room is None and self.client.exists(
            self.keys.room(name, "members"), self.keys.room(name, "http")
        ):
            room = self.open(name)
        return room

    def forget(self, room: Room) -> bool:
        """Delete what Redis holds of an expired room, in one step that happens
        only while nobody is in it and nothing waits; False if someone came."""
        parts = (
            "members",
            "http",
            "queue",
            "unsaved",
            "redo",
            "replies",
            "seen",
            "turns",
        )
        keys = [self.keys.room(room.name, part) for part in parts]
        members, waiting = keys[0], keys[2]
        with self.client.pipeline() as pipe:
            try:
                pipe.watch(members, waiting, self.keys.room(room.name, "joins"))
                if pipe.hlen(members) or pipe.llen(waiting):
                    return False
                pipe.multi()
                pipe.delete(*keys)
                pipe.execute()
            except redis.WatchError:  # a join or a message got in first
                return False
        return True

    def member(self, sid: str) -> Member | None:
        """Return the identity on connection ``sid``, whichever process holds it
        (``X-Socket-Id`` may reach another process than the socket)."""
        member = self._members.get(sid)
        if member is None and sid:
            raw = self.client.hget(self.keys.sids, sid)
            member = member_from(raw) if raw is not None else None
        return member

    def unbind(self, sid: str) -> Member | None:
        """Forget connection ``sid``; one of another process is told to forget it."""
        member = self._members.pop(sid, None)
        if member is None:
            self.publish({"op": "unbind", "sids": [sid]})
        return member

    def unbind_here(self, sid: str) -> None:
        """Forget connection ``sid`` if it is this process's."""
        self._members.pop(sid, None)

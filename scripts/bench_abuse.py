"""Benchmark abuse: does a flood or a burst of new rooms slow other people down, and
does the server's memory come back afterwards?

    .venv/bin/python scripts/bench_abuse.py [--duration 20] [--turns 20] [--port N]
    .venv/bin/python scripts/bench_abuse.py --quick      # a fast sanity run

Starts the real server (``python app.py`` on eventlet, as ``tests/live_server.py``
does) on a free loopback port with a scratch ``ENGINE_DB``, the offline demo model
(``DEMO_DELAY_MS=20``) and ``EMPTY_ROOM_TTL_S=0``, so an empty room is let go at
once.  A *bystander* room holds two people; one of them says something about once a
second, and each turn's latency is the time from sending the message until both
people have ``ai-end`` for the turn that answers it (also: until ``ai-start``, until
the first ``ai-delta`` when the turn streams, and until the message's ack).  Socket
messages run in poll mode, so their turns send no ``ai-delta``; ``--via-stream``
sends the bystander's messages through ``POST /stream`` instead (its "ack" is then
the time to the response headers).

1. idle:   the bystander alone, ``--turns`` turns.
2. flood:  one socket in room ``flood`` sends 1 KB messages as fast as its acks
           come back (``--flood-window`` in flight), for ``--duration`` seconds.
           Acks are counted ``ok`` vs refused (``{"ok": false, "error": ...,
           "retry_after": s}``); afterwards it waits (bounded by ``--drain``) until
           the flood room's last turn has ended, then leaves.
3. rooms:  10 sockets each ``register`` in a new room (``r-<n>``) as fast as the acks
           come back, and ``--http-workers`` loops ``POST /stream`` anonymously to
           new rooms (``h-<n>``, ``Accept: application/json``; 2xx vs 429 and its
           ``Retry-After``; each response is closed once its status has arrived).
4. after:  wait ``--settle`` seconds, then the bystander talks again (up to 10 turns).

``--quick`` shortens everything (5 turns, 4 s phases) for a sanity run of ~25 s.

The bystander talks all through phases 2 and 3.  The server's memory is its VmRSS
from ``/proc``; its CPU share comes from ``/proc/<pid>/stat``.  All clients are
``socketio.Client`` instances (one each, over WebSocket, each with its own reader
thread) in this process; "client lag" is how late a 10 ms sleep in this process
wakes up, so a busy client side shows up in the table instead of passing for a
slow server.  Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

import requests
import socketio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rooms.limits import LimitSettings  # noqa: E402
from tests.live_server import LiveServer  # noqa: E402

TARGET = "bystander p99 during a flood <= 1.5x idle; memory flat after the flood ends"
FILLER = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
FLOOD_TEXT = ("flood " + FILLER * 14)[:1024]
MAX_TURNS = 10_000  # every loop is bounded in count as well as in time
MAX_SENDS = 2_000_000
MAX_REQUESTS = 200_000
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- the server process ---------------------------------------------------------


def rss_mb(pid: int) -> float:
    """Return a process's resident memory in MB (VmRSS), NaN once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """Return the CPU time (user + system) a process has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def start_server(folder: Path, port: int | None) -> LiveServer:
    """Run ``python app.py`` with the demo model and a scratch database."""
    env = {"DEMO_DELAY_MS": "20", "POLL_INTERVAL_MS": "50", "EMPTY_ROOM_TTL_S": "0"}
    # The test server lifts the per-address rates; an abuse benchmark wants the
    # defaults a deployment has.
    env["LIMIT_REGISTRATION_RATE"] = LimitSettings.registration_rate
    env["LIMIT_NEW_ROOM_RATE"] = LimitSettings.new_room_rate
    if port:
        env["PORT"] = str(port)
    server = LiveServer(folder, **env)
    if port:
        server.port, server.url = port, f"http://127.0.0.1:{port}"
    return server.start()


def server_errors(server: LiveServer) -> list[str]:
    """Return the lines of the server's log that report an error."""
    return [
        line
        for line in server.log().splitlines()
        if "Traceback" in line or " ERROR " in line or "CRITICAL" in line
    ]


class Monitor:
    """Sample the server's memory and this process's scheduling lag in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.rss: list[tuple[float, float]] = []
        self.lag: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Monitor:
        """Start sampling."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sampling."""
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        """Every 10 ms note how late the sleep woke; every 250 ms note the RSS."""
        for tick in range(360_000):  # an hour at most
            if self._stop.is_set():
                return
            before = time.monotonic()
            time.sleep(0.01)
            now = time.monotonic()
            self.lag.append((now, (now - before - 0.01) * 1000))
            if tick % 25 == 0:
                self.rss.append((now, rss_mb(self.pid)))

    def peak_rss(self, start: float, end: float) -> float:
        """Return the highest RSS sampled between ``start`` and ``end``."""
        values = [mb for t, mb in self.rss if start <= t <= end]
        return max(values) if values else float("nan")

    def lag_p99(self, start: float, end: float) -> float | None:
        """Return the 99th percentile of this process's wake-up lag in a window."""
        return percentile([ms for t, ms in self.lag if start <= t <= end], 0.99)


def percentile(values: list[float], share: float) -> float | None:
    """Return the ``share`` percentile (nearest rank) of ``values``; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


# -- the bystander --------------------------------------------------------------


class Watch:
    """What one client sees of the turns in its room, with arrival times."""

    def __init__(self, client: socketio.Client, changed: threading.Condition) -> None:
        self.changed = changed
        self.starts: list[tuple[float, int]] = []
        self.first_delta: dict[int, float] = {}
        self.ends: dict[int, tuple[float, str]] = {}
        self.current: int | None = None
        client.on("ai-start", self.on_start)
        client.on("ai-delta", self.on_delta)
        client.on("ai-end", self.on_end)

    def on_start(self, data=None) -> None:
        """Note a turn starting."""
        with self.changed:
            self.current = (data or {}).get("turn")
            self.starts.append((time.monotonic(), self.current))
            self.changed.notify_all()

    def on_delta(self, data=None) -> None:
        """Note the first text of the current turn."""
        with self.changed:
            if self.current is not None:
                self.first_delta.setdefault(self.current, time.monotonic())

    def on_end(self, data=None) -> None:
        """Note a turn ending, and how."""
        data = data or {}
        with self.changed:
            self.ends[data.get("turn")] = (time.monotonic(), data.get("status", "?"))
            self.changed.notify_all()

    def turn_since(self, moment: float) -> int | None:
        """Return the first turn that started after ``moment``."""
        return next((turn for t, turn in self.starts if t >= moment), None)


@dataclass
class TurnSample:
    """One bystander turn: milliseconds from sending to each milestone."""

    ack_ms: float | None
    start_ms: float
    end_ms: float
    delta_ms: float | None
    status: str


class Bystander:
    """Two people in room ``bystander``; one of them talks, both see the turns."""

    def __init__(self, url: str, *, via_stream: bool, timeout: float) -> None:
        self.url = url
        self.via_stream = via_stream
        self.timeout = timeout
        self.changed = threading.Condition()
        self.sent = 0
        self.clients, self.watches = [], []
        for index, name in enumerate(("Bea", "Ben")):
            client = socketio.Client(reconnection=False)
            self.watches.append(Watch(client, self.changed))
            client.connect(url, transports=["websocket"], wait_timeout=10)
            identity = {"user_id": f"bystander-{index}", "name": name}
            ack = client.call("register", {**identity, "room": "bystander"}, timeout=30)
            if not ack.get("ok"):
                raise RuntimeError(f"the bystander could not register: {ack}")
            self.clients.append(client)

    @property
    def connected(self) -> bool:
        """Tell whether both bystanders are still connected."""
        return all(client.connected for client in self.clients)

    def talk(self, *, turns: int | None = None, until: float | None = None):
        """Take a turn about once a second, ``turns`` times or until ``until``;
        return the samples and how many turns got no ``ai-end`` in time."""
        samples: list[TurnSample] = []
        lost = 0
        for _ in range(min(turns or MAX_TURNS, MAX_TURNS)):
            began = time.monotonic()
            if (until and began >= until) or not self.connected:
                break
            sample = self.turn()
            if sample is None:
                lost += 1
            else:
                samples.append(sample)
            pause = 1.0 - (time.monotonic() - began)
            if until:
                pause = min(pause, until - time.monotonic())
            time.sleep(max(pause, 0.0))
        return samples, lost

    def turn(self) -> TurnSample | None:
        """Say one thing; wait until both people have ``ai-end`` for its turn."""
        self.sent += 1
        text = f"Bystander note {self.sent}: how is the afternoon going over there?"
        acked: dict = {}
        sent = time.monotonic()
        if self.via_stream:
            threading.Thread(target=self._post, args=(text, acked), daemon=True).start()
        else:
            self.clients[0].emit(
                "message", {"content": text}, callback=lambda ack: self._ack(acked, ack)
            )
        with self.changed:
            if not self.changed.wait_for(lambda: self._done(sent), self.timeout):
                return None
            turn = self.watches[0].turn_since(sent)
            ends = [watch.ends[turn] for watch in self.watches]
            delta = self.watches[1].first_delta.get(turn)
            started = next(t for t, n in self.watches[0].starts if n == turn)
        return TurnSample(
            ack_ms=(acked["at"] - sent) * 1000 if "at" in acked else None,
            start_ms=(started - sent) * 1000,
            end_ms=(max(t for t, _ in ends) - sent) * 1000,
            delta_ms=(delta - sent) * 1000 if delta else None,
            status=ends[0][1],
        )

    def _done(self, sent: float) -> bool:
        """Tell whether both people have seen the end of the turn after ``sent``."""
        turn = self.watches[0].turn_since(sent)
        return turn is not None and all(turn in w.ends for w in self.watches)

    def _ack(self, acked: dict, ack) -> None:
        """Note the ack of the bystander's message."""
        acked.update(at=time.monotonic(), ack=ack)

    def _post(self, text: str, acked: dict) -> None:
        """Send the message through ``POST /stream`` as the registered socket, so
        the turn streams (``ai-delta``); read the reply to its end."""
        headers = {
            "Accept": "text/event-stream",
            "X-Socket-Id": self.clients[0].get_sid(),
        }
        try:
            with requests.post(
                self.url + "/stream",
                json={"content": text},
                headers=headers,
                stream=True,
                timeout=(5, self.timeout),
            ) as response:
                acked.update(at=time.monotonic(), ack=response.status_code)
                for _ in response.iter_content(chunk_size=None):
                    pass
        except requests.RequestException as exc:
            acked.update(error=str(exc))

    def close(self) -> None:
        """Leave the room."""
        for client in self.clients:
            client.disconnect()


# -- the abusers ----------------------------------------------------------------


@dataclass
class Tally:
    """Accepted and refused attempts of one kind of abuse, with samples."""

    what: str
    sent: int = 0
    ok: int = 0
    refused: int = 0
    other: int = 0
    refusal: str = ""
    other_sample: str = ""
    retry_after: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ack(self, ack) -> None:
        """Count a Socket.IO ack: ``ok`` true, or a refusal with its sentence."""
        with self.lock:
            if isinstance(ack, dict) and ack.get("ok"):
                self.ok += 1
            elif isinstance(ack, dict) and ack.get("ok") is False:
                self.refused += 1
                self.refusal = self.refusal or str(ack.get("error"))
                if "retry_after" in ack:
                    self.retry_after[str(ack["retry_after"])] += 1
            else:
                self.fail(f"unexpected ack {ack!r:.80}")

    def status(self, response: requests.Response) -> None:
        """Count an HTTP answer: 2xx accepted, 429 refused, anything else other."""
        with self.lock:
            if response.ok:
                self.ok += 1
                return
            if response.status_code == 429:
                self.refused += 1
                if not self.refusal:
                    self.refusal = response.text[:200].strip()
                self.retry_after[response.headers.get("Retry-After", "none")] += 1
                return
        self.fail(f"HTTP {response.status_code} {response.text[:80].strip()}")

    def fail(self, sample: str) -> None:
        """Count something that was neither accepted nor refused."""
        with self.lock:
            self.other += 1
            self.other_sample = self.other_sample or sample

    def merge(self, other: Tally) -> None:
        """Add another tally's counts to this one."""
        self.sent += other.sent
        self.ok += other.ok
        self.refused += other.refused
        self.other += other.other
        self.refusal = self.refusal or other.refusal
        self.other_sample = self.other_sample or other.other_sample
        self.retry_after.update(other.retry_after)


def connect(url: str) -> socketio.Client:
    """Connect one Socket.IO client over WebSocket (no reconnection)."""
    client = socketio.Client(reconnection=False)
    client.connect(url, transports=["websocket"], wait_timeout=10)
    return client


class Flooder:
    """One person in room ``flood`` sending 1 KB messages as fast as acks return."""

    def __init__(self, url: str, until: float, window: int, drain_s: float) -> None:
        self.url, self.until, self.window, self.drain_s = url, until, window, drain_s
        self.tally = Tally("flood messages")
        self.changed = threading.Condition()
        self.drained_after: float | None = None  # seconds after the flood ended
        self.turns_after = 0

    def run(self) -> None:
        """Flood until the deadline, wait for the acks, then for the room's last
        turn to end; leave."""
        client = connect(self.url)
        watch = Watch(client, self.changed)
        identity = {"user_id": "flooder", "name": "Flooder", "room": "flood"}
        ack = client.call("register", identity, timeout=30)
        if not ack.get("ok"):
            self.tally.fail(f"could not register: {ack}")
            client.disconnect()
            return
        slots = threading.Semaphore(self.window)

        def on_ack(ack) -> None:
            self.tally.ack(ack)
            slots.release()

        while time.monotonic() < self.until and self.tally.sent < MAX_SENDS:
            if not slots.acquire(timeout=0.5):
                continue
            try:
                client.emit("message", {"content": FLOOD_TEXT}, callback=on_ack)
            except socketio.exceptions.SocketIOError as exc:
                self.tally.fail(f"emit failed: {exc}")
                break
            self.tally.sent += 1
        ended = time.monotonic()
        for _ in range(self.window):  # every ack back, or give up after drain_s
            if not slots.acquire(
                timeout=max(ended + self.drain_s - time.monotonic(), 0)
            ):
                break
        self._wait_for_quiet(watch, ended)
        client.disconnect()

    def _wait_for_quiet(self, watch: Watch, ended: float) -> None:
        """Wait until the flood room has ended its last turn and started no other
        for a second (its worker starts the next turn at once when more is queued)."""
        deadline = ended + self.drain_s
        while time.monotonic() < deadline:
            with self.changed:
                last_start = watch.starts[-1] if watch.starts else None
                last_end = watch.ends.get(last_start[1]) if last_start else None
            if last_start is None or (
                last_end and time.monotonic() - last_end[0] >= 1.0
            ):
                self.drained_after = (last_end[0] - ended) if last_end else 0.0
                self.turns_after = sum(1 for t, _ in watch.starts if t > ended)
                return
            time.sleep(0.1)


def make_rooms(url: str, index: int, until: float, names, tally: Tally) -> None:
    """Register in a new room after another as fast as the acks come back (the
    token from the first registration is sent along, as a browser would)."""
    client = connect(url)
    token = ""
    for _ in range(MAX_REQUESTS):
        if time.monotonic() >= until or not client.connected:
            break
        identity = {"user_id": f"maker-{index}", "name": f"Maker {index}"}
        payload = {**identity, "room": f"r-{next(names)}", "token": token}
        tally.sent += 1
        try:
            ack = client.call("register", payload, timeout=10)
        except socketio.exceptions.TimeoutError:
            tally.fail("no register ack within 10 s")
            continue
        except socketio.exceptions.SocketIOError as exc:
            tally.fail(f"register failed: {exc}")
            break
        tally.ack(ack)
        if isinstance(ack, dict) and ack.get("token"):
            token = ack["token"]
    client.disconnect()


def post_rooms(url: str, until: float, names, tally: Tally) -> None:
    """``POST /stream`` anonymously to a new room after another; read only the
    status (and Retry-After), then hang up."""
    session = requests.Session()
    for _ in range(MAX_REQUESTS):
        if time.monotonic() >= until:
            break
        body = {"content": "hello from a brand new room", "name": "x"}
        body["room"] = f"h-{next(names)}"
        tally.sent += 1
        try:
            with session.post(
                url + "/stream",
                json=body,
                headers={"Accept": "application/json"},
                stream=True,
                timeout=(5, 30),
            ) as response:
                tally.status(response)
        except requests.RequestException as exc:
            tally.fail(f"{type(exc).__name__}: {str(exc)[:80]}")
            time.sleep(0.05)
    session.close()


# -- phases and the report ------------------------------------------------------


@dataclass
class Phase:
    """What one phase measured."""

    name: str
    samples: list[TurnSample]
    lost: int
    seconds: float
    rss_end: float
    rss_peak: float
    server_cpu: float
    client_cpu: float
    lag_p99: float | None
    tally: Tally | None = None
    notes: list[str] = field(default_factory=list)

    def end_ms(self, share: float) -> float | None:
        """Return a percentile of the bystander's turn latency."""
        return percentile([s.end_ms for s in self.samples], share)


def run_phase(name, bystander, server_pid, monitor, *, turns=None, until=None,
              abusers=(), join_s: float = 60.0) -> Phase:  # fmt: skip
    """Let the bystander talk while ``abusers`` (threads) run; measure the phase."""
    began, server_cpu, client_cpu = time.monotonic(), cpu_seconds(server_pid), _cpu()
    threads = [threading.Thread(target=job, daemon=True) for job in abusers]
    for thread in threads:
        thread.start()
    samples, lost = bystander.talk(turns=turns, until=until)
    for thread in threads:
        thread.join(timeout=max(began + join_s - time.monotonic(), 1.0))
    ended = time.monotonic()
    seconds = ended - began
    return Phase(
        name=name,
        samples=samples,
        lost=lost,
        seconds=seconds,
        rss_end=rss_mb(server_pid),
        rss_peak=monitor.peak_rss(began, ended),
        server_cpu=100 * (cpu_seconds(server_pid) - server_cpu) / seconds,
        client_cpu=100 * (_cpu() - client_cpu) / seconds,
        lag_p99=monitor.lag_p99(began, ended),
    )


def _cpu() -> float:
    """Return this process's CPU time so far."""
    times = os.times()
    return times.user + times.system


def fmt(value: float | None, spec: str = ".0f") -> str:
    """Format a figure, or a dash when there is none."""
    return "-" if value is None else format(value, spec)


def print_table(phases: list[Phase], rss_start: float) -> None:
    """Print one row per phase and the memory line."""
    idle_p99 = phases[0].end_ms(0.99)
    print()
    print(f"target: {TARGET}")
    header = (
        f"{'phase':<6} {'turns':>5} {'lost':>4} {'p50 ms':>7} {'p99 ms':>7}"
        f" {'x idle':>6} {'ack p99':>7} {'accepted':>9} {'refused':>8} {'other':>6}"
        f" {'RSS MB':>7} {'peak':>6} {'srv CPU':>7} {'cli CPU':>7} {'lag p99':>7}"
    )
    print(header)
    print("-" * len(header))
    for phase in phases:
        p99 = phase.end_ms(0.99)
        ratio = p99 / idle_p99 if p99 is not None and idle_p99 else None
        acks = [s.ack_ms for s in phase.samples if s.ack_ms is not None]
        tally = phase.tally
        print(
            f"{phase.name:<6} {len(phase.samples):>5} {phase.lost:>4}"
            f" {fmt(phase.end_ms(0.5)):>7} {fmt(p99):>7} {fmt(ratio, '.2f'):>6}"
            f" {fmt(percentile(acks, 0.99)):>7}"
            f" {tally.ok if tally else '-':>9} {tally.refused if tally else '-':>8}"
            f" {tally.other if tally else '-':>6}"
            f" {phase.rss_end:>7.1f} {phase.rss_peak:>6.1f}"
            f" {phase.server_cpu:>6.0f}% {phase.client_cpu:>6.0f}%"
            f" {fmt(phase.lag_p99):>7}"
        )
    print(
        "(latency: message sent -> ai-end at both bystanders; p99 of a few dozen"
        " turns is close to their max.  srv/cli CPU: the server process and this"
        " client process, % of one core; lag p99: how late this process wakes from"
        " a 10 ms sleep, in ms)"
    )
    idle, flood, *_, after = phases
    print(
        f"memory (RSS MB): start {rss_start:.1f}, after idle {idle.rss_end:.1f},"
        f" flood peak {flood.rss_peak:.1f}, after the flood {flood.rss_end:.1f}"
        f" ({flood.rss_end - idle.rss_end:+.1f}), settled {after.rss_end:.1f}"
        f" ({after.rss_end - idle.rss_end:+.1f} vs idle)"
    )


def print_details(phases: list[Phase]) -> None:
    """Print what the abusers saw and the other milestones of the bystander."""
    for phase in phases:
        starts = [s.start_ms for s in phase.samples]
        deltas = [s.delta_ms for s in phase.samples if s.delta_ms is not None]
        statuses = Counter(s.status for s in phase.samples)
        print(
            f"[{phase.name}] {phase.seconds:.1f} s; bystander ai-start p50"
            f" {fmt(percentile(starts, 0.5))} p99 {fmt(percentile(starts, 0.99))} ms;"
            f" first ai-delta p50 {fmt(percentile(deltas, 0.5))}"
            f" p99 {fmt(percentile(deltas, 0.99))} ms"
            f"{'' if deltas else ' (none: socket messages run in poll mode)'};"
            f" turn status {dict(statuses)}"
        )
        for note in phase.notes:
            print(f"    {note}")


def describe(tally: Tally, seconds: float) -> list[str]:
    """Describe one abuser's tally in a few lines."""
    lines = [
        f"{tally.what}: {tally.sent} sent, {tally.ok} accepted"
        f" ({tally.ok / max(seconds, 0.001):.0f}/s), {tally.refused} refused,"
        f" {tally.other} other, {tally.sent - tally.ok - tally.refused - tally.other}"
        " unanswered"
    ]
    if tally.refusal:
        lines.append(f"  sample refusal: {tally.refusal!r}")
    if tally.retry_after:
        common = ", ".join(f"{k} x{n}" for k, n in tally.retry_after.most_common(5))
        lines.append(f"  retry-after values: {common}")
    if tally.other_sample:
        lines.append(f"  sample other: {tally.other_sample}")
    return lines


# -- the run ----------------------------------------------------------------------


def run(url: str, pid: int, args: argparse.Namespace) -> None:
    """Run the four phases and print the report."""
    monitor = Monitor(pid).start()
    bystander = Bystander(url, via_stream=args.via_stream, timeout=args.turn_timeout)
    rss_start = rss_mb(pid)
    print(f"server pid {pid} on {url}; RSS at start {rss_start:.1f} MB")
    phases = []

    print(f"phase 1 idle: {args.turns} bystander turns")
    phases.append(run_phase("idle", bystander, pid, monitor, turns=args.turns))

    print(f"phase 2 flood: {args.duration:g} s of 1 KB messages into room 'flood'")
    flooder = Flooder(url, time.monotonic() + args.duration, args.flood_window,
                      args.drain)  # fmt: skip
    phase = run_phase(
        "flood", bystander, pid, monitor,
        until=time.monotonic() + args.duration, abusers=[flooder.run],
        join_s=args.duration + args.drain + 15,
    )  # fmt: skip
    phase.tally = flooder.tally
    phase.notes = describe(flooder.tally, args.duration)
    drained = fmt(flooder.drained_after, ".1f")
    phase.notes.append(
        f"flood room quiet {drained} s after the flood ended"
        f" ({flooder.turns_after} turns after it; '-' = not within {args.drain:g} s)"
    )
    phases.append(phase)

    print(
        f"phase 3 rooms: {args.duration:g} s of {args.makers} sockets registering in"
        f" new rooms and {args.http_workers} anonymous POST /stream loops"
    )
    names = itertools.count(1)
    until = time.monotonic() + args.duration
    registers = [Tally("registrations") for _ in range(args.makers)]
    posts = [Tally("POST /stream") for _ in range(args.http_workers)]
    jobs = [
        (lambda i=i: make_rooms(url, i, until, names, registers[i]))
        for i in range(args.makers)
    ] + [
        (lambda i=i: post_rooms(url, until, names, posts[i]))
        for i in range(args.http_workers)
    ]
    phase = run_phase(
        "rooms", bystander, pid, monitor, until=until, abusers=jobs,
        join_s=args.duration + 45,
    )  # fmt: skip
    register_tally, post_tally = Tally("registrations"), Tally("POST /stream")
    for tally in registers:
        register_tally.merge(tally)
    for tally in posts:
        post_tally.merge(tally)
    phase.tally = Tally("rooms")
    phase.tally.merge(register_tally)
    phase.tally.merge(post_tally)
    phase.notes = describe(register_tally, args.duration) + describe(
        post_tally, args.duration
    )
    phases.append(phase)

    print(f"phase 4 after: {args.settle:g} s to settle, then the bystander again")
    time.sleep(args.settle)
    phase = run_phase("after", bystander, pid, monitor, turns=min(args.turns, 10))
    phases.append(phase)

    bystander.close()
    monitor.stop()
    print_table(phases, rss_start)
    print_details(phases)


def parse_args() -> argparse.Namespace:
    """Read the command line; ``--quick`` shortens every phase."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=20, help="s per abuse phase")
    parser.add_argument("--turns", type=int, default=20, help="idle bystander turns")
    parser.add_argument("--port", type=int, default=0, help="server port (0: free)")
    parser.add_argument("--quick", action="store_true", help="a fast sanity run")
    parser.add_argument("--settle", type=float, default=10, help="s before 'after'")
    parser.add_argument("--drain", type=float, default=30, help="max s for backlog")
    parser.add_argument("--flood-window", type=int, default=64, help="acks in flight")
    parser.add_argument("--makers", type=int, default=10, help="room-making sockets")
    parser.add_argument("--http-workers", type=int, default=2, help="POST loops")
    parser.add_argument("--turn-timeout", type=float, default=30, help="s per turn")
    parser.add_argument(
        "--via-stream",
        action="store_true",
        help="the bystander sends through POST /stream (its turns stream ai-delta)",
    )
    args = parser.parse_args()
    if args.quick:
        args.duration, args.turns, args.settle = min(args.duration, 4), 5, 2
        args.drain = min(args.drain, 10)
        args.turn_timeout = min(args.turn_timeout, 15)
    return args


def main() -> None:
    """Start the server, run the benchmark, stop the server."""
    args = parse_args()
    with tempfile.TemporaryDirectory() as folder:
        server = start_server(Path(folder), args.port)
        try:
            run(server.url, server.process.pid, args)
            errors = server_errors(server)
            print(f"server log: {len(errors)} error lines")
            for line in errors[:3]:
                print(f"    {line[:160]}")
        finally:
            server.stop()


if __name__ == "__main__":
    main()

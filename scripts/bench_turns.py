"""Benchmark assistant turns: turns/s, server CPU per turn, and message → ``ai-end``.

    .venv/bin/python scripts/bench_turns.py [--lengths 10,100,1000] [--rooms 10]
        [--seconds 15] [--latency-turns 20] [--context-chars 48000]

Starts ``python app.py`` (eventlet, demo model at ``DEMO_DELAY_MS=0``, the default
poll interval, limits lifted) and, for each room length L, fills ``--rooms`` fresh
rooms with L messages each through the app (Socket.IO ``message``, sent in a burst,
so the thread holds L user messages and a few replies), then:

- latency: in one of those rooms, one person sends ``--latency-turns`` messages one
  after another, each after the previous turn's ``ai-end``; prints the p50/p99
  time from sending to ``ai-end``;
- throughput: in every room at once, one person sends a message, waits for its
  ``ai-end``, and sends the next, for ``--seconds``; prints turns/s and the server's
  CPU per turn (``/proc/<pid>/stat`` utime+stime over the window).

A turn reads only the newest history that fits the model's window
(``--context-chars``, the server's ``MODEL_CONTEXT_CHARS``): a room whose whole
history fits (1,000 short messages fit 48,000 characters) is read whole; past the
window a turn's cost should not depend on L (issue 14, goal 3).  Clients are
python-socketio threads in this process, on the same cores as the server.  Prints;
asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import socketio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.bench_fanout import LIFTED_LIMITS  # noqa: E402
from scripts.bench_fanout import cpu_seconds  # noqa: E402
from tests.live_server import LiveServer  # noqa: E402


class Person:
    """One registered Socket.IO client that waits for the turns in its room."""

    def __init__(self, url: str, room: str, name: str) -> None:
        self.client = socketio.Client(reconnection=False)
        self.started: list[int] = []  # turn numbers, in ai-start order
        self.ended: set[int] = set()
        self.last_event = time.monotonic()
        self.changed = threading.Condition()
        self.client.on("ai-start", self._on_start)
        self.client.on("ai-end", self._on_end)
        self.client.connect(url, transports=["websocket"], wait_timeout=30)
        ack = self.client.call(
            "register", {"user_id": name, "name": name, "room": room}, timeout=30
        )
        if not ack.get("ok"):
            raise RuntimeError(f"register refused: {ack}")
        self.count = 0
        self.name = name

    def _on_start(self, turn: dict) -> None:
        with self.changed:
            self.started.append(turn["turn"])
            self.last_event = time.monotonic()
            self.changed.notify_all()

    def _on_end(self, end: dict) -> None:
        with self.changed:
            self.ended.add(end["turn"])
            self.last_event = time.monotonic()
            self.changed.notify_all()

    def send(self, content: str) -> None:
        """Send a message and wait for its acknowledgement."""
        self.count += 1
        message = {"id": f"{self.name}-{self.count}", "content": content}
        ack = self.client.call("message", message, timeout=60)
        if not ack.get("ok"):
            raise RuntimeError(f"message refused: {ack}")

    def wait(self, done, timeout: float = 120) -> None:
        """Wait until ``done()`` holds (checked as turns start and end)."""
        with self.changed:
            if not self.changed.wait_for(done, timeout=timeout):
                raise RuntimeError(f"{self.name}: no ai-end within {timeout} s")

    def turn(self, content: str) -> float:
        """Send a message in an idle room; return the seconds until the
        ``ai-end`` of the turn it starts (the room's only sender: the next turn)."""
        first = len(self.started)
        start = time.perf_counter()
        self.send(content)
        self.wait(
            lambda: len(self.started) > first and self.started[first] in self.ended
        )
        return time.perf_counter() - start

    def wait_idle(self, quiet_s: float = 1.5, timeout: float = 600) -> None:
        """Wait until every turn started has ended and none began for ``quiet_s``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.changed:
                idle = set(self.started) <= self.ended
                quiet = time.monotonic() - self.last_event > quiet_s
            if idle and quiet and self.started:
                return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name}: the room did not settle in {timeout} s")

    def close(self) -> None:
        self.client.disconnect()


def fill(person: Person, length: int) -> None:
    """Put ``length`` messages in the person's room (a burst: a few turns)."""
    for n in range(length):
        person.send(f"filler message {n} of {length}")
    person.wait_idle()


def throughput(people: list[Person], seconds: float, pid: int) -> tuple[int, float]:
    """Run turns in every room at once for ``seconds``; return turns and CPU s."""
    done = [0] * len(people)
    stop = time.monotonic() + seconds

    def loop(index: int) -> None:
        while time.monotonic() < stop:
            people[index].turn("What time is it?")
            done[index] += 1

    cpu_before = cpu_seconds(pid)
    threads = [threading.Thread(target=loop, args=(i,)) for i in range(len(people))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done), cpu_seconds(pid) - cpu_before


def percentile(values: list[float], p: float) -> float:
    """Return the p-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def measure_length(url: str, pid: int, length: int, args) -> None:
    """Fill rooms to ``length`` messages, then print latency and throughput."""
    people = [
        Person(url, f"len{length}-r{i}", f"p{length}x{i}") for i in range(args.rooms)
    ]
    try:
        fill_start = time.perf_counter()
        fillers = [threading.Thread(target=fill, args=(p, length)) for p in people]
        for thread in fillers:
            thread.start()
        for thread in fillers:
            thread.join()
        filled_s = time.perf_counter() - fill_start
        latencies = [people[0].turn("Hello there") for _ in range(args.latency_turns)]
        started = time.perf_counter()
        turns, cpu = throughput(people, args.seconds, pid)
        window = time.perf_counter() - started
        print(
            f"{length:>8}{turns / window:>10.1f}{cpu / max(turns, 1) * 1000:>14.2f}"
            f"{statistics.median(latencies) * 1000:>12.1f}"
            f"{percentile(latencies, 99) * 1000:>12.1f}{filled_s:>10.1f}",
            flush=True,
        )
    finally:
        for person in people:
            person.close()


def main() -> None:
    """Start the app and measure turns at each room length."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lengths", default="10,100,1000")
    parser.add_argument("--rooms", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--latency-turns", type=int, default=20)
    parser.add_argument("--context-chars", type=int, default=48000)
    args = parser.parse_args()
    env = {
        **LIFTED_LIMITS,
        "DEMO_DELAY_MS": "0",
        "MODEL_CONTEXT_CHARS": str(args.context_chars),
    }
    env.pop("POLL_INTERVAL_MS", None)
    with tempfile.TemporaryDirectory(prefix="bench-turns-") as folder:
        server = LiveServer(Path(folder), **env)
        # The live-test settings shorten the poll interval; measure the default.
        server.env.pop("POLL_INTERVAL_MS", None)
        with server:
            assert server.process is not None
            print(
                f"{args.rooms} rooms at once, demo model at 0 ms, {args.seconds:g} s"
                " windows; latency: one room, one message at a time;"
                f" MODEL_CONTEXT_CHARS={args.context_chars}"
            )
            print(
                f"{'length':>8}{'turns/s':>10}{'CPU ms/turn':>14}"
                f"{'p50 ms':>12}{'p99 ms':>12}{'fill s':>10}"
            )
            for length in [int(n) for n in args.lengths.split(",")]:
                measure_length(server.url, server.process.pid, length, args)


if __name__ == "__main__":
    main()

"""Benchmark many connections on one server process: memory, and fan-out latency.

    .venv/bin/python scripts/bench_connections.py [--clients 1000] [--rooms 50]

Starts ``python app.py`` (eventlet) on a free loopback port, connects N real
Socket.IO clients over WebSocket (green threads in this process), registers them in
R rooms, then has one person in every room send a message at the same moment and
measures how long each message takes to reach the others in its room.  The clients
run on the same two cores as the server, so the figures are an upper bound.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import requests  # noqa: E402
import socketio  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def start_server(folder: str, port: int) -> subprocess.Popen:
    """Run ``python app.py`` on ``port`` with the demo model and a scratch database."""
    env = {
        **os.environ,
        "PORT": str(port),
        "ENGINE_DB": str(Path(folder) / "bench.sqlite3"),
        "OPENAI_API_KEY": "",
        "MODEL_BASE_URL": "",
        "ASSISTANTS_BASE_URL": "",
        "EMPTY_ROOM_TTL_S": "-1",
        # Every benchmark client shares 127.0.0.1: lift the per-address rates.
        "LIMIT_REGISTRATION_RATE": "1000000 per minute",
        "LIMIT_NEW_ROOM_RATE": "1000000 per minute",
    }
    server = subprocess.Popen(
        [sys.executable, "app.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_until(lambda: healthy(port), timeout=30)
    return server


def healthy(port: int) -> bool:
    """Tell whether the server answers /healthz."""
    try:
        return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok
    except requests.RequestException:
        return False


def rss_mib(pid: int) -> float:
    """Return a process's resident memory in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def connect(url: str, index: int, room: str, heard: dict, joins: list):
    """Connect and register one client; count the joins it hears and note when it
    hears the benchmark message."""
    client = socketio.Client(reconnection=False)
    client.on("message", lambda m: heard.setdefault(index, time.monotonic()))
    client.on("join", lambda m: joins.append(index))
    client.connect(url, transports=["websocket"], wait_timeout=30)
    identity = {"user_id": f"c{index}", "name": f"C{index}", "room": room}
    ack = client.call("register", identity, timeout=60)
    assert ack["ok"], ack
    return client


def wait_until(predicate, timeout: float) -> None:
    """Wait for ``predicate`` with a deadline (then carry on and report)."""
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        eventlet.sleep(0.01)


def free_port() -> int:
    """Return a free loopback port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def percentile(sorted_values: list[float], share: float) -> float:
    """Return the ``share`` percentile (0-1) of already sorted values."""
    return sorted_values[min(len(sorted_values) - 1, int(share * len(sorted_values)))]


def run(url: str, pid: int, clients_wanted: int, room_count: int) -> list:
    """Connect, wait for the join notices to settle, fan out; print each figure."""
    idle_rss = rss_mib(pid)
    heard: dict[int, float] = {}
    joins: list[int] = []
    rooms = [f"r{index % room_count}" for index in range(clients_wanted)]
    started = time.monotonic()
    pool = eventlet.GreenPool(100)  # connect 100 at a time
    clients = list(
        pool.imap(
            lambda i: connect(url, i, rooms[i], heard, joins), range(clients_wanted)
        )
    )
    print(
        f"{clients_wanted} clients in {room_count} rooms connected and registered"
        f" in {time.monotonic() - started:.1f} s"
    )
    # In a room of k people, each hears everyone who joined after them: k(k-1)/2.
    expected = sum(k * (k - 1) // 2 for k in (rooms.count(r) for r in set(rooms)))
    wait_until(lambda: len(joins) >= expected, timeout=300)
    print(
        f"{len(joins)} of {expected} join notices delivered"
        f" by {time.monotonic() - started:.1f} s"
    )
    loaded_rss = rss_mib(pid)
    print(
        f"server memory: {idle_rss:.0f} MiB idle, {loaded_rss:.0f} MiB with"
        f" {clients_wanted} clients"
        f" ({(loaded_rss - idle_rss) * 1024 / clients_wanted:.0f} KiB each)"
    )
    heard.clear()
    senders = clients[:room_count]  # one in each room
    sent = time.monotonic()
    for sender in senders:
        sender.emit("message", {"content": "fan-out check"})
    listeners = clients_wanted - len(senders)
    wait_until(lambda: len(heard) >= listeners, timeout=120)
    ms = sorted((t - sent) * 1000 for t in heard.values())
    print(
        f"{len(senders)} messages at once, each to its room: {len(ms)} of {listeners}"
        f" deliveries; p50 {percentile(ms, 0.5):.0f} ms,"
        f" p99 {percentile(ms, 0.99):.0f} ms, last {ms[-1]:.0f} ms"
    )
    return clients


def main() -> None:
    """Start the server, run the benchmark, and stop everything."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rooms", type=int, default=50)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        server = start_server(folder, port)
        try:
            clients = run(
                f"http://127.0.0.1:{port}", server.pid, args.clients, args.rooms
            )
            for client in clients:
                client.disconnect()
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()

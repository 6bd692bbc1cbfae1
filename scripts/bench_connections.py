"""Benchmark many connections on one server process: memory, and fan-out latency.

    .venv/bin/python scripts/bench_connections.py [--clients 1000]

Starts ``python app.py`` (eventlet) on a free loopback port, connects N real
Socket.IO clients over WebSocket (green threads in this process), registers each in
one room, then has one of them send a message and measures how long the broadcast
takes to reach all the others.  Prints figures; asserts nothing.
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
    }
    server = subprocess.Popen(
        [sys.executable, "app.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                return server
        except requests.RequestException:
            eventlet.sleep(0.2)
    raise RuntimeError("the server did not start")


def rss_mib(pid: int) -> float:
    """Return a process's resident memory in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def connect(url: str, index: int, heard: dict, joins: list) -> socketio.Client:
    """Connect and register one client; count the joins it hears, and note when it
    hears the benchmark message."""
    client = socketio.Client(reconnection=False)
    client.on("message", lambda m: heard.setdefault(index, time.monotonic()))
    client.on("join", lambda m: joins.append(index))
    client.connect(url, transports=["websocket"], wait_timeout=30)
    ack = client.call(
        "register", {"user_id": f"c{index}", "name": f"C{index}"}, timeout=60
    )
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


def main() -> None:
    """Connect the clients, measure, and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    args = parser.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as folder:
        server = start_server(folder, port)
        try:
            idle_rss = rss_mib(server.pid)
            heard: dict[int, float] = {}
            joins: list[int] = []
            started = time.monotonic()
            pool = eventlet.GreenPool(100)  # connect 100 at a time
            clients = list(
                pool.imap(lambda i: connect(url, i, heard, joins), range(args.clients))
            )
            took = time.monotonic() - started
            print(f"{args.clients} clients connected and registered in {took:.1f} s")
            # Everyone hears everyone who joined after them: n(n-1)/2 join notices.
            expected = args.clients * (args.clients - 1) // 2
            wait_until(lambda: len(joins) >= expected, timeout=300)
            settled = time.monotonic() - started
            print(
                f"{len(joins)} of {expected} join notices delivered by {settled:.1f} s"
            )
            loaded_rss = rss_mib(server.pid)
            print(
                f"server memory: {idle_rss:.0f} MiB idle, {loaded_rss:.0f} MiB with"
                f" {args.clients} clients"
                f" ({(loaded_rss - idle_rss) * 1024 / args.clients:.0f} KiB each)"
            )
            heard.clear()
            sent = time.monotonic()
            clients[0].call("message", {"content": "fan-out check"}, timeout=60)
            wait_until(lambda: len(heard) >= args.clients - 1, timeout=120)
            ms = sorted((t - sent) * 1000 for t in heard.values())
            print(
                f"one message to {len(ms)} others: first {ms[0]:.0f} ms,"
                f" median {ms[len(ms) // 2]:.0f} ms, last {ms[-1]:.0f} ms"
            )
            for client in clients:
                client.disconnect()
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()

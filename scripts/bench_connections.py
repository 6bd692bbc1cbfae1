"""Benchmark many idle browser-like connections held by one server process.

    .venv/bin/python scripts/bench_connections.py [--clients 10000]
        [--room-size 50] [--load-processes 4] [--hold 30]
        [--servers eventlet,gevent,node] [--repeat 1] [--server-soft-limit 1024]

Starts each server as users do (``eventlet``: ``python app.py``; ``gevent``:
``gunicorn -k gevent`` with ``gunicorn.conf.py``; ``node``: the reference
socket.io 4 server of ``scripts/node_ref``) with a soft open-file limit of
``--server-soft-limit`` (a shell's usual 1,024), so the server must raise it
itself, as ``python app.py``, ``gunicorn.conf.py`` and Node do.  Then
``--load-processes`` Node socket.io-client processes (``scripts/node_ref/load.mjs``)
open N WebSocket connections between them, offering permessage-deflate as
browsers do, each registered in a room of ``--room-size``; the connections then
stay idle for ``--hold`` seconds (a ping every 25 s).

Prints, per server: connections held (file descriptors open in the server) and
how many clients lost theirs, the server's open-file limit, resident memory
before and with the clients, memory per connection (after the joins were
delivered, and again after the hold), and CPU per connection-minute while idle.
With ``--repeat``, ranges over the runs.  The clients share the machine's cores
with the server.  Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_fanout as fanout  # noqa: E402

from tests.live_server import free_port  # noqa: E402
from tests.live_server import stop_process  # noqa: E402
from tests.live_server import wait_healthy  # noqa: E402


@contextlib.contextmanager
def soft_file_limit(limit: int):
    """Lower this process's soft open-file limit while children are started."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(limit, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def open_files(pid: int) -> int:
    """Return how many file descriptors a process holds."""
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def file_limit(pid: int) -> str:
    """Return a process's soft open-file limit, as the kernel has it."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return line.split()[3]
    return "?"


def wait_settled(pid: int, timeout: float = 300) -> None:
    """Wait until ``pid`` uses under a tenth of a core over a second: the joins
    have been delivered (idle pings alone stay below that)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = fanout.cpu_seconds(pid)
        time.sleep(1.0)
        if fanout.cpu_seconds(pid) - before < 0.1:
            return
    print(f"  (the server was still busy after {timeout:g} s)", flush=True)


def start_loads(url: str, args) -> list[subprocess.Popen]:
    """Start the load processes, each with its share of the clients."""
    share = -(-args.clients // args.load_processes)  # ceiling
    rooms = max(1, args.clients // args.room_size)
    loads = []
    for first in range(0, args.clients, share):
        options = {
            "url": url,
            "clients": min(share, args.clients - first),
            "first": first,
            "rooms": rooms,
            "rate": 0,
            "seconds": 0,
            "deflate": True,
            "answer": "every",  # nobody sends; leave the rooms' settings alone
        }
        loads.append(
            subprocess.Popen(
                ["node", "load.mjs", json.dumps(options)],
                cwd=fanout.NODE_DIR,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        )
    return loads


def wait_ready(loads: list[subprocess.Popen]) -> None:
    """Wait until every load process has registered all its clients."""
    for load in loads:
        assert load.stdout is not None
        line = load.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"a load process failed to connect: {line!r}")


def finish(loads: list[subprocess.Popen]) -> int:
    """Tell every load to finish; return how many connections were lost before."""
    lost = 0
    for load in loads:
        assert load.stdin is not None and load.stdout is not None
        load.stdin.write("go\n")
        load.stdin.flush()
    for load in loads:
        assert load.stdout is not None
        for line in load.stdout:
            if line.startswith("result "):
                lost += json.loads(line[len("result ") :])["disconnects"]
                break
        load.wait(timeout=60)
    return lost


def hold(server: str, args, folder: str) -> dict:
    """Start ``server``, connect the clients, hold them idle; return the figures."""
    port = free_port()
    with soft_file_limit(args.server_soft_limit):
        process = fanout.start_server(server, folder, port, {})
    loads: list[subprocess.Popen] = []
    try:
        fanout.wait_for_port(port, process)
        url = f"http://127.0.0.1:{port}"
        if server != "node":
            wait_healthy(process, url, 30, server, lambda: "(see its log)")
        time.sleep(1.0)
        pid = fanout.worker_of(process.pid).pid
        rss_before, files_before = fanout.rss_bytes(pid), open_files(pid)
        started = time.monotonic()
        loads = start_loads(url, args)
        wait_ready(loads)
        connect_s = time.monotonic() - started
        wait_settled(pid)
        rss_joined = fanout.rss_bytes(pid)
        cpu_before = fanout.cpu_seconds(pid)
        time.sleep(args.hold)
        idle_cpu = fanout.cpu_seconds(pid) - cpu_before
        figures = {
            "connect_s": connect_s,
            "held": open_files(pid) - files_before,
            "limit": file_limit(pid),
            "rss_before_mb": rss_before / 2**20,
            "rss_mb": fanout.rss_bytes(pid) / 2**20,
            "kb_joined": (rss_joined - rss_before) / args.clients / 1024,
            "kb_held": (fanout.rss_bytes(pid) - rss_before) / args.clients / 1024,
            "idle_us": idle_cpu / args.clients / (args.hold / 60) * 1e6,
        }
        figures["lost"] = finish(loads)
        return figures
    finally:
        for load in loads:
            if load.poll() is None:
                load.kill()
                load.wait()
        stop_process(process)


COLUMNS = (
    ("fd limit", "limit", "s"),
    ("connect s", "connect_s", ".1f"),
    ("fds held", "held", "d"),
    ("lost", "lost", "d"),
    ("MB before", "rss_before_mb", ".1f"),
    ("MB held", "rss_mb", ".1f"),
    ("KB/c joined", "kb_joined", ".1f"),
    ("KB/c held", "kb_held", ".1f"),
    ("idle us/c/min", "idle_us", ".1f"),
)


def report(title: str, results: list[tuple[str, dict]]) -> None:
    """Print one table: a row per run, a column per figure (``/c``: per
    connection)."""
    print(f"\n== {title}")
    print(f"{'':10}" + "".join(f"{name:>14}" for name, _, _ in COLUMNS))
    for server, figures in results:
        cells = "".join(f"{format(figures[key], spec):>14}" for _, key, spec in COLUMNS)
        print(f"{server:10}{cells}", flush=True)


def summarize(results: list[tuple[str, dict]]) -> None:
    """Print each server's memory per connection over the runs, and its ratio to
    Node's (run by run)."""
    print("\n== KB per idle connection (held), ranges over the runs")
    by_server: dict[str, list[dict]] = {}
    for server, figures in results:
        by_server.setdefault(server, []).append(figures)
    for server, runs in by_server.items():
        kb = [run["kb_held"] for run in runs]
        line = f"{server:12}{fanout.spread(kb, '.1f'):>16} KB"
        if server != "node" and "node" in by_server:
            node = [run["kb_held"] for run in by_server["node"]]
            ratios = [a / b for a, b in zip(kb, node, strict=False) if b]
            if ratios:
                line += f"{fanout.spread(ratios, '.2f') + 'x Node':>20}"
        print(line, flush=True)


def main() -> None:
    """Hold the clients on every chosen server in turn, and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--room-size", type=int, default=50)
    parser.add_argument("--load-processes", type=int, default=4)
    parser.add_argument("--hold", type=float, default=30)
    parser.add_argument("--servers", default="eventlet,gevent,node")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--server-soft-limit", type=int, default=1024)
    args = parser.parse_args()
    fanout.raise_file_limit()  # the load processes inherit it
    fanout.ensure_node_packages()
    results: list[tuple[str, dict]] = []
    title = (
        f"{args.clients} idle connections, rooms of {args.room_size}, deflate offered,"
        f" from {args.load_processes} client processes, held {args.hold:g} s"
    )
    with tempfile.TemporaryDirectory(prefix="bench-connections-") as folder:
        for _ in range(args.repeat):
            for server in args.servers.split(","):
                results.append((server, hold(server, args, folder)))
                report(title, results[-1:])
    summarize(results)


if __name__ == "__main__":
    main()

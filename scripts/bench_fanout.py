"""Benchmark Socket.IO fan-out: Threadroom against a reference Node socket.io 4 server.

    .venv/bin/python scripts/bench_fanout.py [--scenarios one-room,rooms,idle]
        [--seconds 10] [--one-room-clients 1000] [--rooms 20] [--room-size 50]
        [--rooms-rate 20] [--idle-clients 2000] [--answer addressed]
        [--servers eventlet,gevent,node] [--deflate on,off] [--repeat 1]

Starts Threadroom as users do on each async mode (``eventlet``: ``python app.py``;
``gevent``: ``gunicorn -k gevent -w 1``; demo model at 0 ms, limits lifted so the
load is not refused) and ``scripts/node_ref/server.mjs`` (socket.io 4 with its
defaults, the same room semantics), one at a time on a free port, and drives each
with the same Node socket.io-client load (``scripts/node_ref/load.mjs``): N clients
over WebSocket, offering permessage-deflate as browsers do, then not.  The Node
packages are installed with ``npm ci`` on first use (Node 18+ and npm needed).

Scenarios (from issue 14):
  one-room  N clients in one room, one sender at ``--one-room-rate`` msg/s
  rooms     R rooms of S clients, ``--rooms-rate`` msg/s in all, round robin
  idle      N clients registered in rooms of 50 and left idle (memory only)

For each run it prints delivery latency p50/p99 (sent → received, one clock: the
load process), server CPU per delivery (``/proc/<pid>/stat`` utime+stime over the
window, drain included), the load's CPU, memory per idle connection (server RSS
after every client registered, less RSS before, over N), and each server's ratio
to Node; with ``--repeat`` it ends with each figure's range over the runs.
``--answer addressed`` (the default) sets each room to answer only when
addressed, so both servers do the same chat fan-out; ``every`` adds Threadroom's
assistant turns (one per message burst) to its cost.  Clients and servers share
the machine's cores, so treat the figures as relative.  Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NODE_DIR = ROOT / "scripts" / "node_ref"
sys.path.insert(0, str(ROOT))

from ops.file_limit import raise_file_limit  # noqa: E402
from tests.live_server import CLEAN_ENV  # noqa: E402
from tests.live_server import free_port  # noqa: E402
from tests.live_server import stop_process  # noqa: E402
from tests.live_server import wait_healthy  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
# Every benchmark client shares 127.0.0.1 and one room holds them all.
LIFTED_LIMITS = {
    "LIMIT_MESSAGE_RATE": "1000000 per second",
    "LIMIT_REGISTRATION_RATE": "1000000 per minute",
    "LIMIT_NEW_ROOM_RATE": "1000000 per minute",
    "LIMIT_ROOMS": "100000",
    "LIMIT_CONNECTIONS": "100000",
    "LIMIT_ROOM_MEMBERS": "100000",
    "LIMIT_QUEUED_PER_PERSON": "100000",
    "LIMIT_ROOM_QUEUE": "100000",
}


@dataclass
class Scenario:
    """One load: how many clients, in how many rooms, how many messages a second."""

    name: str
    clients: int
    rooms: int
    rate: float
    seconds: float


def ensure_node_packages() -> None:
    """Install the pinned socket.io packages beside the Node scripts, once."""
    if (NODE_DIR / "node_modules" / "socket.io-client").is_dir():
        return
    if shutil.which("npm") is None:
        sys.exit("bench_fanout needs Node 18+ and npm (for the reference server).")
    print("Installing the reference server's packages (npm ci) ...", flush=True)
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True)


def cpu_seconds(pid: int) -> float:
    """Return a process's user+system CPU time so far (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def rss_bytes(pid: int) -> int:
    """Return a process's resident set size."""
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    """Wait until something accepts connections on ``port``."""
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early with {process.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port} after {timeout} s")


class Pid:
    """A process id where ``measure`` expects a ``Popen`` (only ``.pid`` is read)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid


def worker_of(pid: int) -> Pid:
    """Return the process that serves: gunicorn's one worker, or ``pid`` itself."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    python_children = [
        int(c) for c in children if "python" in Path(f"/proc/{c}/cmdline").read_text()
    ]
    return Pid(python_children[0]) if python_children else Pid(pid)


def wait_quiet(pid: int, timeout: float = 120) -> None:
    """Wait until ``pid`` uses under 2 % of a core over a second."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        time.sleep(1.0)
        if cpu_seconds(pid) - before < 0.02:
            return
    print(f"  (the server was still busy after {timeout:g} s)", flush=True)


def threadroom_command(port: int, worker: str) -> list[str]:
    """Return how users start Threadroom with ``worker``: ``python app.py`` for
    eventlet, gunicorn's worker for gevent (and eventlet under gunicorn)."""
    if worker == "eventlet":
        return [sys.executable, "app.py"]
    worker = worker.removeprefix("gunicorn-")
    return [sys.executable, "-m", "gunicorn", "-k", worker,
            "-w", "1", "--worker-connections", "100000",
            "-b", f"127.0.0.1:{port}", "app:create_app()"]  # fmt: skip


def start_threadroom(folder: str, port: int, extra_env: dict[str, str], worker: str):
    """Run Threadroom on ``worker`` with the demo model at 0 ms and lifted limits."""
    env = {
        **os.environ,
        **CLEAN_ENV,
        **LIFTED_LIMITS,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "ENGINE_DB": str(Path(folder) / f"bench-{port}.sqlite3"),
        "DEMO_DELAY_MS": "0",
        **extra_env,
    }
    return subprocess.Popen(
        threadroom_command(port, extra_env.get("BENCH_WORKER", worker)),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(Path(folder) / f"threadroom-{port}.log", "wb"),  # noqa: SIM115
    )


def start_node(folder: str, port: int, extra_env: dict[str, str], worker: str):
    """Run the reference socket.io server."""
    return subprocess.Popen(
        ["node", "server.mjs", str(port)],
        cwd=NODE_DIR,
        stdout=subprocess.DEVNULL,
        stderr=open(Path(folder) / f"node-{port}.log", "wb"),  # noqa: SIM115
    )


# The servers to compare: Threadroom on each async mode, and the reference.
# ``threadroom`` is eventlet (``python app.py``), or ``BENCH_WORKER``'s worker.
SERVERS = {
    "threadroom": "eventlet",
    "eventlet": "eventlet",
    "gevent": "gevent",
    "gunicorn-eventlet": "gunicorn-eventlet",
    "node": "node",
}


def start_server(server: str, folder: str, port: int, extra_env: dict[str, str]):
    """Start one of ``SERVERS`` on ``port``."""
    worker = SERVERS[server]
    start = start_node if worker == "node" else start_threadroom
    return start(folder, port, extra_env, worker)


def run_load(server: str, scenario: Scenario, deflate: bool, args, folder: str) -> dict:
    """Start ``server``, put ``scenario`` on it, and return the figures."""
    port = free_port()
    process = start_server(server, folder, port, dict(args.env))
    try:
        wait_for_port(port, process)
        if server != "node":  # gunicorn binds before its worker has the app
            url = f"http://127.0.0.1:{port}"
            wait_healthy(process, url, 30, "threadroom", lambda: "(see its output)")
        time.sleep(1.0)  # let start-up finish before the baseline
        served_by = worker_of(process.pid)
        rss_before = rss_bytes(served_by.pid)
        load = subprocess.Popen(
            ["node", "load.mjs", json.dumps({
                "url": f"http://127.0.0.1:{port}",
                "clients": scenario.clients,
                "rooms": scenario.rooms,
                "rate": scenario.rate,
                "seconds": scenario.seconds,
                "deflate": deflate,
                "answer": args.answer,
            })],
            cwd=NODE_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        try:
            return measure(served_by, load, scenario, rss_before)
        finally:
            if load.poll() is None:
                load.kill()
            load.wait()
    finally:
        stop_process(process)


def measure(process, load, scenario: Scenario, rss_before: int) -> dict:
    """Read memory once the clients idle, then CPU and latency over the load."""
    assert load.stdin is not None and load.stdout is not None
    for line in load.stdout:
        if line.strip() == "ready":
            break
    else:
        raise RuntimeError("the load exited before its clients were registered")
    # Idle: every join was broadcast to the room (O(N²) deliveries as a crowd
    # arrives); wait until the server has finished sending them.
    wait_quiet(process.pid)
    figures: dict = {
        "mem_kb": (rss_bytes(process.pid) - rss_before) / scenario.clients / 1024
    }
    if scenario.seconds <= 0:
        return figures
    cpu_before = cpu_seconds(process.pid)
    load.stdin.write("go\n")
    load.stdin.flush()
    result = None
    for line in load.stdout:
        if line.startswith("result "):
            result = json.loads(line[len("result ") :])
            break
    if result is None:
        raise RuntimeError("the load exited without a result")
    server_cpu = cpu_seconds(process.pid) - cpu_before
    deliveries = max(result["deliveries"], 1)
    figures.update(
        p50_ms=result["p50_ms"],
        p99_ms=result["p99_ms"],
        cpu_us=server_cpu / deliveries * 1e6,
        client_cpu_s=result["client_cpu_s"],
        delivered=f"{result['deliveries']}/{result['expected']}",
        refused=result["refused"],
    )
    return figures


def scenarios(args) -> list[Scenario]:
    """Return the chosen scenarios with their parameters."""
    known = {
        "one-room": Scenario(
            "one-room", args.one_room_clients, 1, args.one_room_rate, args.seconds
        ),
        "rooms": Scenario(
            "rooms",
            args.rooms * args.room_size,
            args.rooms,
            args.rooms_rate,
            args.seconds,
        ),  # fmt: skip
        "idle": Scenario(
            "idle", args.idle_clients, max(1, args.idle_clients // 50), 0, 0
        ),
    }
    return [known[name] for name in args.scenarios.split(",")]


def fmt(value, spec: str = ".1f") -> str:
    """Format a figure, or a dash when there is none."""
    return "-" if value is None else format(value, spec)


def ratio(a, b) -> str:
    """Format Threadroom/Node, or a dash."""
    return "-" if a is None or not b else f"{a / b:.2f}x"


COLUMNS = (
    ("p50 ms", "p50_ms", ".1f"),
    ("p99 ms", "p99_ms", ".1f"),
    ("server us/delivery", "cpu_us", ".1f"),
    ("client CPU s", "client_cpu_s", ".2f"),
    ("KB/idle conn", "mem_kb", ".1f"),
)


def title(scenario: Scenario, deflate: bool) -> str:
    """Name one load: the scenario, its size and rate, and the deflate offer."""
    offered = "deflate offered" if deflate else "deflate not offered"
    return (
        f"{scenario.name}: {scenario.clients} clients, {scenario.rooms} room(s),"
        f" {scenario.rate:g} msg/s, {scenario.seconds:g} s, {offered}"
    )


def report(scenario: Scenario, deflate: bool, results: dict[str, dict]) -> None:
    """Print one load's figures for every server and their ratios to Node."""
    print(f"\n== {title(scenario, deflate)}")
    print(f"{'':20}" + "".join(f"{title:>20}" for title, _, _ in COLUMNS))
    for server, figures in results.items():
        cells = "".join(f"{fmt(figures.get(k), spec):>20}" for _, k, spec in COLUMNS)
        extra = (
            f"  delivered {figures['delivered']}, refused {figures['refused']}"
            if "delivered" in figures
            else ""
        )
        print(f"{server:20}{cells}{extra}")
    node = results.get("node")
    for server, figures in results.items():
        if node is None or server == "node":
            continue
        cells = "".join(
            f"{ratio(figures.get(k), node.get(k)):>20}" for _, k, _ in COLUMNS
        )
        print(f"{server + '/node':20}{cells}", flush=True)


def spread(values: list[float], spec: str) -> str:
    """Format the range of a figure over repeated runs: ``low-high``, or one value."""
    low, high = format(min(values), spec), format(max(values), spec)
    return low if low == high else f"{low}-{high}"


def summarize(key: str, runs: list[dict[str, dict]]) -> None:
    """Print each figure's range over the repeated runs of one load, and the
    range of each server's ratio to Node (taken run by run, back to back)."""
    print(f"\n== {key}: ranges over {len(runs)} runs")
    print(f"{'':20}" + "".join(f"{title:>20}" for title, _, _ in COLUMNS))
    for server in runs[0]:
        cells = ""
        for _, k, spec in COLUMNS:
            values = [run[server][k] for run in runs if run[server].get(k) is not None]
            cells += f"{spread(values, spec) if values else '-':>20}"
        print(f"{server:20}{cells}")
    if "node" not in runs[0]:
        return
    for server in runs[0]:
        if server == "node":
            continue
        cells = ""
        for _, k, _ in COLUMNS:
            ratios = [
                run[server][k] / run["node"][k]
                for run in runs
                if run[server].get(k) is not None and run["node"].get(k)
            ]
            cells += f"{spread(ratios, '.2f') + 'x' if ratios else '-':>20}"
        print(f"{server + '/node':20}{cells}", flush=True)


def main() -> None:
    """Run every chosen scenario on both servers, deflate offered and not."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenarios", default="one-room,rooms,idle")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--one-room-clients", type=int, default=1000)
    parser.add_argument("--one-room-rate", type=float, default=1)
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--room-size", type=int, default=50)
    parser.add_argument("--rooms-rate", type=float, default=20)
    parser.add_argument("--idle-clients", type=int, default=2000)
    parser.add_argument(
        "--servers",
        default="eventlet,gevent,node",
        help=f"comma-separated, run in this order: {', '.join(SERVERS)}",
    )
    parser.add_argument("--deflate", default="on,off", help="on, off, or on,off")
    parser.add_argument("--answer", choices=("addressed", "every"), default="addressed")
    parser.add_argument(
        "--repeat", type=int, default=1, help="run every load this many times"
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        type=lambda s: tuple(s.split("=", 1)),
        help="NAME=VALUE for Threadroom's environment (repeatable); "
        "BENCH_WORKER=gevent serves it with gunicorn -k gevent instead",
    )
    args = parser.parse_args()
    raise_file_limit()
    ensure_node_packages()
    loads = [
        (scenario, deflate == "on")
        for scenario in scenarios(args)
        for deflate in args.deflate.split(",")
    ]
    runs: dict[str, list[dict[str, dict]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as folder:
        for _ in range(args.repeat):  # each round runs every load once, in turn
            for scenario, deflate in loads:
                results = {
                    server: run_load(server, scenario, deflate, args, folder)
                    for server in args.servers.split(",")
                }
                report(scenario, deflate, results)
                runs.setdefault(title(scenario, deflate), []).append(results)
    if args.repeat > 1:
        for key, results_by_run in runs.items():
            summarize(key, results_by_run)


if __name__ == "__main__":
    main()

"""Benchmark shared mode: 1, 2 and 3 ``python app.py`` processes on one Redis and
one PostgreSQL.

    .venv/bin/python scripts/bench_scale.py [--processes 1,2,3] [--rooms 20]
        [--room-size 30] [--rate 20] [--seconds 10] [--turn-rooms 12]
        [--turn-seconds 10] [--redis-url URL] [--database-url URL]

For each cluster size N it starts N processes in shared mode (``tests/cluster.py``:
demo model at ``DEMO_DELAY_MS=0``, the default poll interval, limits lifted) on a
fresh PostgreSQL database and a Redis prefix of their own, then:

- fan-out: ``--rooms`` rooms of ``--room-size`` clients (the Node load of
  ``bench_fanout.py``, WebSocket, no deflate), each room's members spread over the
  N processes, its sender on the first; the senders send ``--rate`` messages a
  second in all for ``--seconds``, rooms answering only when addressed (chat
  fan-out, no turns).  Prints the clients held (connected and registered), delivery
  p50/p99 (sent → received, one clock) and the servers' CPU per delivery;
- turns: ``--turn-rooms`` rooms of one person each (``bench_turns.py``'s Person),
  spread over the processes, each sending a message, waiting for its ``ai-end`` and
  sending the next, for ``--turn-seconds``.  Prints turns/s;

and for each window: Redis commands (``INFO commandstats`` deltas, the bench's own
INFO calls left out) per delivered message and per turn, and PostgreSQL
transactions and rows touched (``pg_stat_database`` deltas for the cluster's
database: pg8000 runs each statement in a transaction of its own unless the app
opens one, so transactions ≈ statements) per turn.

By default Redis is a private ``redis-server`` on a free port, so its counters are
the cluster's alone; ``--redis-url`` uses another (its counters are server-wide:
anything else using it is counted too).  PostgreSQL's counters are per database;
its backends report them up to ~10 s late, so the bench waits that long around each
window.  The processes' heartbeats (a row every 5 s each) are counted in the turn
window too.  Clients, servers, Redis and PostgreSQL share this machine's cores:
past the core count more processes cannot go faster.  Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "tests"))  # pg_helpers, as the tests import it

from pg_helpers import admin_connection  # noqa: E402
from pg_helpers import with_database  # noqa: E402

from scripts.bench_fanout import LIFTED_LIMITS  # noqa: E402
from scripts.bench_fanout import NODE_DIR  # noqa: E402
from scripts.bench_fanout import cpu_seconds  # noqa: E402
from scripts.bench_fanout import ensure_node_packages  # noqa: E402
from scripts.bench_fanout import raise_file_limit  # noqa: E402
from scripts.bench_fanout import wait_quiet  # noqa: E402
from scripts.bench_turns import Person  # noqa: E402
from scripts.bench_turns import throughput  # noqa: E402
from tests.cluster import Cluster  # noqa: E402
from tests.live_server import free_port  # noqa: E402
from tests.live_server import stop_process  # noqa: E402

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_REPORT_DELAY_S = 11  # PostgreSQL 15 backends flush their counters when idle ≤10 s
PG_COUNTERS = ("xact_commit", "xact_rollback", "tup_returned", "tup_fetched",
               "tup_inserted", "tup_updated", "tup_deleted")  # fmt: skip


@dataclass
class Figures:
    """One cluster size's results."""

    processes: int
    held: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    delivered: str = ""
    cpu_us_per_delivery: float | None = None
    redis_per_delivery: float | None = None
    turns_per_s: float | None = None
    cpu_ms_per_turn: float | None = None
    redis_per_turn: float | None = None
    pg_xact_per_turn: float | None = None
    pg_rows_per_turn: float | None = None
    redis_top_per_turn: list[tuple[str, float]] = field(default_factory=list)
    redis_top_per_delivery: list[tuple[str, float]] = field(default_factory=list)


# -- Redis and PostgreSQL counters ---------------------------------------------


def start_redis(folder: Path) -> tuple[str, subprocess.Popen]:
    """Start a private, memory-only redis-server on a free port."""
    if shutil.which("redis-server") is None:
        sys.exit("bench_scale needs redis-server (apt-get install redis-server).")
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
         "--save", "", "--appendonly", "no", "--dir", str(folder)],
        stdout=open(folder / "redis.log", "wb"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis.from_url(url).ping()
            return url, process
        except redis.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise
            time.sleep(0.05)


def redis_calls(url: str) -> dict[str, int]:
    """Return the server's calls so far by command (INFO and CONFIG left out)."""
    client = redis.Redis.from_url(url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return {
        name.removeprefix("cmdstat_"): int(value["calls"])
        for name, value in stats.items()
        if name not in ("cmdstat_info", "cmdstat_config", "cmdstat_ping")
    }


def calls_since(url: str, before: dict[str, int]) -> dict[str, int]:
    """Return the calls by command since ``before``."""
    after = redis_calls(url)
    return {k: v - before.get(k, 0) for k, v in after.items() if v > before.get(k, 0)}


def pg_counters(admin, database: str) -> dict[str, int]:
    """Return ``pg_stat_database``'s counters for ``database``."""
    rows = admin.run(
        f"SELECT {', '.join(PG_COUNTERS)} FROM pg_stat_database WHERE datname = :d",
        d=database,
    )
    return dict(zip(PG_COUNTERS, rows[0], strict=True))


def top(calls: dict[str, int], per: float, n: int = 4) -> list[tuple[str, float]]:
    """Return the ``n`` commands called most, per ``per``."""
    ordered = sorted(calls.items(), key=lambda item: -item[1])[:n]
    return [(name, count / per) for name, count in ordered]


# -- the two windows -------------------------------------------------------------


def total_cpu(cluster: Cluster) -> float:
    """Return the CPU seconds every process of ``cluster`` used so far."""
    return sum(cpu_seconds(cluster.pid(i)) for i in range(len(cluster)))


def fan_out(cluster: Cluster, args, figures: Figures) -> None:
    """Put the Node load on every process; fill in the fan-out figures."""
    urls = [cluster.url(i) for i in range(len(cluster))]
    options = {
        "urls": urls, "clients": args.rooms * args.room_size, "rooms": args.rooms,
        "rate": args.rate, "seconds": args.seconds, "deflate": False,
        "answer": "addressed",
    }  # fmt: skip
    load = subprocess.Popen(
        ["node", "load.mjs", json.dumps(options)],
        cwd=NODE_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert load.stdin is not None and load.stdout is not None
    try:
        if load.stdout.readline().strip() != "ready":
            raise RuntimeError("the load exited before its clients were registered")
        for i in range(len(cluster)):  # the crowd's joins are broadcast: let them end
            wait_quiet(cluster.pid(i))
        figures.held = sum(connections(cluster.url(i)) for i in range(len(cluster)))
        calls, cpu = redis_calls(cluster.redis_url), total_cpu(cluster)
        load.stdin.write("go\n")
        load.stdin.flush()
        line = next(x for x in load.stdout if x.startswith("result "))
        result = json.loads(line[len("result ") :])
        spent = calls_since(cluster.redis_url, calls)
        deliveries = max(result["deliveries"], 1)
        figures.p50_ms, figures.p99_ms = result["p50_ms"], result["p99_ms"]
        figures.delivered = f"{result['deliveries']}/{result['expected']}"
        figures.cpu_us_per_delivery = (total_cpu(cluster) - cpu) / deliveries * 1e6
        figures.redis_per_delivery = sum(spent.values()) / deliveries
        figures.redis_top_per_delivery = top(spent, deliveries)
    finally:
        if load.poll() is None:
            load.kill()
        load.wait()


def connections(url: str) -> int:
    """Return a process's open Socket.IO connections (its /metrics)."""
    import requests

    text = requests.get(url + "/metrics", timeout=10).text
    line = next(x for x in text.splitlines() if x.startswith("threadroom_connections "))
    return int(float(line.split()[1]))


def turns(cluster: Cluster, admin, database: str, args, figures: Figures) -> None:
    """Run turns in rooms spread over the processes; fill in the turn figures."""
    size = len(cluster)
    people = [
        Person(cluster.url(i % size), f"turns-r{i}", f"turner{i}")
        for i in range(args.turn_rooms)
    ]
    try:
        people[0].turn("warm up")  # the first turn opens the engine's paths
        time.sleep(PG_REPORT_DELAY_S)
        pg_before = pg_counters(admin, database)
        calls, cpu = redis_calls(cluster.redis_url), total_cpu(cluster)
        started = time.perf_counter()
        done, _ = throughput(people, args.turn_seconds, cluster.pid(0))
        window = time.perf_counter() - started
        spent = calls_since(cluster.redis_url, calls)
        cpu = total_cpu(cluster) - cpu
        time.sleep(PG_REPORT_DELAY_S)
        pg_after = pg_counters(admin, database)
    finally:
        for person in people:
            person.close()
    n = max(done, 1)
    pg = {k: pg_after[k] - pg_before[k] for k in PG_COUNTERS}
    figures.turns_per_s = done / window
    figures.cpu_ms_per_turn = cpu / n * 1000
    figures.redis_per_turn = sum(spent.values()) / n
    figures.redis_top_per_turn = top(spent, n)
    figures.pg_xact_per_turn = (pg["xact_commit"] + pg["xact_rollback"]) / n
    figures.pg_rows_per_turn = sum(
        pg[k] for k in PG_COUNTERS if k.startswith("tup_")
    ) / n  # fmt: skip


def measure(size: int, args, redis_url: str, folder: Path) -> Figures:
    """Start ``size`` processes on a fresh database and measure both windows."""
    admin = admin_connection(args.database_url)
    database = f"threadroom_bench_{uuid.uuid4().hex[:10]}"
    admin.run(f"CREATE DATABASE {database}")
    cluster = Cluster(
        folder / f"cluster-{size}",
        size,
        redis_url=redis_url,
        database_url=with_database(args.database_url, database),
        **LIFTED_LIMITS,
        DEMO_DELAY_MS="0",
        POLL_INTERVAL_MS="",  # the default, as bench_turns measures
    )
    figures = Figures(size)
    try:
        cluster.start_all()
        fan_out(cluster, args, figures)
        turns(cluster, admin, database, args, figures)
    finally:
        cluster.close()
        admin.run(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        admin.close()
    return figures


# -- the table -------------------------------------------------------------------


def fmt(value, spec: str = ".1f") -> str:
    """Format a figure, or a dash when there is none."""
    return "-" if value is None else format(value, spec)


COLUMNS = (
    ("procs", "processes", "d"),
    ("clients", "held", "d"),
    ("p50 ms", "p50_ms", ".1f"),
    ("p99 ms", "p99_ms", ".1f"),
    ("CPU us/dlv", "cpu_us_per_delivery", ".0f"),
    ("redis/dlv", "redis_per_delivery", ".2f"),
    ("turns/s", "turns_per_s", ".1f"),
    ("CPU ms/turn", "cpu_ms_per_turn", ".1f"),
    ("redis/turn", "redis_per_turn", ".1f"),
    ("pg xact/turn", "pg_xact_per_turn", ".1f"),
    ("pg rows/turn", "pg_rows_per_turn", ".0f"),
)


def report(results: list[Figures], args) -> None:
    """Print the table, then the Redis commands behind it."""
    print(
        f"\nfan-out: {args.rooms} rooms x {args.room_size} clients, {args.rate:g} msg/s"
        f" for {args.seconds:g} s (addressed-only rooms); turns: {args.turn_rooms}"
        f" one-person rooms, {args.turn_seconds:g} s, demo model at 0 ms"
    )
    print("".join(f"{title:>13}" for title, _, _ in COLUMNS))
    for figures in results:
        cells = (fmt(getattr(figures, key), spec) for _, key, spec in COLUMNS)
        print("".join(f"{cell:>13}" for cell in cells) + f"  {figures.delivered}")
    for figures in results:
        per_turn = ", ".join(f"{n} {v:.1f}" for n, v in figures.redis_top_per_turn)
        per_dlv = ", ".join(f"{n} {v:.2f}" for n, v in figures.redis_top_per_delivery)
        print(f"{figures.processes} proc: per turn {per_turn}; per delivery {per_dlv}")


def main() -> None:
    """Measure each cluster size and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--processes", default="1,2,3")
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--room-size", type=int, default=30)
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--turn-rooms", type=int, default=12)
    parser.add_argument("--turn-seconds", type=float, default=10)
    parser.add_argument("--redis-url", default="", help="default: a private one")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    args = parser.parse_args()
    raise_file_limit()
    ensure_node_packages()
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as name:
        folder = Path(name)
        redis_url, redis_process = args.redis_url, None
        if not redis_url:
            redis_url, redis_process = start_redis(folder)
        try:
            results = []
            for size in [int(n) for n in args.processes.split(",")]:
                print(f"measuring {size} process(es) ...", flush=True)
                results.append(measure(size, args, redis_url, folder))
            report(results, args)
        finally:
            stop_process(redis_process)


if __name__ == "__main__":
    main()

"""Benchmark a room: backend requests per reply, and how long a finished reply takes
to reach every client.

    .venv/bin/python scripts/bench_room.py [--clients 50] [--replies 20]

Runs the app in this process on eventlet (as ``python app.py`` does), connects N real
Socket.IO clients over WebSocket, and for each reply measures the time from the
moment the engine marks the run ``completed`` to the moment each client has the
reply (``message-list``), in poll mode (socket ``message``) and stream mode
(``POST /stream``).  Prints figures; asserts nothing.
"""

from __future__ import annotations

import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import eventlet.wsgi  # noqa: E402
import requests  # noqa: E402
import socketio  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import create_app  # noqa: E402
from assistant.client import embedded_client  # noqa: E402
from assistant.engine import create_api  # noqa: E402


def start_app(db_path: str, delay_ms: int):
    """Build the app, count its engine requests and note when runs complete."""
    app = create_app(
        {
            "ASYNC_MODE": "eventlet",
            "ENGINE_DB": db_path,
            "DEMO_DELAY_MS": delay_ms,
            "EMPTY_ROOM_TTL_S": -1,
            # Every benchmark client shares 127.0.0.1: lift the per-address rate.
            "LIMIT_REGISTRATION_RATE": "1000000 per minute",
            "OPENAI_API_KEY": "",
            "MODEL_BASE_URL": "",
            "ASSISTANTS_BASE_URL": "",
        }
    )
    engine = app.extensions["threadroom.engine"]
    requests_seen: list[str] = []
    completed_at: dict[str, float] = {}
    api = create_api(engine)

    def counting(environ, start_response):
        requests_seen.append(environ["REQUEST_METHOD"] + " " + environ["PATH_INFO"])
        return api(environ, start_response)

    original_update = engine.store.update

    def noting_update(kind, obj):
        if kind == "runs" and obj.get("status") == "completed":
            completed_at.setdefault(obj["id"], time.monotonic())
        return original_update(kind, obj)

    engine.store.update = noting_update
    app.extensions["threadroom.assistant"].client = embedded_client(counting)
    listener = eventlet.listen(("127.0.0.1", 0))
    eventlet.spawn(
        eventlet.wsgi.server, listener, app, log_output=False, max_size=10000
    )
    return app, listener.getsockname()[1], requests_seen, completed_at


class Client:
    """A real Socket.IO client that notes when each reply arrives."""

    def __init__(self, url: str, index: int) -> None:
        self.arrivals: dict[str, float] = {}
        self.sio = socketio.Client()
        self.sio.on("message-list", self.on_message_list)
        self.sio.connect(url, transports=["websocket"])
        ack = self.sio.call(
            "register", {"user_id": f"bench-{index}", "name": f"B{index}"}
        )
        assert ack["ok"], ack

    def on_message_list(self, messages) -> None:
        """Note the arrival time of each assistant reply."""
        now = time.monotonic()
        for message in messages:
            if message["role"] == "assistant":
                self.arrivals.setdefault(message["id"], now)


def wait_until(predicate, timeout: float = 30) -> None:
    """Wait for ``predicate`` with a deadline."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark step timed out")
        eventlet.sleep(0.005)


def run_mode(mode, url, clients, replies, requests_seen, completed_at, app):
    """Send ``replies`` messages in one mode; return latencies and request counts."""
    latencies, counts = [], []
    sender = clients[0]
    for number in range(replies):
        before_runs = set(completed_at)
        requests_seen.clear()
        text = f"{mode} benchmark message {number}"
        if mode == "poll":
            assert sender.sio.call("message", {"content": text})["ok"]
        else:
            headers = {
                "Accept": "text/event-stream",
                "X-Socket-Id": sender.sio.get_sid(),
            }
            requests.post(url + "/stream", json={"content": text}, headers=headers)
        run_id = wait_for_new_run(completed_at, before_runs)
        reply_id = _reply_id(run_id, app)
        wait_until(lambda r=reply_id: all(r in c.arrivals for c in clients))
        done = completed_at[run_id]
        latencies += [(c.arrivals[reply_id] - done) * 1000 for c in clients]
        counts.append(len(requests_seen))
    return latencies, counts


def wait_for_new_run(completed_at: dict, before: set) -> str:
    """Wait until a run not in ``before`` completes; return its id."""
    wait_until(lambda: set(completed_at) - before)
    return (set(completed_at) - before).pop()


def _reply_id(run_id: str, app) -> str:
    """Return the id of the assistant message a run wrote."""
    store = app.extensions["threadroom.engine"].store
    (message,) = store.select("messages", run_id=run_id)
    return message["id"]


def percentile(values: list[float], share: float) -> float:
    """Return the ``share`` percentile (0-1) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--replies", type=int, default=20)
    parser.add_argument("--delay-ms", type=int, default=20, help="demo delay per word")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        app, port, requests_seen, completed_at = start_app(
            str(Path(folder) / "bench.sqlite3"), args.delay_ms
        )
        url = f"http://127.0.0.1:{port}"
        started = time.monotonic()
        clients = [Client(url, index) for index in range(args.clients)]
        print(f"{args.clients} clients connected in {time.monotonic() - started:.2f} s")
        for mode in ("poll", "stream"):
            latencies, counts = run_mode(
                mode, url, clients, args.replies, requests_seen, completed_at, app
            )
            print(
                f"{mode:>6} mode: requests per reply mean {statistics.mean(counts):.1f}"
                f" max {max(counts)} | run completed -> reply at all {args.clients}"
                f" clients: p50 {percentile(latencies, 0.5):.1f} ms,"
                f" p99 {percentile(latencies, 0.99):.1f} ms,"
                f" max {max(latencies):.1f} ms ({len(latencies)} deliveries)"
            )
        for client in clients:
            client.sio.disconnect()


if __name__ == "__main__":
    main()

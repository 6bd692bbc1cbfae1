"""Several real ``python app.py`` processes in shared mode, for end-to-end tests.

A ``Cluster`` runs N processes on free loopback ports, all on one Redis (one key
prefix and Socket.IO channel of their own) and one PostgreSQL database, with the
same ``SECRET_KEY`` and the demo model: what a deployment behind a load balancer
runs.  Any process can be killed (``kill -9``), stopped, and started again on its
port.  ``LivePerson`` is one browser tab on one of them, over a real WebSocket.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

import redis
import requests
import socketio

from tests.live_server import CLEAN_ENV
from tests.live_server import ROOT
from tests.live_server import free_port
from tests.live_server import stop_process
from tests.live_server import wait_healthy

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379"
# The db the suite uses when TEST_REDIS_URL names none: keys are prefixed per run
# anyway, but a developer's db 0 stays untouched.
DEFAULT_REDIS_DB = 11


def redis_url_for_tests() -> str:
    """Return the Redis the shared-mode tests use (``TEST_REDIS_URL``), with a db."""
    url = os.environ.get("TEST_REDIS_URL") or DEFAULT_REDIS_URL
    parts = urlsplit(url)
    if parts.path.strip("/"):
        return url
    return urlunsplit(parts._replace(path=f"/{DEFAULT_REDIS_DB}"))


def new_prefix(what: str = "test") -> str:
    """Return a Redis key prefix no other run uses."""
    return f"threadroom-{what}-{uuid.uuid4().hex[:10]}"


def delete_prefixed(url: str, prefix: str) -> int:
    """Delete every key under ``<prefix>:`` (SCAN, never FLUSHDB); return how many."""
    client = redis.Redis.from_url(url)
    try:
        deleted = 0
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{prefix}:*", count=500):
            batch.append(key)
            if len(batch) >= 500:
                deleted += client.delete(*batch)
                batch.clear()
        if batch:
            deleted += client.delete(*batch)
        return deleted
    finally:
        client.close()


class Cluster:
    """N ``python app.py`` processes in shared mode, each on a port of its own.

    ``env`` overrides settings for every process (strings, as in the environment).
    Processes are numbered from 0; a stopped or killed one keeps its port, so
    ``start(i)`` brings it back where clients and proxies expect it.
    """

    def __init__(
        self,
        directory: Path,
        size: int,
        *,
        redis_url: str,
        database_url: str,
        prefix: str | None = None,
        **env: str,
    ) -> None:
        self.directory = directory
        self.redis_url = redis_url
        self.database_url = database_url
        self.prefix = prefix or new_prefix()
        self.ports = [free_port() for _ in range(size)]
        self.processes: list[subprocess.Popen | None] = [None] * size
        self.env = {
            **os.environ,
            **CLEAN_ENV,
            "HOST": "127.0.0.1",
            "PYTHONUNBUFFERED": "1",
            "REDIS_URL": redis_url,
            "REDIS_PREFIX": self.prefix,
            "DATABASE_URL": database_url,
            "SECRET_KEY": f"cluster-secret-{self.prefix}",  # one for all: tokens
            **env,
        }
        directory.mkdir(parents=True, exist_ok=True)

    def __len__(self) -> int:
        return len(self.ports)

    def url(self, i: int) -> str:
        """Return process ``i``'s base URL."""
        return f"http://127.0.0.1:{self.ports[i]}"

    def log_path(self, i: int) -> Path:
        """Return the file process ``i`` writes to (kept across restarts)."""
        return self.directory / f"process-{i}-{self.ports[i]}.log"

    def logs(self, i: int) -> str:
        """Return what process ``i`` printed, every start of it included."""
        path = self.log_path(i)
        return path.read_text(errors="replace") if path.exists() else ""

    def pid(self, i: int) -> int:
        """Return process ``i``'s pid (it must be running)."""
        process = self.processes[i]
        assert process is not None and process.poll() is None, f"{i} is not running"
        return process.pid

    def running(self, i: int) -> bool:
        """Say whether process ``i`` is running."""
        process = self.processes[i]
        return process is not None and process.poll() is None

    def spawn(self, i: int) -> subprocess.Popen:
        """Start process ``i`` on its port without waiting for it."""
        assert not self.running(i), f"process {i} is already running"
        with open(self.log_path(i), "ab") as log:  # the child keeps its own copy
            log.write(f"--- start at {time.strftime('%H:%M:%S')}\n".encode())
            log.flush()
            process = subprocess.Popen(
                [sys.executable, "app.py"],
                cwd=ROOT,
                env={**self.env, "PORT": str(self.ports[i])},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.processes[i] = process
        return process

    def start(self, i: int, timeout: float = 30) -> None:
        """Start process ``i`` on its port and wait until /healthz answers."""
        process = self.spawn(i)
        wait_healthy(
            process, self.url(i), timeout, f"process {i}", lambda: self.logs(i)
        )

    def start_all(self, timeout: float = 30) -> Cluster:
        """Start every process: the first alone (it creates the schema), then the
        others at once."""
        self.start(0, timeout)
        for i in range(1, len(self)):
            self.spawn(i)
        for i in range(1, len(self)):
            process = self.processes[i]
            assert process is not None
            wait_healthy(process, self.url(i), timeout, f"process {i}",
                         lambda i=i: self.logs(i))  # fmt: skip
        return self

    def stop(self, i: int) -> None:
        """Stop process ``i`` as an operator does (SIGTERM, then SIGKILL)."""
        stop_process(self.processes[i])

    def kill(self, i: int) -> None:
        """Kill process ``i`` with SIGKILL, as a crash or ``kill -9`` does."""
        process = self.processes[i]
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def restart(self, i: int, timeout: float = 30) -> None:
        """Stop process ``i`` and start it again on the same port."""
        self.stop(i)
        self.start(i, timeout)

    def close(self) -> None:
        """Stop every process and delete every Redis key under the prefix."""
        for i in range(len(self)):
            self.stop(i)
        delete_prefixed(self.redis_url, self.prefix)

    def __enter__(self) -> Cluster:
        return self.start_all()

    def __exit__(self, *exc) -> None:
        self.close()


class LivePerson:
    """One browser tab connected to a real server over WebSocket: it records every
    event it receives, in order, and waits on them with a deadline."""

    def __init__(self, url: str, *, transports: list[str] | None = None,
                 socketio_path: str = "socket.io") -> None:  # fmt: skip
        self.client = socketio.Client(reconnection=False)
        self.events: list[tuple[str, object]] = []
        self.arrived = threading.Condition()
        self.client.on("*", self._record)
        self.client.connect(
            url,
            transports=transports or ["websocket"],
            socketio_path=socketio_path,
            wait_timeout=20,
        )

    def _record(self, event: str, *args) -> None:
        with self.arrived:
            self.events.append((event, args[0] if len(args) == 1 else list(args)))
            self.arrived.notify_all()

    def call(self, event: str, data: object, timeout: float = 15) -> dict:
        """Send an event and return its ack."""
        return self.client.call(event, data, timeout=timeout)

    def register(self, name: str, room: str, user_id: str | None = None) -> dict:
        """Register ``name`` in ``room`` and return the ack."""
        person = {"user_id": user_id or f"u-{name}", "name": name, "room": room}
        return self.call("register", person)

    def say(self, content: str, message_id: str | None = None) -> dict:
        """Send a chat message and return the ack."""
        message = {"content": content}
        if message_id:
            message["id"] = message_id
        return self.call("message", message)

    def stream(self, url: str, content: str, timeout: float = 30) -> list[str]:
        """Send a message as the page does in stream mode (``POST /stream`` to
        ``url`` naming this socket) and return the SSE lines up to the end."""
        headers = {"Accept": "text/event-stream", "X-Socket-Id": self.client.get_sid()}
        with requests.post(
            url + "/stream",
            json={"content": content},
            headers=headers,
            stream=True,
            timeout=timeout,
        ) as response:
            assert response.status_code == 200, response.text
            return [line for line in response.iter_lines(decode_unicode=True) if line]

    def payloads(self, name: str) -> list:
        """Return the payloads of every ``name`` event received so far."""
        with self.arrived:
            return [data for event, data in self.events if event == name]

    def names(self) -> list[str]:
        """Return the names of the events received so far, in order."""
        with self.arrived:
            return [event for event, _ in self.events]

    def wait_until(self, predicate, timeout: float = 20, what: str = "an event"):
        """Wait until ``predicate(self)`` is truthy and return it."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while True:
                value = predicate(self)
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"no {what} within {timeout} s; got {self.names()}"
                    )
                self.arrived.wait(left)

    def wait(self, name: str, count: int = 1, timeout: float = 20) -> list:
        """Wait until ``count`` ``name`` events arrived; return their payloads."""
        return self.wait_until(
            lambda me: len(me.payloads(name)) >= count and me.payloads(name),
            timeout,
            f"{count} × {name!r}",
        )

    def close(self) -> None:
        """Disconnect, as a closed tab does."""
        self.client.disconnect()

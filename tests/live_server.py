"""Run Threadroom as a real process on a free loopback port, for end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent

# Settings that must not leak in from a developer's .env or shell: with any of them
# a test could reach a real model or a remote server.
BLANK_SETTINGS = (
    "OPENAI_API_KEY",
    "MODEL_BASE_URL",
    "MODEL",
    "ASSISTANTS_BASE_URL",
    "OPENAI_ASSISTANT_ID",
    "ASSISTANT_NAME",
    "ENGINE_API_KEY",
    "SOCKETIO_MESSAGE_QUEUE",
    "PUBLIC_URL",
    "LEGACY_STREAM_SENDERS",
    "REDIS_URL",  # nor their Redis
    "DATABASE_URL",  # a developer's own database must never see a test's writes
)
CLEAN_ENV = {
    **dict.fromkeys(BLANK_SETTINGS, ""),
    "SECRET_KEY": "live-server-test-secret",
    "ASYNC_MODE": "",
    "EMPTY_ROOM_TTL_S": "-1",
    "DEMO_DELAY_MS": "20",
    "POLL_INTERVAL_MS": "100",
    # A whole test module shares one server and one address (127.0.0.1) for dozens
    # of people and rooms; the per-address rates are proven in test_limits.py.
    "LIMIT_REGISTRATION_RATE": "1000 per minute",
    "LIMIT_NEW_ROOM_RATE": "1000 per minute",
}


def wait_healthy(
    process: subprocess.Popen, url: str, timeout: float, what: str, log
) -> None:
    """Wait until ``url``/healthz answers; fail with ``log()`` if ``process`` exits
    first or the time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited early:\n{log()}")
        try:
            if requests.get(url + "/healthz", timeout=1).ok:
                return
        except requests.RequestException:  # refused, or still booting
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer within {timeout} s:\n{log()}")


def stop_process(process: subprocess.Popen | None) -> None:
    """Stop a child process: SIGTERM, then SIGKILL if it lingers."""
    if process and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_refused(tmp_path: Path, **settings: str) -> str:
    """Run ``python app.py`` with ``settings``; return its error output, after
    checking it stopped with exit code 2 (a setting it refuses) and no traceback."""
    env = {
        **CLEAN_ENV,
        "PATH": "/usr/bin:/bin",
        "ENGINE_DB": str(tmp_path / "db.sqlite3"),
        "PORT": str(free_port()),
        **settings,
    }
    done = subprocess.run(
        [sys.executable, "app.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    return done.stderr


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LiveServer:
    """``python app.py`` (or gunicorn with the eventlet or gevent worker) in a
    subprocess."""

    def __init__(
        self,
        tmp_path: Path,
        *,
        gunicorn: bool = False,
        worker: str = "eventlet",
        **env: str,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / f"server-{self.port}.log"
        self.env = {
            **os.environ,
            **CLEAN_ENV,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "ENGINE_DB": str(tmp_path / "threadroom.sqlite3"),
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        self.gunicorn = gunicorn
        self.worker = worker
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        """Return the command line that serves the app."""
        if not self.gunicorn:
            return [sys.executable, "app.py"]
        bind = f"127.0.0.1:{self.port}"
        return [sys.executable, "-m", "gunicorn", "-k", self.worker, "-w", "1",
                "-b", bind, "app:create_app()"]  # fmt: skip

    def start(self, timeout: float = 30) -> LiveServer:
        """Start the server and wait until /healthz answers."""
        with open(self.log_path, "ab") as log:  # the child keeps its own copy
            self.process = subprocess.Popen(
                self.command(),
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_healthy(self.process, self.url, timeout, "server", self.log)
        return self

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL if it lingers)."""
        stop_process(self.process)

    def log(self) -> str:
        """Return what the server printed."""
        return (
            self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        )

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

"""The deployment's async stack under load: eventlet, a real model over TLS.

``python app.py`` (eventlet, monkey-patched at its entry point) runs in a
subprocess; its model is the scripted server in this process, served over HTTPS
with a self-signed certificate the app trusts through ``SSL_CERT_FILE``.  Two rooms
stream at once; room B's model falls silent for a while after its first word, and
a third room talks meanwhile.  If a model call blocked the hub (say, without
monkey-patching), room A's reply and the third room would freeze for as long as
room B's model is silent.  ``pytest -s`` shows the measured figures.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import socketio
from werkzeug.wrappers import Response

from tests.conftest import wait_for
from tests.fake_model_server import FakeModelServer
from tests.fake_model_server import Reply
from tests.live_server import LiveServer

KEY = "sk-tls-test-0123456789abcdef"
CHUNKS = 12
SILENCE_S = 2.5
# Room A's model writes steadily for about 3 s.
STEADY = Reply(tuple(f"a{n} " for n in range(CHUNKS)), delay_s=0.25)
# Room B's model says one word, thinks for SILENCE_S, then writes the rest quickly.
PAUSING = Reply(
    tuple(f"b{n} " for n in range(CHUNKS)), delay_s=0.02, stall_after_first_s=SILENCE_S
)

pytestmark = pytest.mark.skipif(
    shutil.which("openssl") is None,
    reason="needs the openssl command (apt-get install openssl) to make a certificate",
)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """Make a self-signed certificate for 127.0.0.1 (certificate, private key)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@dataclass(frozen=True)
class ByRoom:
    """Answer room B's story with ``PAUSING`` and anything else with ``STEADY``."""

    def respond(self, server: FakeModelServer, body: dict) -> Response:
        """Pick the reply by the newest user message."""
        latest = body["messages"][-1]["content"]
        reply = PAUSING if "room B" in latest else STEADY
        return reply.respond(server, body)


@pytest.fixture
def tls_model(certificate):
    """Serve the scripted model over HTTPS; every reply is slow."""
    cert, key = certificate
    with FakeModelServer(
        api_key=KEY, ssl_context=(str(cert), str(key)), default=ByRoom()
    ) as server:
        yield server


def serve_app(tmp_path: Path, model_url: str, ca_file: str) -> LiveServer:
    """Start ``python app.py`` with its model at ``model_url``."""
    return LiveServer(
        tmp_path,
        MODEL_BASE_URL=model_url,
        OPENAI_API_KEY=KEY,
        MODEL="fake-tls",
        SSL_CERT_FILE=ca_file,
        SSL_CERT_DIR="",
    )


class Browser:
    """A real Socket.IO client that timestamps every event it receives."""

    def __init__(self, url: str, name: str, room: str) -> None:
        self.events: list[tuple[float, str, object]] = []
        self.client = socketio.Client()
        self.client.on("*", self._record)
        self.client.connect(url, transports=["websocket"])
        started = time.monotonic()
        ack = self.client.call("register", {"name": name, "room": room}, timeout=10)
        self.register_s = time.monotonic() - started
        self.room = room
        assert ack["ok"], ack

    def _record(self, event: str, *args) -> None:
        """Keep the event with the time it arrived."""
        self.events.append((time.monotonic(), event, args[0] if args else None))

    def times(self, name: str) -> list[float]:
        """Return the arrival times of every ``name`` event."""
        return [at for at, event, _ in list(self.events) if event == name]

    def first(self, name: str, after: float = 0.0, timeout: float = 15.0) -> float:
        """Wait for a ``name`` event that arrived after ``after``; return its time."""
        return wait_for(
            lambda: next((t for t in self.times(name) if t > after), 0), timeout
        )

    def payloads(self, name: str) -> list:
        """Return the payloads of every ``name`` event."""
        return [data for _, event, data in list(self.events) if event == name]

    @property
    def sid(self) -> str:
        """Return the Socket.IO session id (for ``X-Socket-Id``)."""
        return self.client.get_sid()

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()


class Streams:
    """Several ``POST /stream`` requests, released at the same moment."""

    def __init__(self, url: str, senders: list[tuple[Browser, str]]) -> None:
        self.url = url
        self.gate = threading.Barrier(len(senders) + 1)
        self.frames: list[list[str]] = []
        self.threads = [
            threading.Thread(target=self._post, args=sender) for sender in senders
        ]
        for thread in self.threads:
            thread.start()
        self.gate.wait(timeout=10)  # every request starts now
        self.started = time.monotonic()

    def _post(self, browser: Browser, content: str) -> None:
        """Send one message and keep the SSE ``event:`` lines of its reply."""
        self.gate.wait(timeout=10)
        response = requests.post(
            self.url + "/stream",
            json={"content": content},
            headers={"Accept": "text/event-stream", "X-Socket-Id": browser.sid},
            stream=True,
            timeout=30,
        )
        with response:
            lines = response.iter_lines(decode_unicode=True)
            self.frames.append([line for line in lines if line.startswith("event:")])

    def join(self) -> list[list[str]]:
        """Wait for every reply to end; return each one's SSE event lines."""
        for thread in self.threads:
            thread.join(timeout=30)
        return self.frames


def probe_room(url: str, carol: Browser) -> dict[str, float]:
    """Join Carol's room as Dave and talk to her; return each latency in seconds."""
    started = time.monotonic()
    dave = Browser(url, "Dave", carol.room)
    latency = {
        "register ack": dave.register_s,
        "join heard": carol.first("join", after=started) - started,
    }
    for number in range(3):
        sent = time.monotonic()
        assert dave.client.call("message", {"content": f"ping {number}"})["ok"]
        heard = carol.first("message", after=sent)
        assert carol.payloads("message")[-1]["content"] == f"ping {number}"
        latency[f"message {number} heard"] = heard - sent
    dave.close()
    return latency


def switches(a: list[float], b: list[float]) -> int:
    """Count how often the merged timeline passes from one room to the other."""
    merged = sorted([(t, "A") for t in a] + [(t, "B") for t in b])
    return sum(1 for x, y in itertools.pairwise(merged) if x[1] != y[1])


def timeline(label: str, times: list[float], origin: float) -> str:
    """Format arrival times relative to ``origin``, in seconds."""
    return f"{label}: " + " ".join(f"{t - origin:.2f}" for t in times)


def test_two_rooms_stream_at_once_and_a_third_keeps_talking(
    tmp_path, tls_model, certificate
):
    assert tls_model.url.startswith("https://")
    with serve_app(tmp_path, tls_model.url, str(certificate[0])) as app_server:
        url = app_server.url
        alice, bob = Browser(url, "Alice", "room-a"), Browser(url, "Bob", "room-b")
        carol = Browser(url, "Carol", "room-c")
        streams = Streams(url, [(alice, "Story for room A"), (bob, "Story for room B")])
        alice.first("ai-delta")
        bob.first("ai-delta")
        latency = probe_room(url, carol)  # while both replies are being written
        probes_done = time.monotonic()
        frames = streams.join()
        alice.first("ai-end")
        bob.first("ai-end")
        a, b = alice.times("ai-delta"), bob.times("ai-delta")
        report(streams.started, a, b, latency, probes_done)

        assert len(a) == CHUNKS and len(b) == CHUNKS
        text = "".join(d["delta"] for d in alice.payloads("ai-delta"))
        assert text == "".join(STEADY.chunks)
        assert max(a[0], b[0]) < min(a[-1], b[-1])  # the replies overlap
        # They interleave: while room B's model was silent, room A's reply kept
        # coming (about ten of its deltas between B's first and second).
        assert len([t for t in a if b[0] < t < b[1]]) >= 4
        assert switches(a, b) >= 2
        # ... and the third room was served, promptly (a blocked hub: ~2.5 s).
        assert probes_done < b[1]
        assert max(latency.values()) < 1.5
        assert [lines[-1] for lines in frames] == ["event: done"] * 2
        assert [e["status"] for e in alice.payloads("ai-end")] == ["completed"]
        assert len(tls_model.requests) >= 2  # room C asked the model too
        for browser in (alice, bob, carol):
            browser.close()


def report(origin: float, a: list[float], b: list[float], latency, done) -> None:
    """Print the measured figures (shown by ``pytest -s``)."""
    print()
    print(timeline("room A deltas (s)", a, origin))
    print(timeline("room B deltas (s)", b, origin))
    print(f"A/B switches in the merged timeline: {switches(a, b)}")
    for name, seconds in latency.items():
        print(f"third room while streaming, {name}: {seconds * 1000:.0f} ms")
    print(f"third room probes finished at {done - origin:.2f} s")


def test_an_untrusted_certificate_is_a_clear_failure(tmp_path, tls_model):
    tls_model.default = Reply(("never",))
    with serve_app(tmp_path, tls_model.url, "") as app_server:
        alice = Browser(app_server.url, "Alice", "lobby")
        assert alice.client.call("message", {"content": "hello over TLS"})["ok"]
        alice.first("ai-end", timeout=30)
        assert alice.payloads("ai-end")[0]["status"] == "failed"
        host = tls_model.url.split("//")[1].split("/")[0]
        system = [
            m["content"] for m in alice.payloads("message") if m["role"] == "system"
        ]
        unreachable = f"Could not reach the model server at {host}."
        assert system == [f"The assistant could not answer: {unreachable}"]
        assert tls_model.requests == []  # the handshake failed: no request was read
        alice.close()
        assert requests.get(app_server.url + "/healthz").json()["backend"] == "openai"

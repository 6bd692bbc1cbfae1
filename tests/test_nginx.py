"""Threadroom behind a real nginx, at the root and under /chat/: the page, its
static files, /stream and Socket.IO, with the README's configuration."""

from __future__ import annotations

import queue
import re
import time
from urllib.parse import urljoin

import pytest
import requests
import socketio

from tests.live_server import LiveServer
from tests.nginx_support import NGINX
from tests.nginx_support import SKIP_REASON
from tests.nginx_support import Nginx

pytestmark = pytest.mark.skipif(NGINX is None, reason=SKIP_REASON)

PREFIXES = ["", "/chat"]


@pytest.fixture(scope="module")
def proxied(tmp_path_factory):
    """A real ``python app.py`` trusting one proxy, behind a real nginx."""
    tmp = tmp_path_factory.mktemp("nginx")
    with LiveServer(tmp, TRUSTED_PROXIES="1", DEMO_DELAY_MS="100") as app:
        with Nginx(tmp / "nginx", app.port) as nginx:
            yield nginx


@pytest.mark.parametrize("prefix", PREFIXES, ids=["root", "sub-path"])
def test_the_page_and_its_files_load_through_the_proxy(proxied, prefix):
    page_url = f"{proxied.url}{prefix}/"
    page = requests.get(page_url, timeout=10)
    assert page.status_code == 200 and "Threadroom" in page.text
    sources = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', page.text)
    assert any(s.endswith(".js") for s in sources)
    for source in sources:  # as a browser resolves them against the page
        url = urljoin(page_url, source)
        assert url.startswith(page_url), f"{source} leaves {prefix or '/'}"
        assert requests.get(url, timeout=10).status_code == 200, url
    for path in ("/healthz", "/readyz"):
        assert requests.get(f"{proxied.url}{prefix}{path}", timeout=10).ok


@pytest.mark.parametrize("prefix", PREFIXES, ids=["root", "sub-path"])
@pytest.mark.parametrize("transports", [["websocket"], ["polling", "websocket"]])
def test_a_socketio_turn_through_the_proxy(proxied, prefix, transports):
    events: queue.Queue = queue.Queue()
    client = socketio.Client()
    for name in ("message-list", "ai-end"):
        client.on(name, lambda data, name=name: events.put((name, data)))
    client.connect(
        proxied.url, socketio_path=f"{prefix}/socket.io", transports=transports
    )
    try:
        room = f"proxied{prefix.replace('/', '-')}-{len(transports)}"
        ack = client.call("register", {"user_id": room, "name": "Via", "room": room})
        assert ack["ok"], ack
        assert client.call("message", {"content": "hello through nginx"})["ok"]
        replies = []
        while True:
            name, data = events.get(timeout=20)
            if name == "ai-end":
                assert data["status"] == "completed"
                break
            replies += [m for m in data if m["role"] == "assistant"]
        assert replies and "Via" in replies[-1]["content"]
    finally:
        client.disconnect()


@pytest.mark.parametrize("prefix", PREFIXES, ids=["root", "sub-path"])
def test_stream_frames_pass_the_proxy_unbuffered(proxied, prefix):
    user = f"streamer{len(prefix)}"
    body = {"content": "stream through nginx", "user_id": user, "name": user}
    with requests.post(
        f"{proxied.url}{prefix}/stream",
        json=body,
        headers={"Accept": "text/event-stream"},
        stream=True,
        timeout=30,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        arrived = {}
        for line in response.iter_lines(decode_unicode=True):
            arrived.setdefault(line, time.monotonic())
    # A buffering proxy hands over the whole reply at once, at the end (the app's
    # X-Accel-Buffering: no and the config's proxy_buffering off each prevent it).
    assert arrived["event: done"] - arrived["event: delta"] > 0.3


@pytest.mark.parametrize("prefix", PREFIXES, ids=["root", "sub-path"])
def test_metrics_stay_behind_the_proxy(proxied, prefix):
    assert requests.get(f"{proxied.url}{prefix}/metrics", timeout=10).status_code == 404

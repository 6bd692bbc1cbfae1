"""Threadroom behind a real nginx, at the root and under /chat/: the page, its
static files, /stream and Socket.IO, with the README's configuration; and shared
mode's configuration in front of two processes."""

from __future__ import annotations

import queue
import re
import time
from urllib.parse import urljoin

import pytest
import requests
import socketio

from tests.cluster import LivePerson
from tests.conftest import wait_for
from tests.live_server import LiveServer
from tests.nginx_support import NGINX
from tests.nginx_support import SKIP_REASON
from tests.nginx_support import Nginx
from tests.nginx_support import readme_server_block

pytestmark = pytest.mark.skipif(NGINX is None, reason=SKIP_REASON)
pytest_plugins = ["cluster_fixtures"]

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


# -- shared mode: two processes behind the README's shared-mode block -----------


@pytest.fixture
def shared_proxy(make_cluster, tmp_path):
    """Two processes in shared mode behind nginx; yields (cluster, nginx)."""
    cluster = make_cluster(2, TRUSTED_PROXIES="1")
    with Nginx(tmp_path / "nginx", *cluster.ports) as nginx:
        yield cluster, nginx


def connections(cluster) -> list[int]:
    """Return each process's open Socket.IO connections (its own /metrics)."""
    counts = []
    for i in range(len(cluster)):
        text = requests.get(cluster.url(i) + "/metrics", timeout=10).text
        (line,) = [
            x for x in text.splitlines() if x.startswith("threadroom_connections ")
        ]
        counts.append(int(float(line.split()[1])))
    return counts


def one_person_per_process(cluster, url: str) -> list[LivePerson]:
    """Open tabs through the balancer until one has landed on each process (seen
    in the processes' connection counts); return them by process, the others
    closed."""
    landed: dict[int, LivePerson] = {}
    for _ in range(10):
        before = connections(cluster)
        person = LivePerson(url)
        after = connections(cluster)
        (process,) = [i for i, n in enumerate(after) if n > before[i]]
        if process in landed:
            person.close()
            wait_for(lambda counts=before: connections(cluster) == counts)
        else:
            landed[process] = person
        if len(landed) == len(cluster):
            return [landed[i] for i in range(len(cluster))]
    for person in landed.values():
        person.close()
    raise AssertionError(f"every tab landed on process {list(landed)}")


def talk_and_see_the_reply(ann: LivePerson, bob: LivePerson, room: str) -> None:
    """Ann and Bob join ``room``; Ann speaks; Bob sees it; both see the reply."""
    for person, name in ((ann, "Ann"), (bob, "Bob")):
        assert person.register(name, room)["ok"]
        person.wait("welcome")
    assert ann.say("hello across the balancer", "m-lb-1")["ok"]
    (heard,) = bob.wait("message")
    assert heard["id"] == "m-lb-1" and heard["name"] == "Ann"
    for person in (ann, bob):
        (end,) = person.wait("ai-end")
        assert end["status"] == "completed"
        replies = [
            m for data in person.payloads("message-list") for m in data
            if m["role"] == "assistant"
        ]  # fmt: skip
        assert replies and "Ann" in replies[-1]["content"]


def test_the_page_asks_for_websocket_only_in_shared_mode(shared_proxy):
    _, nginx = shared_proxy
    page = requests.get(nginx.url + "/", timeout=10).text
    assert '"websocket_only": true' in page


def test_two_people_on_different_processes_talk_through_round_robin(shared_proxy):
    cluster, nginx = shared_proxy
    ann, bob = one_person_per_process(cluster, nginx.url)
    try:
        talk_and_see_the_reply(ann, bob, "balanced")
    finally:
        ann.close()
        bob.close()


def test_long_polling_clients_get_through_with_ip_hash(make_cluster, tmp_path):
    """The README's alternative for clients that poll first (the original Vue
    client): ``ip_hash`` keeps each client's requests on one process."""
    cluster = make_cluster(2, TRUSTED_PROXIES="1")
    block = readme_server_block(shared=True).replace("# ip_hash;", "ip_hash;", 1)
    assert "\n    ip_hash;" in block
    with Nginx(tmp_path / "nginx", *cluster.ports, block=block) as nginx:
        polling = ["polling", "websocket"]
        ann, bob = (
            LivePerson(nginx.url, transports=polling),
            LivePerson(nginx.url, transports=polling),
        )
        try:
            talk_and_see_the_reply(ann, bob, "sticky")
        finally:
            ann.close()
            bob.close()

"""The page in chromium behind a real nginx (the README's configuration), at the
root and under /chat/: joining, a streamed reply, and every request staying under
the page's own path."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.browser.person import DEMO_DELAY_MS
from tests.browser.person import BrowserPerson
from tests.live_server import LiveServer
from tests.nginx_support import NGINX
from tests.nginx_support import SKIP_REASON
from tests.nginx_support import Nginx

pytestmark = pytest.mark.skipif(NGINX is None, reason=SKIP_REASON)


@pytest.fixture(scope="module")
def proxy(tmp_path_factory) -> Iterator[Nginx]:
    """A real ``python app.py`` trusting one proxy, behind a real nginx."""
    folder = tmp_path_factory.mktemp("browser-nginx")
    with LiveServer(folder, TRUSTED_PROXIES="1", DEMO_DELAY_MS=DEMO_DELAY_MS) as app:
        with Nginx(folder / "nginx", app.port) as nginx:
            yield nginx


@pytest.mark.parametrize("prefix", ["", "/chat"], ids=["root", "sub-path"])
def test_two_people_talk_through_the_proxy(
    browser, proxy, room, browser_people, prefix
):
    base = f"{proxy.url}{prefix}"
    requested: list[str] = []
    for name in ("Ann", "Ben"):  # watched from the first request on
        person = BrowserPerson(browser)
        person.page.on("request", lambda request: requested.append(request.url))
        browser_people.append(person.join(base, room, name))
    ann, ben = browser_people
    for person in (ann, ben):
        expect(person.page.locator("#presence-count")).to_have_text("2")
        person.record_stream()
    ann.send("Hello from behind the proxy")
    expect(ben.transcript).to_contain_text("Hello from behind the proxy")
    ben.page.wait_for_function("() => window.__streamTexts.length >= 2")
    for person in (ann, ben):
        person.wait_replies(1)
        expect(person.replies().last).to_contain_text("Ann")
    assert requested and all(url.startswith(base + "/") for url in requested), [
        url for url in requested if not url.startswith(base + "/")
    ]
    assert any("/stream" in url for url in requested)  # the page sent through /stream
    assert not any(p.errors for p in browser_people), [p.errors for p in browser_people]

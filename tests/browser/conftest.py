"""Fixtures of the browser tests: one chromium, one shared server, a room per test,
and the ``BrowserPerson``s a test opens (``browser_people``).

Debian's chromium is driven through Playwright (which cannot download browsers
here); without it every test in this folder is skipped with a hint.
"""

from __future__ import annotations

import itertools
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser
from playwright.sync_api import sync_playwright

from tests.browser.person import DEMO_DELAY_MS
from tests.browser.person import BrowserPerson
from tests.live_server import LiveServer

HERE = Path(__file__).resolve().parent
CHROMIUM = shutil.which("chromium")
SKIP_REASON = (
    "install Debian's chromium package (apt-get install chromium)"
    " to run the browser tests"
)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

_room_numbers = itertools.count(1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip this folder's tests, before any fixture starts, when chromium is missing."""
    if CHROMIUM is not None:
        return
    skip = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Launch one headless chromium for the whole session."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory) -> Iterator[LiveServer]:
    """Serve the app once for the tests that can share it (each uses its own room)."""
    folder = tmp_path_factory.mktemp("browser")
    with LiveServer(folder, DEMO_DELAY_MS=DEMO_DELAY_MS) as server:
        yield server


@pytest.fixture
def room(request) -> str:
    """Return a room name of this test's own: tests on a shared server stay apart."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")
    return f"r{next(_room_numbers)}-{slug}"[:32].rstrip("-_")


@pytest.fixture
def browser_people(browser) -> Iterator[list[BrowserPerson]]:
    """Collect the ``BrowserPerson``s a test opens and close them afterwards."""
    opened: list[BrowserPerson] = []
    yield opened
    for person in opened:
        person.close()

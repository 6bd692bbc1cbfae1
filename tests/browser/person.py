"""One person using Threadroom's page in chromium, driven through Playwright.

``BrowserPerson`` is one browser context with the page open (the Socket.IO
``Person`` of tests/conftest.py is another thing: a test client without a page).
The fixtures that make them are in conftest.py beside this file.
Everything waits on conditions (``expect``, ``wait_for_function``), never on sleeps.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser
from playwright.sync_api import Page
from playwright.sync_api import Route
from playwright.sync_api import expect

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "tests" / "vendor" / "axe.min.js"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
WAIT_MS = 20_000  # the longest any condition may take (a whole demo reply on 2 cores)
DEMO_DELAY_MS = "80"  # per word: a reply takes a second or two, long enough to watch

expect.set_options(timeout=WAIT_MS)


# -- one person in one browser context ---------------------------------------


class BrowserPerson:
    """One browser context (its own storage, so its own identity) with the page."""

    def __init__(self, browser: Browser, **context_options) -> None:
        options = {"viewport": {"width": 1000, "height": 720}, **context_options}
        self.context = browser.new_context(**options)
        self.page: Page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", self._console)
        self.name = ""

    def _console(self, message) -> None:
        """Keep console errors: a healthy page logs none."""
        if message.type == "error":
            self.errors.append(message.text)

    def open(self, url: str, room: str | None = None) -> BrowserPerson:
        """Load the page (in ``room``) and wait until its script has started."""
        self.page.goto(f"{url}/?room={room}" if room else url)
        expect(self.page.locator("#nickname-dialog")).to_be_visible()
        return self

    def join(self, url: str, room: str | None, name: str) -> BrowserPerson:
        """Open the page, choose ``name`` in the dialog and wait to be in the room."""
        self.open(url, room)
        self.page.get_by_role("textbox", name="Nickname").fill(name)
        self.page.get_by_role("button", name="Join the room").click()
        self.wait_joined(name)
        return self

    def wait_joined(self, name: str) -> None:
        """Wait until the dialog is gone and the presence list shows us."""
        self.name = name
        expect(self.page.locator("#nickname-dialog")).to_be_hidden()
        expect(self.page.locator("#presence-list .me")).to_contain_text(name)

    def send(self, text: str) -> None:
        """Type ``text`` in the message box and press Enter."""
        box = self.page.get_by_role("textbox", name="Message")
        box.fill(text)
        box.press("Enter")
        expect(box).to_have_value("")

    @contextmanager
    def sends_held(self) -> Iterator[None]:
        """Hold the messages this page sends on their way out until the block ends."""
        # With "Stream replies" on (the default) a message leaves as POST /stream and
        # is accepted by its answer: holding the request is a slow link, on purpose.
        expect(self.page.get_by_label("Stream replies")).to_be_checked()
        held: list[Route] = []

        def hold(route: Route) -> None:
            """Keep the request waiting: it is continued when the block ends."""
            held.append(route)

        self.page.route("**/stream", hold)
        try:
            yield
        finally:
            for route in held:
                route.continue_()
            # Continue first: unrouting lets go of any request not yet handed to us.
            self.page.unroute("**/stream")

    @property
    def transcript(self):
        """Return the conversation log."""
        return self.page.get_by_role("log", name="Conversation")

    def replies(self):
        """Return the assistant's messages."""
        return self.transcript.locator("article.msg-assistant")

    def wait_idle(self) -> None:
        """Wait until no reply is being written."""
        expect(self.page.locator("#activity")).to_be_hidden()
        expect(self.transcript.locator(".msg-streaming")).to_have_count(0)

    def wait_replies(self, count: int) -> None:
        """Wait for ``count`` finished assistant replies and an idle room."""
        expect(self.replies()).to_have_count(count)
        self.wait_idle()

    def messages(self) -> list[dict]:
        """Return what the transcript shows: each message's id, role and text."""
        return self.page.evaluate(
            """() => [...document.querySelectorAll('#transcript > [data-id]')]
               .map((n) => ({
                 id: n.dataset.id,
                 role: n.classList.contains('msg-system') ? 'system'
                     : n.classList.contains('msg-assistant') ? 'assistant' : 'user',
                 name: n.querySelector('.msg-name')?.textContent ?? null,
                 text: (n.querySelector('.msg-body') || n.firstChild).textContent,
                 note: [...n.querySelectorAll('.msg-note')].map((x) => x.textContent),
               }))"""
        )

    def record_stream(self) -> None:
        """Start keeping every text a streaming reply shows, as it grows."""
        self.page.evaluate(
            """() => {
              window.__streamTexts = [];
              const seen = (node) => {
                const body = document.querySelector(
                  '#transcript .msg-streaming .msg-body');
                const text = body ? body.textContent : '';
                const all = window.__streamTexts;
                if (text && all[all.length - 1] !== text) all.push(text);
              };
              new MutationObserver(seen).observe(document.getElementById('transcript'),
                { childList: true, subtree: true, characterData: true });
            }"""
        )

    def streamed_texts(self) -> list[str]:
        """Return the texts recorded since ``record_stream``."""
        return self.page.evaluate("() => window.__streamTexts")

    def screenshot(self, name: str) -> Path:
        """Save a PNG of the page under test-artifacts/screenshots/."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path

    def axe_violations(self, impacts=("serious", "critical")) -> list[dict]:
        """Run axe-core on the page; return the violations of these impacts."""
        if not self.page.evaluate("() => Boolean(window.axe)"):
            # Evaluated, not added as a <script>: the page's CSP refuses inline
            # scripts, and the test's own instrumentation is no exception.
            self.page.evaluate(AXE.read_text(encoding="utf-8"))
        results = self.page.evaluate("async () => await window.axe.run(document)")
        return [
            {
                "id": v["id"],
                "impact": v["impact"],
                "help": v["help"],
                "nodes": [
                    (n["target"], n["failureSummary"].splitlines()[-1].strip())
                    for n in v["nodes"]
                ],
            }
            for v in results["violations"]
            if v["impact"] in impacts
        ]

    def overflows_horizontally(self) -> bool:
        """Tell whether the page is wider than the window."""
        return self.page.evaluate(
            "() => document.scrollingElement.scrollWidth > window.innerWidth"
        )

    def close(self) -> None:
        """Close the context."""
        self.context.close()


def open_people(
    browser: Browser, people: list, url: str, room: str | None, names, **options
) -> list[BrowserPerson]:
    """Join ``names`` one after the other; each waits until everyone is present."""
    joined = []
    for name in names:
        person = BrowserPerson(browser, **options).join(url, room, name)
        people.append(person)
        joined.append(person)
    for person in joined:
        expect(person.page.locator("#presence-count")).to_have_text(str(len(joined)))
    return joined

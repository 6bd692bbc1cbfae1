"""A reply written in markdown renders as markdown in every page, sanitized.

The demo model only quotes what people said on one line, so it cannot write a code
block or a table.  Here the app runs on its Chat Completions provider against the
scripted fake model server, which streams a markdown reply in pieces: the page's own
rendering of a real streamed reply is what is checked.
"""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.person import BrowserPerson
from tests.browser.person import open_people
from tests.fake_model_server import FakeModelServer
from tests.fake_model_server import Reply
from tests.live_server import LiveServer

MARKDOWN_REPLY = (
    "Here is **the plan**, with `inline code`:\n\n"
    "```python\n"
    "def greet(name):\n"
    '    return f"Hello, {name}!"  # a line long enough to need scrolling sideways\n'
    "```\n\n"
    "| who | what |\n"
    "|-----|------|\n"
    "| Alice | tests |\n"
    "| Bob | <b>docs</b> |\n\n"
    "1. first\n2. second\n\n"
    "A [local link](/healthz) and a remote image ![tracker](http://127.0.0.2/t.png)."
)


def chunks(text: str, size: int = 12) -> tuple[str, ...]:
    """Cut ``text`` into pieces, as a model streams it."""
    return tuple(text[i : i + size] for i in range(0, len(text), size))


def test_code_blocks_tables_and_lists_render_and_stay_sanitized(
    browser, browser_people, tmp_path
):
    reply = Reply(chunks(MARKDOWN_REPLY), delay_s=0.01)
    with (
        FakeModelServer(default=reply) as model,
        LiveServer(
            tmp_path, OPENAI_API_KEY="sk-test", MODEL_BASE_URL=model.url, MODEL="fake-1"
        ) as server,
    ):
        alice, bob = open_people(
            browser, browser_people, server.url, None, ["Alice", "Bob"]
        )
        alice.send("Show us the plan in markdown")
        for person in (alice, bob):
            person.wait_replies(1)
            assert_markdown(person)
        alice.screenshot("markdown")


def assert_markdown(person: BrowserPerson) -> None:
    """Check what the reply's markdown became on this page."""
    body = person.replies().last.locator(".msg-body")
    expect(body.locator("strong")).to_have_text("the plan")
    expect(body.locator("p code")).to_have_text("inline code")
    expect(body.locator("pre code")).to_contain_text('return f"Hello, {name}!"')
    expect(body.locator("table th")).to_have_text(["who", "what"])
    expect(body.locator("table tbody tr")).to_have_count(2)
    expect(body.locator("table tbody tr").last).to_contain_text("<b>docs</b>")
    expect(body.locator("ol li")).to_have_text(["first", "second"])
    link = body.get_by_role("link", name="local link")
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    assert body.locator("img").count() == 0  # no remote image: no tracking
    expect(body).to_contain_text("a remote image [image: tracker].")
    assert body.locator("b").count() == 0
    assert not person.overflows_horizontally()

"""Pages that lose the server come back by themselves, complete, without duplicates."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.person import DEMO_DELAY_MS
from tests.browser.person import BrowserPerson
from tests.browser.person import open_people
from tests.live_server import LiveServer


def assert_no_duplicates(person: BrowserPerson) -> None:
    """Each message id shows once."""
    ids = [m["id"] for m in person.messages()]
    assert len(ids) == len(set(ids)), ids


def conversation(person: BrowserPerson) -> list[tuple]:
    """Return the user and assistant messages as (role, name, text)."""
    return [
        (m["role"], m["name"], m["text"])
        for m in person.messages()
        if m["role"] != "system"
    ]


def test_a_server_restart_reconnects_both_pages_under_the_same_names(
    browser, browser_people, tmp_path
):
    with LiveServer(tmp_path, DEMO_DELAY_MS=DEMO_DELAY_MS) as server:
        alice, bob = open_people(
            browser, browser_people, server.url, None, ["Ana", "Bert"]
        )
        alice.send("Before the restart")
        bob.wait_replies(1)
        before = conversation(alice)

        server.stop()
        for person in (alice, bob):
            expect(person.page.locator("#connection-banner")).to_have_text(
                "Reconnecting…"
            )
        restart_screenshot = alice.screenshot("reconnecting")
        server.start()  # same port, same ENGINE_DB: the room's thread continues
        assert server.url == alice.page.url.rstrip("/")
        for person in (alice, bob):
            expect(person.page.locator("#connection-banner")).to_be_hidden()
            expect(person.page.locator("#presence-list li")).to_have_count(2)
        expect(alice.page.locator("#presence-list .me")).to_contain_text("Ana")
        expect(bob.page.locator("#presence-list .me")).to_contain_text("Bert")
        for person in (alice, bob):
            assert conversation(person) == before
            assert_no_duplicates(person)

        bob.send("After the restart")
        for person in (alice, bob):
            person.wait_replies(2)
            expect(person.replies().last).to_contain_text("Hi Bert!")
            assert_no_duplicates(person)
        assert conversation(alice) == conversation(bob)
        assert restart_screenshot.exists()


def test_a_page_that_was_offline_gets_the_reply_that_finished_meanwhile(
    browser, shared_server, room, browser_people
):
    alice, bob = open_people(
        browser, browser_people, shared_server.url, room, ["Aiko", "Bram"]
    )
    bob.context.set_offline(True)
    expect(bob.page.locator("#connection-banner")).to_be_visible()
    alice.send("Bram is away while I say this")
    alice.wait_replies(1)
    bob.context.set_offline(False)
    expect(bob.page.locator("#connection-banner")).to_be_hidden()
    bob.wait_replies(1)
    expect(bob.transcript).to_contain_text("Bram is away while I say this")
    assert conversation(bob) == conversation(alice)
    assert_no_duplicates(bob)
    expect(bob.page.locator("#presence-list .me")).to_contain_text("Bram")

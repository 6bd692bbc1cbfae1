"""Several people in one room, in a real browser: joins, messages, streamed replies,
tools, Stop, hostile text, history for late joiners and reloads."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.person import BrowserPerson
from tests.browser.person import open_people


def test_three_people_see_each_other_and_one_streamed_reply(
    browser, shared_server, room, browser_people
):
    alice, bob, carol = open_people(
        browser, browser_people, shared_server.url, room, ["Alice", "Bob", "Carol"]
    )
    expect(alice.transcript).to_contain_text("Bob joined")
    expect(alice.transcript).to_contain_text("Carol joined")
    expect(bob.transcript).to_contain_text("Carol joined")
    for person in (alice, bob, carol):
        expect(person.page.locator("#presence-list li")).to_have_text(
            [re.compile(r"^Alice"), re.compile(r"^Bob"), re.compile(r"^Carol")]
        )
        person.record_stream()
    alice.screenshot("joined")

    alice.send("Good morning, everyone")
    expect(bob.transcript).to_contain_text("Good morning, everyone")
    expect(carol.transcript).to_contain_text("Good morning, everyone")
    for person in (alice, bob, carol):
        expect(person.page.locator("#busy-text")).to_contain_text("answering Alice")
    expect(carol.transcript.locator(".msg-streaming")).to_have_count(1)
    # The log announces the finished reply, not each token: the growing one is busy.
    expect(carol.transcript.locator(".msg-streaming")).to_have_attribute(
        "aria-busy", "true"
    )
    carol.page.wait_for_function("() => window.__streamTexts.length >= 3")
    carol.screenshot("streaming")
    for person in (alice, bob, carol):
        person.wait_replies(1)

    finals = [
        p.replies().last.locator(".msg-body").inner_text() for p in browser_people
    ]
    assert finals[0].startswith("Hi Alice!")
    assert "Good morning, everyone" in finals[0]
    assert finals == [finals[0]] * 3
    for person in (alice, bob, carol):
        growing = [t for t in person.streamed_texts() if t.strip() != finals[0]]
        assert len(growing) >= 2, (
            growing
        )  # seen while being written, not only at the end
        assert all(finals[0].startswith(t.rstrip("▍").strip()) for t in growing)
    expect(alice.transcript.locator("[aria-busy]")).to_have_count(0)
    expect(alice.transcript).to_have_attribute("aria-live", "polite")
    own = alice.transcript.locator("article.msg-own")
    expect(own).to_have_count(1)
    expect(own).to_contain_text("(you)")
    expect(bob.transcript.locator("article.msg-own")).to_have_count(0)
    assert not any(p.errors for p in browser_people), [p.errors for p in browser_people]


def test_a_tool_call_shows_while_it_runs_and_its_result_follows(
    browser, shared_server, room, browser_people
):
    alice, bob = open_people(
        browser, browser_people, shared_server.url, room, ["Ann", "Ben"]
    )
    alice.send("What time is it in Tokyo?")
    for person in (alice, bob):
        expect(person.page.locator("#tool-list")).to_contain_text("Checking the time")
    bob.screenshot("tool-call")
    for person in (alice, bob):
        person.wait_replies(1)
        expect(person.replies().last).to_contain_text("The current time in Asia/Tokyo")

    bob.send("what is 2+3*4")
    expect(alice.page.locator("#tool-list")).to_be_visible()
    for person in (alice, bob):
        person.wait_replies(2)
        expect(person.replies().last).to_contain_text("2+3*4 = 14")


def test_stop_mid_reply_names_who_stopped_it_and_the_next_reply_is_normal(
    browser, shared_server, room, browser_people
):
    alice, bob, carol = open_people(
        browser, browser_people, shared_server.url, room, ["Ava", "Bo", "Cy"]
    )
    alice.send("Tell us a long story about the sea, the wind and the old lighthouse")
    expect(bob.transcript.locator(".msg-streaming .msg-body")).not_to_be_empty()
    bob.page.get_by_role("button", name="Stop").click()
    for person in (alice, bob, carol):
        person.wait_replies(1)
        reply = person.replies().last
        expect(reply).to_contain_text("Stopped by Bo")
        expect(person.transcript.locator(".msg-system").last).to_contain_text(
            "Bo stopped the reply."
        )
    stopped = alice.replies().last.locator(".msg-body").inner_text()
    assert "old lighthouse" not in stopped  # cut short
    expect(alice.page.locator("#composer-error")).to_be_empty()
    alice.screenshot("stopped")

    carol.send("Are you still there?")
    for person in (alice, bob, carol):
        person.wait_replies(2)
        expect(person.replies().last).to_contain_text("Hi Cy!")
        expect(person.replies().last.locator(".msg-note")).to_have_count(0)
        expect(person.page.locator("#composer-error")).to_be_empty()


HOSTILE_NAME = "<img src=x onerror=__pwned=1>"
HOSTILE_TEXT = (
    '<script>window.__pwned = 2</script><img src=x onerror="window.__pwned=3"> '
    "[click](javascript:window.__pwned=4)"
)


def test_html_in_names_and_messages_is_shown_as_text_and_runs_nothing(
    browser, shared_server, room, browser_people
):
    alice, mallory = open_people(
        browser, browser_people, shared_server.url, room, ["Alice", HOSTILE_NAME]
    )
    mallory.send(HOSTILE_TEXT)
    for person in (mallory, alice):
        person.wait_replies(1)
        user = person.transcript.locator("article.msg-user").last
        expect(user.locator(".msg-name")).to_have_text(HOSTILE_NAME)
        expect(user.locator(".msg-body")).to_have_text(HOSTILE_TEXT)
        expect(person.replies().last).to_contain_text(f"Hi {HOSTILE_NAME}!")
        expect(person.replies().last).to_contain_text(
            "“<script>window.__pwned = 2</script>"
        )
    expect(alice.page.locator("#presence-list")).to_contain_text(HOSTILE_NAME)
    expect(alice.transcript).to_contain_text(f"{HOSTILE_NAME} joined")
    link = alice.replies().last.get_by_role("link", name="click")
    if (
        link.count()
    ):  # marked drops javascript: links; if one ever shows, it must be inert
        link.click()
    for person in (mallory, alice):
        assert person.page.evaluate("() => window.__pwned") is None
        assert (
            person.page.locator("#transcript script, #transcript img[src='x']").count()
            == 0
        )
        assert (
            person.page.locator("#transcript [onerror], a[href^='javascript']").count()
            == 0
        )


def test_a_late_joiner_and_a_reloaded_page_see_the_whole_conversation(
    browser, shared_server, room, browser_people
):
    alice, bob = open_people(
        browser, browser_people, shared_server.url, room, ["Al", "Bea"]
    )
    alice.send("First message from Al")
    alice.wait_replies(1)
    bob.send("Second message from Bea")
    alice.wait_replies(2)

    carol = BrowserPerson(browser).join(shared_server.url, room, "Cat")
    browser_people.append(carol)
    expect(carol.replies()).to_have_count(2)
    assert _conversation(carol) == _conversation(alice)

    alice.record_stream()
    carol.send("A message that Bea reloads in the middle of the reply to")
    expect(bob.transcript.locator(".msg-streaming .msg-body")).not_to_be_empty()
    bob.page.reload()
    bob.wait_joined("Bea")  # the browser remembers the nickname: no dialog
    expect(bob.transcript.locator(".msg-streaming")).to_have_count(1)  # caught up
    for person in (alice, bob, carol):
        person.wait_replies(3)
    assert _conversation(bob) == _conversation(alice) == _conversation(carol)
    ids = [m["id"] for m in bob.messages()]
    assert len(ids) == len(set(ids))


def _conversation(person: BrowserPerson) -> list[tuple]:
    """Return the messages (not join lines) as (role, name, text, notes)."""
    return [
        (m["role"], m["name"], m["text"], tuple(m["note"]))
        for m in person.messages()
        if m["role"] != "system"
    ]


def test_a_message_sent_during_a_reply_waits_then_gets_its_own_turn(
    browser, shared_server, room, browser_people
):
    alice, bob = open_people(
        browser, browser_people, shared_server.url, room, ["Amy", "Ben"]
    )
    alice.send("Please tell me something long about the mountains and the rivers")
    expect(bob.transcript.locator(".msg-streaming .msg-body")).not_to_be_empty()
    bob.send("And me too, after that")
    for person in (alice, bob):
        waiting = person.transcript.locator("article.msg-waiting")
        expect(waiting).to_contain_text("And me too, after that")
        expect(waiting).to_contain_text("waiting for Threadroom demo")
    bob.screenshot("queued")
    for person in (alice, bob):
        expect(person.page.locator("#busy-text")).to_contain_text("answering Ben")
        expect(person.transcript.locator("article.msg-waiting")).to_have_count(0)
        person.wait_replies(2)
        expect(person.replies().last).to_contain_text("Hi Ben!")


def test_a_failed_reply_is_told_in_a_plain_sentence(
    browser, shared_server, room, browser_people
):
    (alice,) = open_people(browser, browser_people, shared_server.url, room, ["Ada"])
    alice.send("please fail")
    alice.wait_idle()
    line = alice.transcript.locator(".msg-system").last
    expect(line).to_contain_text("could not answer")
    text = line.inner_text()
    assert not re.search(r"[{}\[\]<>]|Traceback|Error:|HTTP \d", text), text
    expect(alice.page.locator("#composer-error")).to_be_empty()  # said once, in the log
    alice.screenshot("failed")
    alice.send("Hello again")
    alice.wait_replies(1)
    expect(alice.replies().last).to_contain_text("Hi Ada!")

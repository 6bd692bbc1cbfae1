"""The page for everyone: keyboard only, axe-core, a 360 px phone, dark, less motion."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Locator
from playwright.sync_api import expect

from tests.browser.person import BrowserPerson
from tests.browser.person import open_people
from tests.live_server import LiveServer

LONG_WORD = "Supercalifragilisticexpialidocious" * 4
SLOW_DEMO_DELAY_MS = "2500"  # per word: a reply stays half-written for many seconds


@pytest.fixture(scope="module", name="slow_server")
def slow_server_fixture(tmp_path_factory) -> Iterator[LiveServer]:
    """Serve the app with a demo model slow enough to hold a turn open on purpose."""
    folder = tmp_path_factory.mktemp("slow")
    with LiveServer(folder, DEMO_DELAY_MS=SLOW_DEMO_DELAY_MS) as server:
        yield server


def focused_id(person: BrowserPerson) -> str:
    """Return the id of the element that has the focus."""
    return person.page.evaluate("() => document.activeElement?.id ?? ''")


def assert_axe_passes_while_shown(person: BrowserPerson, *shown: Locator) -> None:
    """Run axe while ``shown`` are on screen, and check they still were at the end."""
    for locator in shown:
        expect(locator).to_be_visible()
    problems = person.axe_violations()
    assert problems == [], "\n".join(map(str, problems))
    # A state that ended while axe ran was not checked: say so rather than pass.
    gone = [locator for locator in shown if not locator.is_visible()]
    assert not gone, f"gone before axe finished: {gone}"


def test_keyboard_only_join_send_newline_and_stop(
    browser, shared_server, room, browser_people
):
    (other,) = open_people(
        browser, browser_people, shared_server.url, room, ["Watcher"]
    )
    person = BrowserPerson(browser).open(shared_server.url, room)
    browser_people.append(person)
    keys = person.page.keyboard
    assert focused_id(person) == "nickname-input"  # the dialog takes the focus
    keys.type("Keys")
    keys.press("Enter")
    person.wait_joined("Keys")
    assert focused_id(person) == "message-input"  # then the message box

    keys.type("first line")
    keys.press("Shift+Enter")
    keys.type("second line, a long one to leave time for a Stop")
    expect(person.page.locator("#message-input")).to_have_value(
        "first line\nsecond line, a long one to leave time for a Stop"
    )
    keys.press("Enter")
    mine = person.transcript.locator("article.msg-own .msg-body")
    expect(mine).to_have_text(
        "first line\nsecond line, a long one to leave time for a Stop"
    )
    assert mine.evaluate("(n) => n.getClientRects().length && n.offsetHeight") > 40
    expect(person.transcript.locator(".msg-streaming .msg-body")).not_to_be_empty()

    keys.press("Shift+Tab")  # from the message box back to Stop
    assert focused_id(person) == "stop-button"
    keys.press("Enter")
    person.wait_replies(1)
    expect(other.replies().last).to_contain_text("Stopped by Keys")
    keys.press("Tab")
    assert focused_id(person) in {"message-input", "stop-button"}


def test_every_control_is_reachable_by_tab_and_labelled(
    browser, shared_server, room, browser_people
):
    (person,) = open_people(browser, browser_people, shared_server.url, room, ["Tabby"])
    reached = []
    for _ in range(10):
        person.page.keyboard.press("Tab")
        reached.append(
            person.page.evaluate(
                """() => { const e = document.activeElement;
                   return e.id || e.className || e.tagName; }"""
            )
        )
    expected = {"skip-link", "transcript", "message-input", "stream-toggle"}
    assert expected | {"send-button"} <= set(reached), reached
    for name in ("Message", "Stream replies"):
        expect(person.page.get_by_label(name, exact=True)).to_be_visible()
    expect(person.page.get_by_role("button", name="Send")).to_be_visible()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_serious_or_critical_problem(
    browser, shared_server, room, browser_people, scheme
):
    person = BrowserPerson(browser, color_scheme=scheme).open(shared_server.url, room)
    browser_people.append(person)
    assert person.axe_violations() == []  # with the nickname dialog open
    person.page.get_by_role("textbox", name="Nickname").fill("Axel")
    person.page.keyboard.press("Enter")
    person.wait_joined("Axel")
    mine = person.transcript.locator("article.msg-own")
    with person.sends_held():
        person.send("Show me **bold** text, `code` and a [link](/healthz) please")
        sending = mine.last.get_by_text("Sending…")
        assert_axe_passes_while_shown(person, sending)  # held: not yet accepted
        person.screenshot(f"sending-{scheme}")
    expect(sending).to_have_count(0)
    assert_axe_passes_while_shown(person, mine.last.locator("time"))  # accepted
    person.send("what is 6*7")
    expect(person.page.locator("#activity")).to_be_visible()
    problems = person.axe_violations()
    assert problems == [], "\n".join(map(str, problems))  # while answering
    person.wait_replies(2)
    assert person.axe_violations() == []
    if scheme == "dark":
        person.screenshot("dark")


def test_a_360px_phone_shows_everything_without_sideways_scrolling(
    browser, shared_server, room, browser_people
):
    phone = {"viewport": {"width": 360, "height": 740}, "is_mobile": True,
             "has_touch": True, "device_scale_factor": 2}  # fmt: skip
    person = BrowserPerson(browser, **phone).open(shared_server.url, room)
    browser_people.append(person)
    assert not person.overflows_horizontally()
    person.screenshot("phone-dialog")
    person.page.get_by_role("textbox", name="Nickname").fill("A" * 32)
    person.page.keyboard.press("Enter")
    person.wait_joined("A" * 32)
    person.send(f"{LONG_WORD} and a cat picture please")
    person.wait_replies(1)
    person.send(f"`{LONG_WORD}` what is 12345678*87654321")
    expect(person.page.locator("#activity")).to_be_visible()
    assert not person.overflows_horizontally()
    person.wait_replies(2)
    image = person.replies().first.locator("img")
    expect(image).to_be_visible()
    assert image.evaluate("(img) => img.complete && img.naturalWidth > 0")
    assert not person.overflows_horizontally()
    for selector in ("#send-button", "#message-input", "#presence-count"):
        box = person.page.locator(selector).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 360, selector
    person.screenshot("phone")


def test_reduced_motion_stops_the_spinner_and_the_cursor(
    browser, shared_server, room, browser_people
):
    person = BrowserPerson(browser, reduced_motion="reduce")
    browser_people.append(person)
    person.join(shared_server.url, room, "Still")
    person.send("A few words to make a reply for the spinner")
    spinner = person.page.locator(".spinner")
    expect(spinner).to_be_visible()
    assert spinner.evaluate("(n) => getComputedStyle(n).animationName") == "none"
    person.wait_replies(1)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_problem_while_a_slow_reply_is_held_open(
    browser, slow_server, room, browser_people, scheme
):
    (person,) = open_people(
        browser, browser_people, slow_server.url, room, ["Axel"], color_scheme=scheme
    )
    page = person.page
    person.send("What time is it in Tokyo?")
    busy = page.locator("#busy-text")
    expect(busy).to_have_text("Threadroom demo (offline) is answering Axel…")
    stop = page.get_by_role("button", name="Stop")
    tool = page.get_by_role("list", name="Tools in use").get_by_role("listitem")
    expect(tool).to_have_text("Checking the time… done")
    writing = person.transcript.locator(".msg-streaming .msg-body")
    expect(writing).to_contain_text("The")
    person.send("Thanks!")  # queued behind the reply being written
    waiting = person.transcript.locator("article.msg-own").last.get_by_text(
        "waiting for Threadroom demo (offline)"
    )
    assert_axe_passes_while_shown(person, busy, stop, tool, writing, waiting)

    stop.click()  # ends the first reply; the queued message starts the next turn
    expect(person.replies().first).to_contain_text("Stopped by Axel")
    expect(waiting).to_have_count(0)
    expect(person.transcript.get_by_text("Axel stopped the reply.")).to_be_visible()
    expect(writing).to_contain_text("Hi")
    assert_axe_passes_while_shown(person, busy, stop, writing)
    stop.click()
    person.wait_replies(2)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_problem_while_the_connection_is_lost(
    browser, shared_server, room, browser_people, scheme
):
    (person,) = open_people(
        browser, browser_people, shared_server.url, room, ["Axel"], color_scheme=scheme
    )
    person.context.set_offline(True)
    banner = person.page.locator("#connection-banner")
    expect(banner).to_have_text("Reconnecting…")
    box = person.page.get_by_role("textbox", name="Message")
    box.fill("Is anyone there?")
    box.press("Enter")
    notice = person.page.get_by_role("alert").filter(has_text="Not connected")
    assert_axe_passes_while_shown(person, banner, notice)
    person.context.set_offline(False)
    expect(banner).to_be_hidden()

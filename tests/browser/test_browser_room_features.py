"""Issue 12 in the page, with several people: the room bar, the owner's settings,
removal and passcode, @mentions, the message tools, typing, unread and export."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.person import BrowserPerson
from tests.browser.person import open_people
from tests.browser.test_browser_access import assert_axe_passes_while_shown
from tests.fake_model_server import FakeModelServer
from tests.fake_model_server import Reply
from tests.live_server import LiveServer

CLIPBOARD = {"permissions": ["clipboard-read", "clipboard-write"]}
CODE_REPLY = (
    "Try this:\n\n```python\ndef greet(name):\n"
    '    return f"Hello, {name}!"  # friendly\n```\n'
)


def clipboard(person: BrowserPerson) -> str:
    """Return what the person's clipboard holds."""
    return person.page.evaluate("() => navigator.clipboard.readText()")


def change_settings(owner: BrowserPerson, **fields) -> None:
    """Change ``fields`` in the owner's settings dialog and save them."""
    page = owner.page
    page.get_by_role("button", name="Room settings").click()
    dialog = page.get_by_role("dialog", name="Room settings")
    expect(dialog).to_be_visible()
    if "answer_mode" in fields:
        dialog.locator(
            f"input[name=answer_mode][value={fields['answer_mode']}]"
        ).check()
    if "stop_policy" in fields:
        dialog.locator(
            f"input[name=stop_policy][value={fields['stop_policy']}]"
        ).check()
    if "assistant_name" in fields:
        dialog.get_by_label("Assistant's name in this room").fill(
            fields["assistant_name"]
        )
    if "instructions" in fields:
        dialog.get_by_label("Instructions for the assistant").fill(
            fields["instructions"]
        )
    if "passcode" in fields:
        dialog.get_by_label("New passcode").fill(fields["passcode"])
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()


def test_the_room_bar_names_the_room_shares_it_and_remembers_it(
    browser, shared_server, room, browser_people
):
    (alice,) = open_people(
        browser, browser_people, shared_server.url, room, ["Alice"], **CLIPBOARD
    )
    page = alice.page
    expect(page.locator("#room-name")).to_have_text(f"#{room}")
    expect(page.locator("#answer-mode")).to_have_text(
        re.compile("answers every message$")
    )
    page.get_by_role("button", name="Copy invite link").click()
    expect(page.locator("#room-status")).to_have_text("Invite link copied.")
    assert clipboard(alice) == f"{shared_server.url}/?room={room}"

    page.locator("#rooms-menu summary").click()
    expect(page.locator("#recent-rooms a")).to_have_text([f"#{room}"])
    box = page.get_by_role("textbox", name="New room")
    box.fill("Not OK!")
    box.press("Enter")
    expect(page.locator("#new-room-error")).to_contain_text("lowercase letters")
    box.fill("")
    box.press("Enter")  # empty: a fresh random name
    page.wait_for_url(re.compile(r"\?room=[a-z]+-[a-z]+-\d\d$"))
    alice.wait_joined("Alice")  # the same identity, remembered by the browser
    fresh = page.url.rsplit("=", 1)[1]
    expect(page.locator("#room-name")).to_have_text(f"#{fresh}")
    expect(page.get_by_role("button", name="Room settings")).to_be_visible()  # theirs
    page.locator("#rooms-menu summary").click()
    expect(page.locator("#recent-rooms a")).to_have_text([f"#{fresh}", f"#{room}"])
    assert alice.errors == []


def test_an_invalid_room_name_is_explained_not_replaced_by_the_lobby(
    browser, shared_server, browser_people
):
    person = BrowserPerson(browser)
    browser_people.append(person)
    person.page.goto(f"{shared_server.url}/?room=Other%20Room!")
    problem = person.page.get_by_role("region", name="That room name cannot be used")
    expect(problem).to_contain_text('"Other Room!" is not a room name.')
    expect(problem).to_contain_text("1-32 lowercase letters, digits, - or _")
    expect(problem.get_by_role("link", name="Go to #other-room")).to_have_attribute(
        "href", re.compile(r"\?room=other-room$")
    )
    expect(person.page.locator("#nickname-dialog")).to_be_hidden()
    expect(person.page.locator("#transcript")).to_be_hidden()
    person.screenshot("invalid-room")
    problem.get_by_role("link", name="Go to the lobby").click()
    expect(person.page.locator("#nickname-dialog")).to_be_visible()
    assert person.errors == []


def test_the_owner_sets_when_the_assistant_answers_and_a_mention_autocompletes(
    browser, shared_server, room, browser_people
):
    alice, bob = open_people(
        browser, browser_people, shared_server.url, room, ["Alice", "Bob"]
    )
    expect(bob.page.get_by_role("button", name="Room settings")).to_be_hidden()
    expect(bob.page.locator("#presence-list")).to_contain_text("Alice (owner)")
    change_settings(
        alice,
        answer_mode="addressed",
        assistant_name="Ada",
        instructions="Answer in one short sentence.",
    )
    for person in (alice, bob):
        expect(person.page.locator("#answer-mode")).to_have_text(
            re.compile(r"^Ada answers when addressed \(@Ada")
        )
        expect(person.page.locator("#assistant-name")).to_have_text("Ada")
        expect(person.transcript).to_contain_text(
            "Alice changed the room's answer mode, assistant's name, instructions."
        )
    instructions = bob.page.locator("#room-instructions")
    instructions.locator("summary").click()
    expect(instructions).to_contain_text("Answer in one short sentence.")

    bob.send("Morning all, coffee first")  # not addressed: no reply
    box = bob.page.get_by_role("textbox", name="Message")
    box.press_sequentially("So @a")
    options = bob.page.get_by_role("listbox", name="People to mention").get_by_role(
        "option"
    )
    expect(options).to_have_text(["@Ada", "@Alice"])
    expect(options.first).to_have_attribute("aria-selected", "true")
    box.press("ArrowDown")
    expect(options.last).to_have_attribute("aria-selected", "true")
    box.press("ArrowUp")
    box.press("Tab")
    expect(box).to_have_value("So @Ada ")
    expect(options).to_have_count(0)
    box.press_sequentially("what is the plan")
    box.press("Enter")
    for person in (alice, bob):
        person.wait_replies(
            1
        )  # one turn: the addressed message, the first one read too
    expect(alice.replies()).to_contain_text("Hi Bob")

    box.press_sequentially("@z")  # nobody: no list
    expect(options).to_have_count(0)
    box.fill("@")
    box.press("End")
    expect(options).to_have_count(2)
    box.press("Escape")
    expect(options).to_have_count(0)
    assert alice.errors == [] and bob.errors == []


def test_the_owner_removes_someone_who_is_told_and_kept_out(
    browser, shared_server, room, browser_people
):
    alice, bob = open_people(
        browser, browser_people, shared_server.url, room, ["Alice", "Bob"]
    )
    expect(bob.page.locator("#presence-list button")).to_have_count(0)
    alice.page.once("dialog", lambda dialog: dialog.accept())
    alice.page.get_by_role("button", name="Remove Bob").click()
    notice = bob.page.get_by_role("alert").filter(has_text="You were removed")
    expect(notice).to_contain_text(re.compile(r"Alice removed you from #\S+\. You can"))
    expect(bob.page.get_by_role("textbox", name="Message")).to_be_hidden()
    expect(bob.transcript).to_contain_text("Alice removed Bob from the room.")
    expect(bob.transcript).not_to_contain_text("Bob left")
    expect(alice.page.locator("#presence-count")).to_have_text("1")
    bob.screenshot("removed")
    expect(alice.transcript).to_contain_text("Alice removed Bob from the room.")
    bob.page.reload()  # coming back at once is refused, with the reason
    expect(bob.page.locator("#nickname-error")).to_contain_text(
        "The room's owner removed you from this room"
    )
    assert alice.errors == []


def test_a_refused_stop_says_who_may_stop(browser, shared_server, room, browser_people):
    alice, bob, carol = open_people(
        browser, browser_people, shared_server.url, room, ["Alice", "Bob", "Carol"]
    )
    change_settings(alice, stop_policy="owner_and_asker")
    bob.send("Please repeat this long sentence " + "word " * 40)
    stop = carol.page.get_by_role("button", name="Stop")
    stop.click()
    expect(carol.page.locator("#composer-error")).to_have_text(
        "In this room only its owner and the people being answered can stop a reply."
    )
    expect(stop).to_be_enabled()  # refused: it can be tried again
    bob.page.get_by_role("button", name="Stop").click()  # the person answered may
    expect(carol.replies().last).to_contain_text("Stopped by Bob")


def test_a_locked_room_asks_newcomers_for_its_passcode(
    browser, shared_server, room, browser_people
):
    (alice,) = open_people(browser, browser_people, shared_server.url, room, ["Alice"])
    change_settings(alice, passcode="open-sesame")
    expect(alice.page.locator("#room-lock")).to_be_visible()
    carol = BrowserPerson(browser).open(shared_server.url, room)
    browser_people.append(carol)
    page = carol.page
    page.get_by_role("textbox", name="Nickname").fill("Carol")
    page.get_by_role("button", name="Join the room").click()
    expect(page.locator("#nickname-error")).to_have_text(
        "This room is locked. Ask its owner for the passcode."
    )
    passcode = page.get_by_label("Room passcode")
    expect(passcode).to_be_focused()
    passcode.fill("wrong-one")
    passcode.press("Enter")
    expect(page.locator("#nickname-error")).to_contain_text(
        "That passcode is not right."
    )
    passcode.fill("open-sesame")
    passcode.press("Enter")
    carol.wait_joined("Carol")
    expect(alice.page.locator("#presence-count")).to_have_text("2")


def test_code_is_highlighted_and_copy_buttons_fill_the_clipboard(
    browser, browser_people, tmp_path
):
    reply = Reply((CODE_REPLY,), delay_s=0.01)
    with (
        FakeModelServer(default=reply) as model,
        LiveServer(
            tmp_path, OPENAI_API_KEY="sk-test", MODEL_BASE_URL=model.url, MODEL="fake-1"
        ) as server,
    ):
        (alice,) = open_people(
            browser, browser_people, server.url, "code", ["Alice"], **CLIPBOARD
        )
        alice.send("Show me a greeting function")
        alice.wait_replies(1)
        reply_node = alice.replies().last
        code = reply_node.locator("pre code")
        expect(code).to_have_class(re.compile(r"\bhljs\b"))
        expect(code.locator(".hljs-keyword").first).to_have_text("def")
        expect(code.locator(".hljs-string").first).to_contain_text("Hello")
        expect(reply_node.locator(".code-language")).to_have_text("python")
        reply_node.get_by_role("button", name="Copy code").click()
        expect(reply_node.get_by_role("button", name="Copied")).to_be_visible()
        assert clipboard(alice) == (
            'def greet(name):\n    return f"Hello, {name}!"  # friendly\n'
        )
        reply_node.get_by_role("button", name="Copy", exact=True).click()
        expect(reply_node.locator(".copy-button")).to_have_text("Copied")
        assert clipboard(alice) == CODE_REPLY  # the markdown, as the model wrote it
        alice.screenshot("code-highlighted")
        assert alice.errors == []


def test_regenerate_marks_the_old_reply_replaced_for_everyone(
    browser, shared_server, room, browser_people
):
    alice, bob = open_people(
        browser, browser_people, shared_server.url, room, ["Alice", "Bob"]
    )
    alice.send("Tell us something")
    bob.wait_replies(1)
    regenerate = bob.page.get_by_role("button", name="Regenerate")
    expect(regenerate).to_have_count(1)
    regenerate.click()
    for person in (alice, bob):
        person.wait_replies(2)
        first, second = person.replies().first, person.replies().last
        expect(first).to_have_class(re.compile(r"\bmsg-replaced\b"))
        expect(first.locator(".msg-note")).to_have_text("Replaced by a newer reply.")
        expect(second).not_to_have_class(re.compile(r"\bmsg-replaced\b"))
        # Only the newest reply can be written again.
        expect(person.page.get_by_role("button", name="Regenerate")).to_have_count(1)
        expect(second.get_by_role("button", name="Regenerate")).to_be_visible()


def test_reply_quotes_its_message_and_scrolled_up_readers_get_a_pill_and_a_count(
    browser, shared_server, room, browser_people
):
    alice, bob = open_people(
        browser,
        browser_people,
        shared_server.url,
        room,
        ["Alice", "Bob"],
        viewport={"width": 900, "height": 480},
    )
    change_settings(alice, answer_mode="addressed")  # people only: no replies
    for n in range(6):
        alice.send(f"Point number {n} on the agenda")
    expect(bob.transcript.locator("article.msg-user")).to_have_count(6)

    bob.transcript.locator("article.msg-user").first.get_by_role(
        "button", name="Reply"
    ).click()
    expect(bob.page.locator("#reply-preview")).to_have_text(
        re.compile("Replying to Alice: Point number 0 on the agenda")
    )
    bob.send("Agreed on point zero")
    expect(bob.page.locator("#reply-preview")).to_be_hidden()
    quote = alice.transcript.locator("article.msg-user .msg-quote")
    expect(quote).to_have_text("↪ Replying to Alice: Point number 0 on the agenda")

    bob.transcript.evaluate("(t) => { t.scrollTop = 0; }")
    pill = bob.page.get_by_role("button", name=re.compile("new message"))
    expect(pill).to_be_hidden()
    alice.send("One more thing")
    alice.send("And another")
    expect(pill).to_have_text("2 new messages ↓")
    expect(bob.page).to_have_title(re.compile(r"^\(2\) Threadroom · #"))
    bob.screenshot("new-messages-pill")
    pill.click()
    expect(pill).to_be_hidden()
    expect(bob.page).to_have_title(re.compile(r"^Threadroom · #"))

    # At the bottom but in a hidden tab: the title counts, and clears on return.
    set_hidden(bob, True)
    alice.send("While you were away")
    expect(bob.page).to_have_title(re.compile(r"^\(1\) Threadroom · #"))
    expect(pill).to_be_hidden()  # nothing to scroll down to
    set_hidden(bob, False)
    expect(bob.page).to_have_title(re.compile(r"^Threadroom · #"))
    assert bob.errors == []


def set_hidden(person: BrowserPerson, hidden: bool) -> None:
    """Make the page believe its tab is hidden (or shown again), as tabs do."""
    person.page.evaluate(
        """(hidden) => {
          Object.defineProperty(
            document, 'hidden', { configurable: true, get: () => hidden });
          document.dispatchEvent(new Event('visibilitychange'));
        }""",
        hidden,
    )


def test_the_others_see_who_is_typing(browser, shared_server, room, browser_people):
    alice, bob, carol = open_people(
        browser, browser_people, shared_server.url, room, ["Alice", "Bob", "Carol"]
    )
    alice.page.get_by_role("textbox", name="Message").press_sequentially("hel")
    expect(bob.page.locator("#typing-line")).to_have_text("Alice is typing…")
    carol.page.get_by_role("textbox", name="Message").press_sequentially("hi")
    expect(bob.page.locator("#typing-line")).to_have_text("Alice and Carol are typing…")
    expect(alice.page.locator("#typing-line")).to_have_text("Carol is typing…")
    alice.page.get_by_role("textbox", name="Message").fill("")  # emptied: stopped
    expect(bob.page.locator("#typing-line")).to_have_text("Carol is typing…")
    carol.send("hi all")  # sent: stopped
    expect(bob.page.locator("#typing-line")).to_have_text("")


def test_export_downloads_the_conversation_as_markdown(
    browser, shared_server, room, browser_people
):
    (alice,) = open_people(browser, browser_people, shared_server.url, room, ["Alice"])
    alice.send("Remember the milk")
    alice.wait_replies(1)
    with alice.page.expect_download() as info:
        alice.page.get_by_role("button", name="Export").click()
    download = info.value
    assert re.fullmatch(
        rf"threadroom-{room}-\d{{4}}-\d\d-\d\d\.md", download.suggested_filename
    )
    text = Path(download.path()).read_text(encoding="utf-8")
    assert text.startswith(f"# Threadroom: {room}")
    assert "> Remember the milk" in text and "Hi Alice" in text
    expect(alice.page.locator("#room-status")).to_contain_text("Exported as")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_new_controls_pass_axe_in_light_and_dark(
    browser, shared_server, room, browser_people, scheme
):
    alice, bob = open_people(
        browser,
        browser_people,
        shared_server.url,
        room,
        ["Alice", "Bob"],
        color_scheme=scheme,
    )
    change_settings(
        alice,
        answer_mode="addressed",
        assistant_name="Ada",
        instructions="Keep answers short.\nName who asked.",
        passcode="open-sesame",
    )
    alice.send("@Ada what should we eat?")
    bob.wait_replies(1)
    bob.transcript.locator("article.msg-user").get_by_role(
        "button", name="Reply"
    ).click()
    bob.page.locator("#room-instructions summary").click()
    box = bob.page.get_by_role("textbox", name="Message")
    box.press_sequentially("Pizza? @")
    typing = alice.page.locator("#typing-line")
    expect(typing).to_have_text("Bob is typing…")
    assert_axe_passes_while_shown(
        bob,
        bob.page.get_by_role("listbox", name="People to mention"),
        bob.page.locator("#reply-preview"),
        bob.page.locator("#room-instructions-text"),
    )
    bob.screenshot(f"room-{scheme}")
    assert_axe_passes_while_shown(alice, typing)

    alice.page.locator("#rooms-menu summary").click()
    assert_axe_passes_while_shown(alice, alice.page.locator("#recent-rooms"))
    alice.page.keyboard.press("Escape")
    expect(alice.page.locator("#recent-rooms")).to_be_hidden()
    alice.page.get_by_role("button", name="Room settings").click()
    dialog = alice.page.get_by_role("dialog", name="Room settings")
    expect(dialog.get_by_label("Remove the passcode")).to_be_visible()  # it is locked
    assert_axe_passes_while_shown(alice, dialog)
    alice.screenshot(f"settings-{scheme}")
    alice.page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert alice.errors == [] and bob.errors == []

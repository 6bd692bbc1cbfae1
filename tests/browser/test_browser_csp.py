"""The page works under its strict Content-Security-Policy, in chromium.

The policy allows no inline script; the page's settings sit in a JSON data block,
which is never executed.  Any violation would show as a ``securitypolicyviolation``
event and a console error: a healthy page reports neither.
"""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.person import BrowserPerson

RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__violations.push(`${e.effectiveDirective} blocked ${e.blockedURI}`);
});
"""


def violations(person: BrowserPerson) -> list[str]:
    """Return the CSP violations the page has reported so far."""
    return person.page.evaluate("() => window.__violations")


def test_the_page_works_under_its_csp_with_no_violation(
    browser, shared_server, room, browser_people
):
    person = BrowserPerson(browser)
    browser_people.append(person)
    sockets = []
    person.page.on("websocket", lambda ws: sockets.append(ws))
    person.page.add_init_script(RECORD_VIOLATIONS)
    with person.page.expect_response(lambda r: r.url.endswith(f"?room={room}")) as page:
        person.join(shared_server.url, room, "Csp")
    assert "script-src 'self'" in page.value.headers["content-security-policy"]

    person.send("Please show me a cat picture")
    person.wait_replies(1)
    image = person.replies().first.locator(".msg-body img")
    expect(image).to_be_visible()  # markdown rendered, and the picture loaded
    assert image.evaluate("(img) => img.complete && img.naturalWidth > 0")
    assert [ws.url for ws in sockets if "transport=websocket" in ws.url]
    assert not any(ws.is_closed() for ws in sockets)
    assert violations(person) == []
    assert person.errors == []

    # The policy is enforced: an injected inline script is blocked and reported.
    person.page.evaluate(
        """() => { const s = document.createElement('script');
                   s.textContent = 'window.__ran = true';
                   document.head.append(s); }"""
    )
    person.page.wait_for_function("() => window.__violations.length > 0")
    assert violations(person) == ["script-src-elem blocked inline"]
    assert person.page.evaluate("() => window.__ran") is None

"""Security headers on every response: the page, static files, ``/stream``,
``/healthz``, the engine's ``/v1`` and Socket.IO's own HTTP replies.

A WSGI middleware rather than ``after_request``: ``/v1`` is a separate Flask app
and Socket.IO's polling replies come from python-engineio, and neither runs this
app's ``after_request`` hooks.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from collections.abc import Iterable

from flask import Flask

# The page loads its scripts, styles, images and socket from its own origin only;
# the settings for app.js sit in a JSON data block, which is never executed.
# connect-src 'self' covers the same-origin ws:// and wss:// (CSP Level 3).
POLICY = (
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
)
# One source expression of frame-ancestors: a keyword, or a scheme or host (no
# quote, comma or semicolon, which could end the directive and start another).
SOURCE = re.compile(r"'none'|'self'|[^\s;,'\"]+")
KEYWORDS = {"none": "'none'", "self": "'self'"}
# What X-Frame-Options can say for the same policy (it cannot list hosts).
FRAME_OPTIONS = {"'none'": "DENY", "'self'": "SAMEORIGIN"}


def frame_ancestors(setting: str) -> str:
    """Return the checked ``frame-ancestors`` source list of ``FRAME_ANCESTORS``.

    ``none`` and ``self`` may come unquoted: .env files strip the quotes, and no
    real host has those names.
    """
    sources = [KEYWORDS.get(s, s) for s in setting.split()] or ["'none'"]
    bad = [source for source in sources if not SOURCE.fullmatch(source)]
    if bad or ("'none'" in sources and len(sources) > 1):
        raise ValueError(
            "FRAME_ANCESTORS must be none, self, or origins separated by spaces "
            f"(such as https://intranet.example.com), not {setting!r}."
        )
    return " ".join(sources)


def security_headers(ancestors: str) -> list[tuple[str, str]]:
    """Return the headers every response carries, framing allowed to ``ancestors``."""
    policy = "; ".join((*POLICY, f"frame-ancestors {ancestors}"))
    headers = [
        ("Content-Security-Policy", policy),
        ("X-Content-Type-Options", "nosniff"),
        # Not no-referrer: that sends "Origin: null" on same-origin POSTs, which
        # python-engineio refuses on the polling transport.
        ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ]
    if ancestors in FRAME_OPTIONS:  # for browsers that predate frame-ancestors
        headers.append(("X-Frame-Options", FRAME_OPTIONS[ancestors]))
    return headers


class SecurityHeaders:
    """WSGI middleware that adds ``headers`` to responses that do not set them."""

    def __init__(self, app: Callable, headers: list[tuple[str, str]]) -> None:
        self.app = app
        self.headers = headers

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], exc_info=None):
            present = {name.lower() for name, _ in headers}
            headers.extend(h for h in self.headers if h[0].lower() not in present)
            return start_response(status, headers, exc_info)

        return self.app(environ, start)


def init_security(app: Flask) -> None:
    """Wrap the app's WSGI stack so every response carries the security headers.

    Call it last in the factory: it must wrap Socket.IO and the ``/v1`` mount too.
    """
    ancestors = frame_ancestors(app.config["FRAME_ANCESTORS"])
    headers = security_headers(ancestors)
    app.wsgi_app = SecurityHeaders(app.wsgi_app, headers)  # type: ignore[method-assign]

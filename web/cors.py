"""Which other origins may use the app from a browser (``CORS_ALLOWED_ORIGINS``).

The page's own origin is always allowed.  python-engineio allows it only while
its list of origins is empty, so a configured list would lock Threadroom's own page
out of Socket.IO; ``origin_check`` allows the request's own origin (as the Host
header, or a proxy's X-Forwarded-Proto/Host, names it) beside the list.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from flask_cors import CORS

STREAM_HEADERS = ["Content-Type", "Accept", "X-Socket-Id"]
IDENTITY_HEADERS = ["X-Threadroom-User-Id", "X-Threadroom-Token"]


def origin_check(allowed: list[str]) -> Callable[[str | None, dict], bool] | str:
    """Return python-engineio's ``cors_allowed_origins`` for ``allowed``: "*" for
    any origin, else a check that admits the request's own origin and the list."""
    if "*" in allowed:
        return "*"
    listed = {origin.rstrip("/") for origin in allowed}

    def check(origin: str | None, environ: dict[str, Any]) -> bool:
        return origin is not None and (origin in listed or origin in _own(environ))

    return check


def _own(environ: dict[str, Any]) -> set[str]:
    """Return the origins the request itself was addressed to."""
    scheme = environ.get("wsgi.url_scheme", "http")
    host = environ.get("HTTP_HOST", "")
    forwarded_scheme = environ.get("HTTP_X_FORWARDED_PROTO", scheme).split(",")[0]
    forwarded_host = environ.get("HTTP_X_FORWARDED_HOST", host).split(",")[0]
    return {
        f"{scheme}://{host}",
        f"{forwarded_scheme.strip()}://{forwarded_host.strip()}",
    }


def init_cors(app: Flask) -> None:
    """Let the configured origins call ``POST /stream`` and ``/stream/stop``
    (preflight included) and read the identity headers of the answer."""
    allowed = app.config["CORS_ALLOWED_ORIGINS"]
    if not allowed:
        return  # same-origin only, as browsers do by default
    CORS(
        app,
        resources={r"/stream(/stop)?": {"origins": allowed}},
        methods=["POST", "OPTIONS"],
        allow_headers=STREAM_HEADERS,
        expose_headers=IDENTITY_HEADERS,
        supports_credentials=False,
    )

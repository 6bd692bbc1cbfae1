"""Every response carries the security headers: page, static files, /stream,
/healthz, /v1, Socket.IO's polling replies and errors alike."""

from __future__ import annotations

from pathlib import Path

import pytest

INDEX = Path(__file__).resolve().parent.parent / "templates" / "index.html"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self';"
    " connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self';"
    " frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}
KEY = "k3y"
REQUESTS = [
    ("GET", "/", {}, 200),
    ("GET", "/static/main.js", {}, 200),
    ("GET", "/static/cats/cat-1.svg", {}, 200),
    ("GET", "/healthz", {}, 200),
    ("GET", "/no-such-page", {}, 404),
    ("POST", "/stream", {"json": {"content": "hi", "name": "Ann"}}, 200),
    ("POST", "/stream", {"data": "not json"}, 400),
    ("GET", "/v1/threads/thread_x", {}, 401),
    ("POST", "/v1/threads", {"headers": {"Authorization": f"Bearer {KEY}"}}, 200),
    ("GET", "/socket.io/?EIO=4&transport=polling", {}, 200),
]


@pytest.mark.parametrize(
    ("method", "path", "options", "status"), REQUESTS, ids=lambda v: str(v)[:30]
)
def test_every_kind_of_response_carries_the_headers(
    make_app, method, path, options, status
):
    client = make_app(ENGINE_API_KEY=KEY).test_client()
    with client.open(path, method=method, **options) as response:
        assert response.status_code == status
        assert {name: response.headers.get(name) for name in HEADERS} == HEADERS


def test_the_page_runs_no_inline_script():
    html = INDEX.read_text(encoding="utf-8")
    scripts = html.split("<script")[1:]
    # Each script is a file, or a JSON data block (never executed, so CSP allows it).
    for script in scripts:
        tag = script.split(">", 1)[0]
        assert " src=" in tag or 'type="application/json"' in tag, tag


@pytest.mark.parametrize(
    ("setting", "ancestors", "frame_options"),
    [
        ("", "'none'", "DENY"),
        ("none", "'none'", "DENY"),
        ("self", "'self'", "SAMEORIGIN"),
        ("'self' https://intranet.example", "'self' https://intranet.example", None),
    ],
)
def test_frame_ancestors_follow_the_setting(
    make_app, setting, ancestors, frame_options
):
    response = make_app(FRAME_ANCESTORS=setting).test_client().get("/healthz")
    policy = response.headers["Content-Security-Policy"]
    assert policy.endswith(f"; frame-ancestors {ancestors}")
    assert response.headers.get("X-Frame-Options") == frame_options


@pytest.mark.parametrize(
    "setting", ["https://a.example; script-src *", "none https://a.example", "'x'"]
)
def test_a_frame_ancestors_setting_that_would_bend_the_policy_is_refused(
    make_app, setting
):
    with pytest.raises(ValueError, match="FRAME_ANCESTORS must be none, self"):
        make_app(FRAME_ANCESTORS=setting)


def test_a_header_set_by_a_route_is_kept(make_app):
    app = make_app()

    @app.get("/framed")
    def framed():
        return "", 204, {"X-Frame-Options": "SAMEORIGIN"}

    response = app.test_client().get("/framed")
    assert response.headers.getlist("X-Frame-Options") == ["SAMEORIGIN"]

"""Backend requests per reply: few calls per turn is what keeps rooms cheap.

The original sample made 24 requests for a 2-second run (it polled every 100 ms
after adding each message separately); Threadroom must stay within 10 in poll mode
and 4 in stream mode.
"""

from __future__ import annotations

import time

from assistant.client import embedded_client
from assistant.engine import create_api
from tests.conftest import Person

TWO_SECOND_RUN = {"DEMO_DELAY_MS": 160, "POLL_INTERVAL_MS": 250}


def count_engine_requests(app) -> list[str]:
    """Route the service's SDK client through a counter; return the request log."""
    engine = app.extensions["threadroom.engine"]
    seen: list[str] = []
    api = create_api(engine)

    def counting(environ, start_response):
        seen.append(f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}")
        return api(environ, start_response)

    app.extensions["threadroom.assistant"].client = embedded_client(counting)
    return seen


def test_poll_mode_reply_costs_at_most_ten_requests(make_app):
    app = make_app(**TWO_SECOND_RUN)
    alice = Person(app, app.test_client())
    alice.register("Alice")
    seen = count_engine_requests(app)
    started = time.monotonic()
    alice.say("How many requests does one reply take?")
    alice.wait("ai-end", timeout=20)
    took = time.monotonic() - started
    assert took >= 1.8, f"the demo run should take about 2 s, took {took:.2f}"
    assert len(seen) <= 10, seen
    assert seen[0].startswith("POST") and seen[0].endswith("/runs")
    alice.close()


def test_stream_mode_reply_costs_at_most_four_requests(make_app):
    app = make_app(**TWO_SECOND_RUN)
    alice = Person(app, app.test_client())
    alice.register("Alice")
    seen = count_engine_requests(app)
    headers = {"Accept": "text/event-stream", "X-Socket-Id": alice.sid}
    body = {"content": "How many requests does one streamed reply take?"}
    response = app.test_client().post("/stream", json=body, headers=headers)
    assert "event: done" in response.get_data(as_text=True)
    assert len(seen) <= 4, seen
    alice.close()


def test_a_tool_round_trip_in_stream_mode_stays_within_four(make_app):
    app = make_app(**TWO_SECOND_RUN)
    seen = count_engine_requests(app)
    body = {"content": "what is 6*7?", "user_id": "u1", "name": "Ann"}
    response = app.test_client().post(
        "/stream", json=body, headers={"Accept": "text/event-stream"}
    )
    assert "42" in response.get_data(as_text=True)
    assert len(seen) <= 4, seen

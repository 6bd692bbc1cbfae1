"""Backend requests per reply: few calls per turn is what keeps rooms cheap.

The original sample made 24 requests for a 2-second run (it polled every 100 ms
after adding each message separately).  In poll mode a reply costs three requests
whatever the run's length: the run (with the messages), one retrieve that the
engine holds until the run has ended (``Prefer: wait``), and the list of what the
run wrote.  Stream mode stays within 4.
"""

from __future__ import annotations

import re
import time

import pytest

from assistant.client import embedded_client
from assistant.engine import create_api
from tests.conftest import Person

TWO_SECOND_RUN = {"DEMO_DELAY_MS": 160, "POLL_INTERVAL_MS": 250}
# "count to N" makes the demo reply N words, DEMO_DELAY_MS apart.
COUNTED_RUN = {"DEMO_DELAY_MS": 200, "POLL_INTERVAL_MS": 250}


def count_engine_requests(app, *, honour_wait: bool = True) -> list[str]:
    """Route the service's SDK client through a counter; return the request log.

    With ``honour_wait=False`` the engine is shown every request without its
    ``Prefer`` header, as a backend that never holds a retrieve would answer.
    """
    engine = app.extensions["threadroom.engine"]
    seen: list[str] = []
    api = create_api(engine)

    def counting(environ, start_response):
        seen.append(f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}")
        if not honour_wait:
            environ.pop("HTTP_PREFER", None)
        return api(environ, start_response)

    app.extensions["threadroom.assistant"].client = embedded_client(counting)
    return seen


@pytest.mark.parametrize("words, seconds", [(11, 2.0), (26, 5.0)])
def test_poll_mode_reply_costs_three_requests_whatever_the_run_length(
    make_app, words, seconds
):
    app = make_app(**COUNTED_RUN)
    alice = Person(app, app.test_client())
    alice.register("Alice")
    seen = count_engine_requests(app)
    started = time.monotonic()
    alice.say(f"Please count to {words}")
    alice.wait("ai-end", timeout=30)
    took = time.monotonic() - started
    assert took >= seconds * 0.9, f"the run should take about {seconds} s: {took:.2f}"
    reply = alice.payloads("message-list")[-1][-1]["content"]
    assert reply.split()[-1] == str(words)
    assert [re.sub(r"_[0-9a-f]+", "_*", line) for line in seen] == [
        "POST /v1/threads/thread_*/runs",
        "GET /v1/threads/thread_*/runs/run_*",  # held until the run completed
        "GET /v1/threads/thread_*/messages",
    ]
    alice.close()


def test_a_backend_that_does_not_hold_retrieves_is_polled_at_the_interval(make_app):
    app = make_app(**TWO_SECOND_RUN)
    alice = Person(app, app.test_client())
    alice.register("Alice")
    seen = count_engine_requests(app, honour_wait=False)
    alice.say("How many requests does one reply take?")
    alice.wait("ai-end", timeout=20)
    retrieves = [line for line in seen if line.startswith("GET") and "/runs/" in line]
    # The first look asks at once (maybe it holds), then every 250 ms and more.
    assert 3 <= len(retrieves) <= 8, seen
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

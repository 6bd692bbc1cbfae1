"""Operators' view: /metrics, the per-turn log line, JSON logs, /readyz, config
errors at start, and the gateway-shaped model failures."""

from __future__ import annotations

import json
import logging
import socket
import time

import pytest

from app import create_app
from config import ConfigError
from ops.logs import WsgiErrors
from ops.logs import json_formatter
from tests.conftest import TEST_CONFIG
from tests.conftest import wait_for
from tests.fake_model_server import ErrorReply
from tests.fake_model_server import FakeModelServer
from tests.fake_model_server import error_response
from tests.test_remote_mode import assistant_id  # noqa: F401 (fixtures)
from tests.test_remote_mode import remote  # noqa: F401
from tests.test_remote_mode import remote_app  # noqa: F401
from tests.test_remote_mode import sdk  # noqa: F401

KEY = "sk-ops-test-key-0123456789"


def metric(client, line_start: str) -> float | None:
    """Return the value of the first /metrics sample starting with ``line_start``."""
    text = client.get("/metrics").get_data(as_text=True)
    for line in text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def turn_records(caplog) -> list[logging.LogRecord]:
    """Return the per-turn log records captured so far."""
    return [r for r in caplog.records if r.name == "threadroom.turns"]


def test_a_turn_is_counted_and_timed_in_metrics(client, people):
    alice = people("Alice")
    alice.say("hello there")
    assert alice.wait("ai-end")[0]["status"] == "completed"
    wait_for(lambda: metric(client, 'threadroom_turns_total{status="completed"}'))
    assert metric(client, "threadroom_turn_duration_seconds_count") == 1
    assert metric(client, "threadroom_time_to_first_token_seconds_count") == 1
    assert metric(client, "threadroom_connections") == 1
    assert metric(client, "threadroom_rooms") == 1
    response = client.get("/metrics")
    assert response.content_type.startswith("text/plain; version=")


def test_every_app_has_its_own_metrics(make_app, people, client):
    alice = people("Alice")
    alice.say("hi")
    alice.wait("ai-end")
    other = make_app().test_client()
    wait_for(lambda: metric(client, 'threadroom_turns_total{status="completed"}'))
    assert metric(other, 'threadroom_turns_total{status="completed"}') is None
    assert metric(other, "threadroom_connections") == 0


def test_one_log_line_per_turn_names_room_turn_speakers_and_tools(caplog, people):
    caplog.set_level(logging.INFO, logger="threadroom.turns")
    alice = people("Alice")
    alice.say("what time is it in Tokyo?")
    end = alice.wait("ai-end")[0]
    records = wait_for(lambda: turn_records(caplog))
    assert len(records) == 1
    fields = records[0].turn
    assert fields["room"] == "lobby" or fields["room"]
    assert fields["turn"] == end["turn"]
    assert fields["speakers"] == ["Alice"]
    assert fields["status"] == "completed"
    assert fields["tools"] == ["get_current_time"]
    assert fields["backend_requests"] >= 3  # create run, poll, submit tool outputs
    assert fields["first_token_s"] is not None
    assert 0 < fields["first_token_s"] <= fields["duration_s"]
    line = records[0].getMessage()
    assert f"turn={end['turn']}" in line and "tools=get_current_time" in line
    assert "status=completed" in line and "speakers='Alice'" in line


def test_the_turn_line_as_json_carries_its_fields(caplog, people):
    caplog.set_level(logging.INFO, logger="threadroom.turns")
    bob = people("Bob")
    bob.say("hi")
    bob.wait("ai-end")
    record = wait_for(lambda: turn_records(caplog))[0]
    line = json_formatter().format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert data["level"] == "INFO" and data["logger"] == "threadroom.turns"
    assert data["turn"]["speakers"] == ["Bob"]
    assert data["turn"]["status"] == "completed"
    assert data["message"].startswith("turn room=")


def test_limit_refusals_are_counted(make_app):
    app = make_app(LIMIT_MESSAGE_RATE="2 per minute")
    client = app.test_client()
    from tests.conftest import Person

    person = Person(app, client)
    assert person.register("Flood")["ok"]
    acks = [person.say(f"m{n}") for n in range(4)]
    assert [ack["ok"] for ack in acks] == [True, True, False, False]
    assert metric(client, "threadroom_limit_refusals_total") == 2
    person.close()


def test_engine_runs_are_counted_by_status(make_app, tmp_path):
    app = make_app(ENGINE_DB=str(tmp_path / "runs.sqlite3"))
    client = app.test_client()
    from tests.conftest import Person

    person = Person(app, client)
    assert person.register("Runner")["ok"]
    person.say("hello")
    person.wait("ai-end")
    assert metric(client, 'threadroom_engine_runs{status="completed"}') == 1
    person.close()


# -- a real model server that fails ------------------------------------------------


@pytest.fixture
def model():
    """A fake model server that wants ``KEY`` and knows one model."""
    with FakeModelServer(api_key=KEY, models=("known-model",)) as server:
        yield server


def model_app(make_app, model, **settings):
    """Build an app whose engine answers through ``model``."""
    base = {"MODEL_BASE_URL": model.url, "OPENAI_API_KEY": KEY, "MODEL": "known-model"}
    return make_app(**{**base, **settings})


def test_a_model_failure_is_logged_with_room_and_turn_and_counted(
    make_app, model, caplog
):
    caplog.set_level(logging.INFO, logger="threadroom.turns")
    app = model_app(make_app, model, OPENAI_API_KEY="sk-wrong-key-000000000")
    client = app.test_client()
    from tests.conftest import Person

    person = Person(app, client)
    assert person.register("Carol", room="ops-room")["ok"]
    person.say("hello")
    assert person.wait("ai-end")[0]["status"] == "failed"
    record = wait_for(lambda: turn_records(caplog))[0]
    assert record.levelno == logging.WARNING
    assert record.turn["room"] == "ops-room" and record.turn["status"] == "failed"
    assert "Check OPENAI_API_KEY" in record.turn["error"]
    assert "room='ops-room'" in record.getMessage()
    assert "sk-wrong" not in caplog.text
    assert metric(client, 'threadroom_model_errors_total{kind="auth"}') == 1
    assert metric(client, 'threadroom_turns_total{status="failed"}') == 1
    person.close()


# -- readiness -----------------------------------------------------------------------


def refused_url() -> str:
    """Return a loopback base URL where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def test_readyz_is_200_on_the_demo_model(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ready",
        "checks": {"store": "ok"},
        "problems": [],
    }


def test_readyz_is_200_when_the_model_server_knows_key_and_model(make_app, model):
    response = model_app(make_app, model).test_client().get("/readyz")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["checks"] == {"store": "ok", "model": "ok"}


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"MODEL_BASE_URL": "refused"}, "connection refused"),
        (
            {"OPENAI_API_KEY": "sk-wrong-key-000000000"},
            "rejected the API key (HTTP 401). Check OPENAI_API_KEY.",
        ),  # noqa: E501
        ({"MODEL_BASE_URL": "no-v1"}, "Check MODEL_BASE_URL. It usually ends in /v1."),
        (
            {"MODEL": "gpt-nope"},
            "does not list the model 'gpt-nope' (it lists: known-model). Check MODEL.",
        ),  # noqa: E501
    ],
    ids=["refused-port", "wrong-key", "base-url-without-v1", "unknown-model"],
)
def test_readyz_names_what_is_wrong(make_app, model, caplog, settings, expected):
    if settings.get("MODEL_BASE_URL") == "refused":
        settings = {"MODEL_BASE_URL": refused_url()}
    elif settings.get("MODEL_BASE_URL") == "no-v1":
        settings = {"MODEL_BASE_URL": model.url.removesuffix("/v1")}
    caplog.set_level(logging.WARNING, logger="threadroom.readiness")
    app = model_app(make_app, model, **settings)
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable" and body["checks"]["store"] == "ok"
    assert expected in body["checks"]["model"]
    assert body["problems"] == [f"model: {body['checks']['model']}"]
    assert KEY not in response.get_data(as_text=True)
    warnings = [r for r in caplog.records if r.name == "threadroom.readiness"]
    assert len(warnings) == 1 and expected in warnings[0].getMessage()


def test_readyz_answers_from_its_cache_between_probes(make_app, model):
    client = model_app(make_app, model, READYZ_CACHE_S=60).test_client()
    listed = model.model_listings  # the start-up probe
    for _ in range(5):
        assert client.get("/readyz").status_code == 200
    assert model.model_listings == listed
    fresh = model_app(make_app, model, READYZ_CACHE_S=0).test_client()
    listed = model.model_listings
    fresh.get("/readyz")
    fresh.get("/readyz")
    assert model.model_listings == listed + 2


@pytest.mark.parametrize(
    ("setting", "value"), [("LOG_FORMAT", "yaml"), ("LOG_LEVEL", "LOUD")]
)
def test_an_unknown_log_setting_is_refused_at_start(setting, value):
    with pytest.raises(ConfigError, match=f"{setting}='{value}' is not one of"):
        create_app({**TEST_CONFIG, setting: value})


@pytest.mark.parametrize("setting", ["MODEL_BASE_URL", "ASSISTANTS_BASE_URL"])
def test_a_base_url_without_a_scheme_is_refused_at_start(setting):
    with pytest.raises(ConfigError, match=f"{setting}='127.0.0.1:11434/v1' has no"):
        create_app({**TEST_CONFIG, setting: "127.0.0.1:11434/v1"})


# -- gateway-shaped failures (LiteLLM's wording) -----------------------------------


LITELLM_UNKNOWN_MODEL = (
    "400: {'error': '/chat/completions: Invalid model name passed in model=gpt-nope."
    " Call `/v1/models` to view available models for your key.'}"
)
LITELLM_BAD_KEY = (
    "Authentication Error, LiteLLM Virtual Key expected. Received=wrong, expected to"
    " start with 'sk-'."
)


@pytest.mark.parametrize(
    ("reply", "sentence", "kind"),
    [
        (
            ErrorReply(400, LITELLM_UNKNOWN_MODEL, "None", "400"),
            "The model 'known-model' was not found on the model server. Check MODEL.",
            "unknown_model",
        ),
        (
            ErrorReply(400, LITELLM_BAD_KEY, "auth_error", "400"),
            "The model server rejected the API key (400). Check OPENAI_API_KEY.",
            "auth",
        ),
        (
            ErrorReply(404, "No such model: known-model", "invalid_request_error"),
            "The model 'known-model' was not found on the model server. Check MODEL.",
            "unknown_model",
        ),
    ],
    ids=["litellm-unknown-model-400", "litellm-bad-key-400", "gateway-404"],
)
def test_gateway_errors_get_the_same_sentences(make_app, model, reply, sentence, kind):
    app = model_app(make_app, model)
    model.push(reply)
    client = app.test_client()
    from tests.conftest import Person

    person = Person(app, client)
    assert person.register("Dan")["ok"]
    person.say("hello")
    person.wait("ai-end")
    lines = [m["content"] for m in person.payloads("message") if m["role"] == "system"]
    assert lines == [f"The assistant could not answer: {sentence}"]
    assert metric(client, f'threadroom_model_errors_total{{kind="{kind}"}}') == 1
    person.close()


class SlowFailure:
    """Answer after ``seconds`` with a 500 (a gateway retrying upstream itself)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def respond(self, server, body):
        server.pause(self.seconds)
        return error_response(500, "upstream down", "server_error", None, 10)


def test_one_deadline_bounds_a_model_call_across_retries(make_app, model):
    from assistant.engine.providers.base import ModelRequest
    from assistant.engine.providers.base import ProviderError
    from assistant.engine.providers.base import Turn
    from assistant.engine.providers.openai_chat import ChatCompletionsProvider

    model.default = SlowFailure(0.6)
    provider = ChatCompletionsProvider(
        api_key=KEY,
        base_url=model.url,
        model="known-model",
        max_retries=5,
        call_deadline_s=1.0,
    )
    request = ModelRequest(
        model="known-model", instructions="", turns=(Turn("user", "hi"),)
    )
    started = time.monotonic()
    with pytest.raises(ProviderError, match="HTTP 500"):
        list(provider.stream(request))
    took = time.monotonic() - started
    provider.close()
    # Without the deadline: six attempts of 0.6 s plus backoff, over 4 s.
    assert took < 1.6
    assert len(model.requests) == 2


def test_wsgi_errors_keep_real_errors_and_quiet_the_shutdown_noise(caplog):
    caplog.set_level(logging.DEBUG, logger="threadroom.wsgi")
    stream = WsgiErrors(logging.getLogger("threadroom.wsgi"))
    stream.write(
        "server=127.0.0.1:1/ client=127.0.0.1:2 socket shutdown error: "
        "[Errno 9] Bad file descriptor\n"
    )
    stream.write("Traceback (most recent call last): boom\n")
    levels = [(r.levelno, r.getMessage()[:9]) for r in caplog.records]
    assert levels == [(logging.DEBUG, "server=12"), (logging.WARNING, "Traceback")]


def test_a_call_past_its_deadline_says_so(model):
    from assistant.engine.providers.base import ModelRequest
    from assistant.engine.providers.base import ProviderError
    from assistant.engine.providers.base import Turn
    from assistant.engine.providers.openai_chat import ChatCompletionsProvider

    model.default = SlowFailure(3)
    provider = ChatCompletionsProvider(
        api_key=KEY, base_url=model.url, model="known-model", call_deadline_s=0.5
    )
    request = ModelRequest(
        model="known-model", instructions="", turns=(Turn("user", "hi"),)
    )
    with pytest.raises(ProviderError, match=r"did not answer within 0.5 s"):
        list(provider.stream(request))
    provider.close()
    assert len(model.requests) == 1


def test_readyz_is_503_when_the_store_does_not_answer(make_app):
    app = make_app(READYZ_CACHE_S=0)
    client = app.test_client()
    assert client.get("/readyz").status_code == 200
    app.extensions["threadroom.engine"].close()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["store"].startswith(
        "the conversation store did not answer"
    )


def test_readyz_checks_the_remote_assistants_server(request):
    build = request.getfixturevalue("remote_app")  # a second Threadroom's /v1
    client = build().test_client()
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"assistants_server": "ok"}


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("refused", "could not connect to the Assistants server at 127.0.0.1:"),
        ("no-such-assistant", "has no such assistant (HTTP 404). Check OPENAI_ASSIST"),
    ],
)
def test_the_remote_check_names_what_is_wrong(model, where, expected):
    from ops.readiness import remote_check

    url = refused_url() if where == "refused" else model.url
    check = remote_check(
        {
            "ASSISTANTS_BASE_URL": url,
            "OPENAI_ASSISTANT_ID": "asst_missing",
            "OPENAI_API_KEY": KEY,
            "READYZ_TIMEOUT_S": 3,
        }
    )()
    assert check.name == "assistants_server" and expected in check.problem


def test_readyz_never_shows_credentials_of_the_base_url(make_app, model):
    with_password = model.url.replace("http://", "http://ops:hunter2@")
    app = model_app(make_app, model, MODEL_BASE_URL=with_password.removesuffix("/v1"))
    body = app.test_client().get("/readyz").get_data(as_text=True)
    assert "It usually ends in /v1" in body
    assert "hunter2" not in body and KEY not in body

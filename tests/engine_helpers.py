"""Helpers for the engine tests: SDK clients, a recording provider, waiting."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
from openai import AssistantEventHandler

from assistant.engine.providers.base import ModelRequest
from assistant.engine.providers.base import Provider
from assistant.engine.providers.base import ProviderEvent
from assistant.engine.providers.demo import DemoProvider

TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "get_current_time",
        "description": "The current time in a timezone.",
        "parameters": {
            "type": "object",
            "properties": {"timezone": {"type": "string"}},
            "required": ["timezone"],
        },
    },
}


def say(client: openai.OpenAI, thread: Any, text: str, name: str = "Alice") -> Any:
    """Add a user message with a speaker name."""
    return client.beta.threads.messages.create(
        thread.id, role="user", content=text, metadata={"name": name}
    )


def make_client(wsgi_app: Callable, **kwargs: Any) -> openai.OpenAI:
    """Return a strict SDK client over a WSGI app."""
    return openai.OpenAI(
        api_key=kwargs.pop("api_key", "x"),
        base_url=kwargs.pop("base_url", "http://engine/v1"),
        http_client=httpx2.Client(transport=httpx2.WSGITransport(app=wsgi_app)),
        _strict_response_validation=True,
        max_retries=0,
        **kwargs,
    )


def raw_client(wsgi_app: Callable) -> httpx2.Client:
    """Return a plain HTTP client over a WSGI app."""
    return httpx2.Client(
        transport=httpx2.WSGITransport(app=wsgi_app), base_url="http://engine"
    )


def poll_run(client: openai.OpenAI, thread: Any, assistant: Any, **kwargs: Any) -> Any:
    """Create a run and poll it to a resting state."""
    return client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=10, **kwargs
    )


def stream_run(
    client: openai.OpenAI, thread: Any, assistant: Any, **kwargs: Any
) -> EventRecorder:
    """Stream a run to its end and return the handler that recorded it."""
    handler = EventRecorder()
    with client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant.id, event_handler=handler, **kwargs
    ) as events:
        events.until_done()
    return handler


def wait_until(condition: Callable[[], Any], timeout_s: float = 5.0) -> Any:
    """Poll ``condition`` until it is truthy, failing after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


class RecordingProvider:
    """Wraps a provider, recording requests and whether its stream was closed."""

    name = "recording"

    def __init__(self, inner: Provider | None = None) -> None:
        self.inner = inner or DemoProvider()
        self.requests: list[ModelRequest] = []
        self.closed = threading.Event()

    def stream(self, request: ModelRequest) -> Iterator[ProviderEvent]:
        """Record the request, then relay the inner provider's events."""
        self.requests.append(request)
        try:
            yield from self.inner.stream(request)
        except GeneratorExit:
            self.closed.set()
            raise


class ScriptedProvider:
    """Yields a fixed list of events (or raises an exception)."""

    name = "scripted"

    def __init__(self, *events: ProviderEvent | Exception) -> None:
        self.events = events

    def stream(self, request: ModelRequest) -> Iterator[ProviderEvent]:
        """Yield the scripted events."""
        for event in self.events:
            if isinstance(event, Exception):
                raise event
            yield event


class EventRecorder(AssistantEventHandler):
    """Records event names and text deltas of one stream."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []
        self.deltas: list[str] = []
        self.ended = False

    def on_event(self, event: Any) -> None:
        """Record the event name."""
        self.events.append(event.event)

    def on_text_delta(self, delta: Any, snapshot: Any) -> None:
        """Record a text fragment, checking the stream has not ended."""
        assert not self.ended
        self.deltas.append(delta.value)

    def on_end(self) -> None:
        """Note the end of the stream."""
        self.ended = True

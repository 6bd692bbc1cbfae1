"""A scripted Chat Completions server on 127.0.0.1, for tests.

A real HTTP server (werkzeug, threaded, in a daemon thread) on a free loopback port,
so the SDK, another process or a TLS client can talk to it.  Every chunk is built
from the SDK's own types.  Tests ``push`` behaviours; each request takes the next
one, or ``default`` when the script is empty::

    with FakeModelServer() as server:
        server.push(Reply(("Hel", "lo")), ToolCallReply((FakeCall("f", ("{}",)),)))
        ...  # point a client at server.url
        server.requests[0]["messages"]
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from openai.types import CompletionUsage
from openai.types.chat import ChatCompletionChunk
from openai.types.chat.chat_completion_chunk import Choice
from openai.types.chat.chat_completion_chunk import ChoiceDelta
from openai.types.chat.chat_completion_chunk import ChoiceDeltaToolCall
from openai.types.chat.chat_completion_chunk import ChoiceDeltaToolCallFunction
from werkzeug.serving import BaseWSGIServer
from werkzeug.serving import WSGIRequestHandler
from werkzeug.serving import make_server
from werkzeug.wrappers import Request
from werkzeug.wrappers import Response

from assistant.engine.api import mask_key

COMPLETION_ID = "chatcmpl-fake"


class Behaviour(Protocol):
    """One scripted answer to one ``POST /v1/chat/completions``."""

    def respond(self, server: FakeModelServer, body: dict) -> Response:
        """Return the HTTP response for a request body."""
        ...


@dataclass(frozen=True)
class Reply:
    """Stream these text chunks, then the finish reason and (if asked) the usage."""

    chunks: tuple[str, ...] = ("ok",)
    finish_reason: str = "stop"
    usage: tuple[int, int] = (11, 7)
    delay_s: float = 0  # pause before each chunk after the first
    stall_after_first_s: float = 0  # go silent after the first chunk

    def respond(self, server: FakeModelServer, body: dict) -> Response:
        """Stream the reply as SSE."""
        return server.sse(self._frames(server, body))

    def _frames(self, server: FakeModelServer, body: dict) -> Iterator[str]:
        """Yield each chunk's JSON, pausing as scripted."""
        model = body.get("model", "")
        for number, text in enumerate(self.chunks):
            if number == 1 and self.stall_after_first_s:
                server.pause(self.stall_after_first_s)
            if number and self.delay_s:
                server.pause(self.delay_s)
            yield text_chunk(model, text, first=number == 0)
        yield finish_chunk(model, self.finish_reason)
        if _wants_usage(body):
            yield usage_chunk(model, *self.usage)


@dataclass(frozen=True)
class FakeCall:
    """A function call to stream: its name and its argument fragments, in order."""

    name: str
    fragments: tuple[str, ...]
    id: str = "call_fake1"


@dataclass(frozen=True)
class ToolCallReply:
    """Stream function calls, fragment by fragment, then ``finish_reason``."""

    calls: tuple[FakeCall, ...]
    finish_reason: str = "tool_calls"
    repeat_ids: bool = False  # some servers repeat id and name on every fragment
    usage: tuple[int, int] = (20, 9)

    def respond(self, server: FakeModelServer, body: dict) -> Response:
        """Stream the calls as SSE."""
        return server.sse(self._frames(body))

    def _frames(self, body: dict) -> Iterator[str]:
        """Yield one chunk per argument fragment of each call."""
        model = body.get("model", "")
        for index, call in enumerate(self.calls):
            for number, fragment in enumerate(call.fragments):
                announce = number == 0 or self.repeat_ids
                yield tool_call_chunk(model, index, call, fragment, announce)
        yield finish_chunk(model, self.finish_reason)
        if _wants_usage(body):
            yield usage_chunk(model, *self.usage)


@dataclass(frozen=True)
class ErrorReply:
    """Answer with an HTTP error status and OpenAI's error JSON body."""

    status: int
    message: str = "The server had an error while processing your request."
    type: str = "server_error"
    code: str | None = None
    retry_after_ms: int = 10  # keeps the SDK's retries fast

    def respond(self, server: FakeModelServer, body: dict) -> Response:
        """Return the error response."""
        return error_response(
            self.status, self.message, self.type, self.code, self.retry_after_ms
        )


@dataclass(frozen=True)
class Malformed:
    """Stream one good chunk, then a data line that is not a valid chunk."""

    data: str = '{"id": "chatcmpl-fake", "choices": ['

    def respond(self, server: FakeModelServer, body: dict) -> Response:
        """Stream the good chunk and the broken one."""
        model = body.get("model", "")
        return server.sse(iter([text_chunk(model, "Hel", first=True), self.data]))


@dataclass(frozen=True)
class RawResponse:
    """Answer with any body, e.g. the HTML login page of a proxy."""

    body: str
    status: int = 200
    content_type: str = "text/html"

    def respond(self, server: FakeModelServer, body: dict) -> Response:
        """Return the raw response."""
        return Response(self.body, status=self.status, content_type=self.content_type)


class _QuietHandler(WSGIRequestHandler):
    """Serve requests without printing an access log line for each."""

    def log(self, type: str, message: str, *args: object) -> None:
        """Say nothing."""


class FakeModelServer:
    """A scripted OpenAI-compatible Chat Completions server on loopback."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        models: tuple[str, ...] | None = None,
        reject_stream_options: bool = False,
        ssl_context: ssl.SSLContext | tuple[str, str] | None = None,
        default: Behaviour | None = None,
    ) -> None:
        self.api_key = api_key  # when set: Bearer <api_key> or 401
        self.models = models  # when set: any other model is a 404
        self.reject_stream_options = reject_stream_options
        self.default = default or Reply()
        self.requests: list[dict] = []
        self.model_listings = 0  # GET /v1/models answered (readiness probes)
        self.headers: list[dict[str, str]] = []
        self.client_gone = threading.Event()  # a client closed a stream early
        self._script: deque[Behaviour] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._ssl_context = ssl_context
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Return the base URL to give a client, ending in ``/v1``."""
        assert self._server is not None, "start the server first"
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_port}/v1"

    def push(self, *behaviours: Behaviour) -> None:
        """Queue behaviours for the next requests, in order."""
        with self._lock:
            self._script.extend(behaviours)

    def start(self) -> FakeModelServer:
        """Bind a free port and serve in a daemon thread."""
        self._server = make_server(
            "127.0.0.1",
            0,
            self._wsgi,
            threaded=True,
            request_handler=_QuietHandler,
            ssl_context=self._ssl_context,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, end any scripted pause, and close the socket (idempotent)."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeModelServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def pause(self, seconds: float) -> None:
        """Sleep inside a response, but wake up at once when the server stops."""
        self._stopping.wait(seconds)

    def sse(self, frames: Iterator[str]) -> Response:
        """Return a streaming SSE response of ``data:`` frames ending in [DONE]."""
        return Response(
            self._watched(frames), mimetype="text/event-stream", direct_passthrough=True
        )

    def _watched(self, frames: Iterator[str]) -> Iterator[bytes]:
        """Encode frames, and note when the client goes away before the end."""
        finished = False
        try:
            for frame in frames:
                yield f"data: {frame}\n\n".encode()
            yield b"data: [DONE]\n\n"
            finished = True
        finally:
            if not finished:
                self.client_gone.set()

    def _wsgi(self, environ: dict, start_response: object) -> Iterator[bytes]:
        """Answer one request (the WSGI entry point)."""
        request = Request(environ)
        if request.method == "GET" and request.path == "/v1/models":
            return self._models(request)(environ, start_response)
        return self._respond(request)(environ, start_response)

    def _models(self, request: Request) -> Response:
        """List the models, as ``GET /v1/models`` does (with the key check)."""
        with self._lock:
            self.model_listings += 1
        sent = request.headers.get("Authorization", "")
        if self.api_key is not None and sent != f"Bearer {self.api_key}":
            return invalid_key_response(sent.removeprefix("Bearer "))
        models = self.models or ("fake-model",)  # any name is served; list one
        data = [{"id": m, "object": "model", "owned_by": "fake"} for m in models]
        return Response(
            json.dumps({"object": "list", "data": data}), mimetype="application/json"
        )

    def _respond(self, request: Request) -> Response:
        """Record the request, then apply the checks and the next behaviour."""
        if request.method != "POST" or request.path != "/v1/chat/completions":
            return error_response(404, f"Unknown path {request.path}", "not_found")
        body = json.loads(request.get_data() or b"{}")
        with self._lock:
            self.requests.append(body)
            self.headers.append(dict(request.headers))
        refusal = self._refusal(request, body)
        if refusal is not None:
            return refusal
        with self._lock:
            behaviour = self._script.popleft() if self._script else self.default
        return behaviour.respond(self, body)

    def _refusal(self, request: Request, body: dict) -> Response | None:
        """Return the error a strict server would give this request, if any."""
        sent = request.headers.get("Authorization", "")
        if self.api_key is not None and sent != f"Bearer {self.api_key}":
            return invalid_key_response(sent.removeprefix("Bearer "))
        if self.models is not None and body.get("model") not in self.models:
            return model_not_found_response(str(body.get("model")))
        if self.reject_stream_options and "stream_options" in body:
            message = "Unrecognized request argument supplied: stream_options"
            return error_response(400, message, "invalid_request_error")
        return None


# -- Chunks, built from the SDK's own types ------------------------------------------


def chunk_json(model: str, choices: list[Choice], **fields: object) -> str:
    """Return one ``chat.completion.chunk`` as the JSON a server sends."""
    chunk = ChatCompletionChunk(
        id=COMPLETION_ID,
        object="chat.completion.chunk",
        created=int(time.time()),
        model=model,
        choices=choices,
        **fields,
    )
    return chunk.model_dump_json(exclude_unset=True)


def text_chunk(model: str, text: str, *, first: bool = False) -> str:
    """Return a chunk carrying a text fragment (and the role on the first one)."""
    delta = (
        ChoiceDelta(role="assistant", content=text)
        if first
        else ChoiceDelta(content=text)
    )
    return chunk_json(model, [Choice(index=0, delta=delta, finish_reason=None)])


def tool_call_chunk(
    model: str, index: int, call: FakeCall, fragment: str, announce: bool
) -> str:
    """Return a chunk carrying one argument fragment of call ``index``."""
    if announce:
        function = ChoiceDeltaToolCallFunction(name=call.name, arguments=fragment)
        tool_call = ChoiceDeltaToolCall(
            index=index, id=call.id, type="function", function=function
        )
    else:
        function = ChoiceDeltaToolCallFunction(arguments=fragment)
        tool_call = ChoiceDeltaToolCall(index=index, function=function)
    delta = ChoiceDelta(tool_calls=[tool_call])
    return chunk_json(model, [Choice(index=0, delta=delta, finish_reason=None)])


def finish_chunk(model: str, reason: str) -> str:
    """Return the chunk that says why the model stopped."""
    choice = Choice(index=0, delta=ChoiceDelta(), finish_reason=reason)
    return chunk_json(model, [choice])


def usage_chunk(model: str, prompt: int, completion: int) -> str:
    """Return the last chunk: no choices, only the token usage."""
    usage = CompletionUsage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
    )
    return chunk_json(model, [], usage=usage)


def _wants_usage(body: dict) -> bool:
    """Tell whether the request asked for the usage chunk, as OpenAI requires."""
    options = body.get("stream_options") or {}
    return bool(options.get("include_usage"))


# -- Error responses, shaped like OpenAI's -------------------------------------------


def error_response(
    status: int,
    message: str,
    type: str,
    code: str | None = None,
    retry_after_ms: int = 10,
) -> Response:
    """Return OpenAI's error JSON body with an HTTP status."""
    error = {"message": message, "type": type, "param": None, "code": code}
    return Response(
        json.dumps({"error": error}),
        status=status,
        mimetype="application/json",
        headers={"retry-after-ms": str(retry_after_ms), "x-request-id": "req_fake"},
    )


def invalid_key_response(sent_key: str) -> Response:
    """Return the 401 OpenAI gives for a wrong key (it echoes the key, masked)."""
    masked = mask_key(sent_key)
    message = (
        f"Incorrect API key provided: {masked}. You can find your API key at "
        "https://platform.openai.com/account/api-keys."
    )
    return error_response(401, message, "invalid_request_error", "invalid_api_key")


def model_not_found_response(model: str) -> Response:
    """Return the 404 OpenAI gives for a model that does not exist."""
    message = f"The model `{model}` does not exist or you do not have access to it."
    return error_response(404, message, "invalid_request_error", "model_not_found")

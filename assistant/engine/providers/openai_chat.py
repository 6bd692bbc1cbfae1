"""The real-model provider: Chat Completions on any OpenAI-compatible server.

Works against OpenAI and local servers (Ollama, vLLM, llama.cpp, LM Studio).  The
thread becomes a list of chat messages (each user turn tagged with its speaker),
trimmed to a character budget; the streamed chunks become provider events; every SDK
failure becomes a ``ProviderError`` with a plain sentence that holds no secret.
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
import secrets
import time
import unicodedata
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx2
import openai
from openai.types import ChatModel
from openai.types.chat import ChatCompletionChunk

from .base import Finish
from .base import ModelRequest
from .base import ProviderError
from .base import ProviderEvent
from .base import TextDelta
from .base import ToolCallDelta
from .base import Turn
from .base import Usage

log = logging.getLogger(__name__)

# Listed in openai.types.ChatModel and not among its deprecated values (SDK 3.51.0).
DEFAULT_MODEL: ChatModel = "gpt-5.4-mini"
OPENAI_BASE_URL = "https://api.openai.com/v1"
# Local servers ignore the key, but the SDK refuses to build a client without one.
PLACEHOLDER_API_KEY = "not-needed"
# Never cut the newest user turn below this, even when the instructions are huge.
MIN_USER_CHARS = 200
TRUNCATION_MARK = " […]"
MALFORMED = "The model server sent a malformed response."

_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]+")
_KEY_LIKE = re.compile(r"\b(sk-[A-Za-z0-9*_-]{4,})")

# Gateways (LiteLLM, other proxies) answer an unknown model or a bad key with a 400
# or a 404 of their own wording instead of OpenAI's 401 / model_not_found; these
# say what such a body means, so the room gets the same sentence either way.
_UNKNOWN_MODEL = re.compile(
    r"invalid model name|unknown model|no such model|model_not_found"
    r"|model\b[^.]{0,120}\b(?:not found|does not exist|not exist|is not available)"
    r"|there is no 'model_name'",
    re.IGNORECASE,
)
_BAD_KEY = re.compile(
    r"api[ _-]?key|authenticat|unauthori[sz]ed|invalid (?:proxy server |bearer )?token"
    r"|virtual key",
    re.IGNORECASE,
)
_AUTH_TYPES = {"authentication_error", "auth_error", "invalid_api_key"}
# The SDK's own retry policy (openai._base_client), kept when we retry ourselves.
_RETRY_STATUSES = {408, 409, 429}
_FIRST_RETRY_DELAY_S = 0.5
_MAX_RETRY_DELAY_S = 8.0
_MAX_RETRY_AFTER_S = 60.0


class ChatCompletionsProvider:
    """Produce assistant output with a Chat Completions model over HTTP."""

    name = "openai"

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None,
        model: str,
        connect_timeout_s: float = 10,
        read_timeout_s: float = 120,
        stall_timeout_s: float = 60,
        context_chars: int = 48000,
        max_retries: int = 2,
        call_deadline_s: float = 60,
        send_names: bool = False,
        include_usage: bool = True,
        client: openai.OpenAI | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.model = model or DEFAULT_MODEL
        self.base_url = base_url or OPENAI_BASE_URL
        self.context_chars = context_chars
        self.send_names = send_names
        self.include_usage = include_usage
        self._api_key = api_key
        # One budget per model call, retries included: a gateway that retries
        # upstream itself, times the SDK's retries, kept rooms waiting 16 s.
        self.call_deadline_s = call_deadline_s
        self.max_retries = max_retries
        self._on_error = on_error or (lambda kind: None)
        # httpx2's read timeout applies to every socket read, so it doubles as the
        # stall detector: no byte for this long and the stream fails.
        self.wait_s = min(read_timeout_s, stall_timeout_s)
        self._connect_s = connect_timeout_s
        self._timeout = httpx2.Timeout(self.wait_s, connect=connect_timeout_s)
        self._owns_client = client is None
        self._client = client or openai.OpenAI(
            api_key=api_key or PLACEHOLDER_API_KEY,
            base_url=self.base_url,
            timeout=self._timeout,
            max_retries=max_retries,
        )
        # Retried here, against the deadline (see ``_open_stream``), not by the SDK.
        self._once = self._client.with_options(max_retries=0)

    def close(self) -> None:
        """Release the HTTP connections of the SDK client, if this provider built it."""
        if self._owns_client:
            self._client.close()

    def stream(self, request: ModelRequest) -> Iterator[ProviderEvent]:
        """Yield the model's reply as events; raise ``ProviderError`` on failure."""
        params = self.build_params(request)
        try:
            yield from self._stream_with_fallback(params)
        except openai.APIError as err:
            raise self._translate(err, params["model"]) from None
        except ProviderError:  # a 200 that is not SSE, or a chunk that is not JSON
            self._on_error("malformed")
            raise

    def build_params(self, request: ModelRequest) -> dict:
        """Return the keyword arguments of ``chat.completions.create`` for a request."""
        messages = build_messages(request, send_names=self.send_names)
        params: dict = {
            "model": self._model_for(request),
            "messages": trim_messages(messages, self.context_chars),
            "stream": True,
        }
        if self.include_usage:
            params["stream_options"] = {"include_usage": True}
        tools = [tool for tool in request.tools if tool.get("type") == "function"]
        if tools:
            params["tools"] = tools
            params["tool_choice"] = request.tool_choice
            params["parallel_tool_calls"] = request.parallel_tool_calls
        for key in ("temperature", "top_p", "max_completion_tokens"):
            if getattr(request, key) is not None:
                params[key] = getattr(request, key)
        # The Assistants shapes of json_object and json_schema are Chat's own;
        # "auto" and text are what Chat does anyway.
        if isinstance(request.response_format, dict) and request.response_format.get(
            "type"
        ) in ("json_object", "json_schema"):
            params["response_format"] = request.response_format
        return params

    def _model_for(self, request: ModelRequest) -> str:
        """Return the request's model, unless it is empty or the demo placeholder."""
        if request.model and not request.model.startswith("demo"):
            return request.model
        return self.model

    def _stream_with_fallback(self, params: dict) -> Iterator[ProviderEvent]:
        """Stream, retrying once without ``stream_options`` if the server rejects it."""
        try:
            yield from self._stream_chunks(params)
        except (openai.BadRequestError, openai.UnprocessableEntityError) as err:
            # Raised by create(), before any event was yielded: safe to retry.
            if "stream_options" not in params or "stream_options" not in err.message:
                raise
            log.info("Model server rejects stream_options; retrying without it")
            self.include_usage = False  # remember: no second failed call per turn
            params = {k: v for k, v in params.items() if k != "stream_options"}
            yield from self._stream_chunks(params)

    def _stream_chunks(self, params: dict) -> Iterator[ProviderEvent]:
        """Call the model once and map each streamed chunk to events."""
        state = StreamState()
        # The context manager closes the HTTP response when the engine closes this
        # generator (GeneratorExit): that is how a cancelled run stops the model.
        with self._open_stream(params) as chunks:
            _check_is_event_stream(chunks.response.headers.get("content-type", ""))
            for chunk in _decoded(chunks):
                yield from _chunk_events(chunk, state)
        if state.usage is not None:
            yield state.usage

    def _open_stream(self, params: dict):
        """Send the request, retrying as the SDK would, within one deadline.

        Each attempt may wait only what is left of ``call_deadline_s`` (to connect
        and for each read, the stream's included); a retry that could not start
        before the deadline is not made.  When the deadline cuts an attempt
        short, the previous attempt's error is the one reported.
        """
        deadline = time.monotonic() + self.call_deadline_s
        last: openai.APIError | None = None
        for attempt in range(self.max_retries + 1):
            remaining = max(deadline - time.monotonic(), 0.001)
            timeout = httpx2.Timeout(
                min(self.wait_s, remaining), connect=min(self._connect_s, remaining)
            )
            try:
                return self._once.chat.completions.create(**params, timeout=timeout)
            except openai.APITimeoutError as err:
                if remaining < self.wait_s:  # the deadline ended it, not a stall
                    raise last or DeadlinePassed(request=err.request) from None
                last = err
            except openai.APIError as err:
                last = err
            delay = _retry_delay(last, attempt)
            if delay is None or attempt == self.max_retries:
                break
            if time.monotonic() + delay >= deadline:
                log.info("Model call not retried: its deadline would pass first")
                break
            log.info("Model call failed (%s); retrying", type(last).__name__)
            time.sleep(delay)
        assert last is not None  # the loop ran at least once and failed
        raise last

    def _translate(self, err: openai.APIError, model: str) -> ProviderError:
        """Turn an SDK error into a ``ProviderError`` people can read."""
        kind, error = self._classify(err, model)
        status = getattr(err, "status_code", None)
        log.warning(
            "Model call failed (%s): %s (HTTP %s)", kind, type(err).__name__, status
        )
        self._on_error(kind)
        return error

    def _classify(self, err: openai.APIError, model: str) -> tuple[str, ProviderError]:
        """Return the kind of failure and the sentence the room gets."""
        if isinstance(err, openai.RateLimitError):
            return "rate_limit", ProviderError(
                "The model server is rate limiting requests; try again in a moment.",
                "rate_limit_exceeded",
            )
        meaning = error_meaning(err) if isinstance(err, openai.APIStatusError) else None
        if isinstance(err, openai.AuthenticationError) or meaning == "auth":
            return "auth", ProviderError(
                f"The model server rejected the API key ({err_status(err)})."
                " Check OPENAI_API_KEY."
            )
        if meaning == "unknown_model":
            return "unknown_model", _unknown_model(model)
        if isinstance(err, openai.NotFoundError):
            return self._not_found(err, model)
        if isinstance(err, openai.BadRequestError | openai.UnprocessableEntityError):
            return "bad_request", ProviderError(
                self._server_message(err), "invalid_prompt"
            )
        if isinstance(err, DeadlinePassed):
            return "deadline", ProviderError(
                f"The model server did not answer within {self.call_deadline_s:g} s"
                " (MODEL_CALL_DEADLINE_S)."
            )
        if isinstance(err, openai.APITimeoutError):
            return "timeout", ProviderError(
                f"The model stopped responding (no data for {self.wait_s:g} s)."
            )
        if isinstance(err, openai.APIConnectionError):
            return "connection", ProviderError(
                f"Could not reach the model server at {self._host}."
            )
        if isinstance(err, openai.APIStatusError):
            return "server_error", ProviderError(
                f"The model server failed (HTTP {err.status_code})."
            )
        # An error event inside an otherwise successful stream.
        return "stream_error", ProviderError(
            "The model server reported an error while replying."
        )

    def _not_found(
        self, err: openai.NotFoundError, model: str
    ) -> tuple[str, ProviderError]:
        """Tell an unknown model apart from a base URL with no chat endpoint."""
        if err.code == "model_not_found" or model in err.message:
            return "unknown_model", _unknown_model(model)
        return "no_endpoint", ProviderError(
            f"The model server at {self._host} has no chat completions endpoint "
            "(HTTP 404). Check MODEL_BASE_URL."
        )

    def _server_message(self, err: openai.APIError) -> str:
        """Return the server's own error message, short and with no key in it."""
        body = err.body if isinstance(err.body, dict) else {}
        message = str(body.get("message") or err.message)
        if self._api_key:
            message = message.replace(self._api_key, "***")
        message = _KEY_LIKE.sub("sk-***", message)
        return _truncate(f"The model server refused the request: {message}", 300)

    @property
    def _host(self) -> str:
        """Return host[:port] of the base URL, never its credentials or path."""
        parts = urlsplit(self.base_url)
        host = parts.hostname or self.base_url
        return f"{host}:{parts.port}" if parts.port else host


class DeadlinePassed(openai.APITimeoutError):
    """A model call's deadline passed before any attempt got an answer."""


def _unknown_model(model: str) -> ProviderError:
    """Return the sentence for a model the server does not have."""
    return ProviderError(
        f"The model '{model}' was not found on the model server. Check MODEL."
    )


def err_status(err: openai.APIError) -> str:
    """Return the HTTP status of an error as the sentences show it."""
    return str(getattr(err, "status_code", "") or "401")


def error_meaning(err: openai.APIStatusError) -> str | None:
    """Return ``"auth"`` or ``"unknown_model"`` when an error response means a bad
    key or an unknown model in a gateway's words, else None."""
    body = err.body if isinstance(err.body, dict) else {}
    return body_meaning(err.status_code, body, err.message)


def body_meaning(status: int, body: dict, message: str = "") -> str | None:
    """Say what an error body means, whoever sent it (OpenAI, LiteLLM, a proxy).

    ``body`` is the ``error`` object (or the whole JSON body).  Only client errors
    are read: a 5xx that mentions a key is the server's problem, not the key.
    """
    if status not in (400, 401, 403, 404, 422):
        return None
    error = body.get("error", body)
    if not isinstance(error, dict):
        error = {"message": str(error)}
    code, kind = str(error.get("code") or ""), str(error.get("type") or "")
    text = f"{error.get('message') or ''} {message}"
    if code == "model_not_found" or _UNKNOWN_MODEL.search(text):
        return "unknown_model"
    if status == 401 or code in ("invalid_api_key", "401") or kind in _AUTH_TYPES:
        return "auth"
    if _BAD_KEY.search(text):
        return "auth"
    return None


def _retry_delay(err: openai.APIError, attempt: int) -> float | None:
    """Return how long to wait before retrying ``err``, or None if it should not
    be retried (the SDK's rule: connection errors, 408, 409, 429 and 5xx, unless
    the server says ``x-should-retry``)."""
    if isinstance(err, openai.APIStatusError):
        headers = err.response.headers
        should = headers.get("x-should-retry")
        if should == "false":
            return None
        status = err.status_code
        if should != "true" and status not in _RETRY_STATUSES and status < 500:
            return None
        asked = _retry_after(headers)
        if asked is not None:
            return asked
    elif not isinstance(err, openai.APIConnectionError):
        return None
    backoff = min(_FIRST_RETRY_DELAY_S * 2**attempt, _MAX_RETRY_DELAY_S)
    return backoff * (1 - 0.25 * random.random())


def _retry_after(headers) -> float | None:
    """Return the server's requested delay in seconds (``retry-after-ms`` or
    ``retry-after`` in seconds), if it gave a sensible one."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        try:
            value = float(headers.get(name, "")) / scale
        except ValueError:
            continue
        if math.isfinite(value) and 0 < value <= _MAX_RETRY_AFTER_S:
            return value
    return None


# -- Input: the thread as chat messages ----------------------------------------------


def build_messages(request: ModelRequest, *, send_names: bool = False) -> list[dict]:
    """Return the chat messages for a request: instructions, then every turn."""
    messages = []
    if request.instructions:
        messages.append({"role": "system", "content": request.instructions})
    messages.extend(turn_message(turn, send_names=send_names) for turn in request.turns)
    return messages


def turn_message(turn: Turn, *, send_names: bool = False) -> dict:
    """Return the chat message of one turn."""
    if turn.role == "tool":
        return {
            "role": "tool",
            "tool_call_id": turn.tool_call_id,
            "content": turn.content,
        }
    if turn.role == "assistant":
        return _assistant_message(turn)
    message = {"role": "user", "content": speaker_tagged(turn)}
    name = safe_name(turn.speaker or "")
    if send_names and name:
        message["name"] = name
    return message


def _assistant_message(turn: Turn) -> dict:
    """Return an assistant message, with its tool calls when it made any."""
    if not turn.tool_calls:
        return {"role": "assistant", "content": turn.content}
    calls = [
        {
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": call.arguments},
        }
        for call in turn.tool_calls
    ]
    return {"role": "assistant", "content": turn.content or None, "tool_calls": calls}


def speaker_tagged(turn: Turn) -> str:
    """Prefix a user turn with its speaker, so the model can tell people apart."""
    return f"[{turn.speaker}]: {turn.content}" if turn.speaker else turn.content


def safe_name(speaker: str) -> str:
    """Return the speaker as a chat ``name`` (``^[a-zA-Z0-9_-]{1,64}$``), or ""."""
    ascii_name = unicodedata.normalize("NFKD", speaker).encode("ascii", "ignore")
    return _NAME_UNSAFE.sub("_", ascii_name.decode()).strip("_")[:64]


# -- Trimming to the context budget --------------------------------------------------


def trim_messages(messages: list[dict], budget: int) -> list[dict]:
    """Keep the system message and the newest turns whose content fits ``budget``.

    Oldest turns go first; an assistant tool-call message and its tool outputs go
    together; no ``tool`` message is left leading.  The newest user turn and what
    follows it (the current tool round) always stay, the user turn cut to fit.
    """
    system = [m for m in messages[:1] if m["role"] == "system"]
    blocks = _blocks(messages[len(system) :])
    remaining = budget - _size(system)
    last_user = _last_user_block(blocks)
    kept: list[list[dict]] = []
    if last_user is not None:
        tail = blocks[last_user + 1 :]
        remaining -= sum(_size(block) for block in tail)
        user = _truncated_message(blocks[last_user][0], max(remaining, MIN_USER_CHARS))
        remaining -= _size([user])
        kept, blocks = [[user], *tail], blocks[:last_user]
    for block in reversed(blocks):
        if _size(block) > remaining:
            break
        kept.insert(0, block)
        remaining -= _size(block)
    while kept and kept[0][0]["role"] == "tool":
        kept.pop(0)
    return system + [message for block in kept for message in block]


def _blocks(messages: list[dict]) -> list[list[dict]]:
    """Group messages so a tool-call message and its tool outputs stay together."""
    blocks: list[list[dict]] = []
    for message in messages:
        if message["role"] == "tool" and blocks and _opens_tool_round(blocks[-1]):
            blocks[-1].append(message)
        else:
            blocks.append([message])
    return blocks


def _opens_tool_round(block: list[dict]) -> bool:
    """Tell whether a block starts with an assistant message that called tools."""
    return block[0]["role"] == "assistant" and bool(block[0].get("tool_calls"))


def _last_user_block(blocks: list[list[dict]]) -> int | None:
    """Return the index of the newest user message's block, if there is one."""
    for index in range(len(blocks) - 1, -1, -1):
        if blocks[index][0]["role"] == "user":
            return index
    return None


def _size(messages: list[dict]) -> int:
    """Return the characters a list of messages costs: contents and call arguments."""
    total = 0
    for message in messages:
        total += len(message.get("content") or "")
        for call in message.get("tool_calls") or ():
            total += len(call["function"]["arguments"])
    return total


def _truncated_message(message: dict, limit: int) -> dict:
    """Return the message with its content cut to ``limit`` characters."""
    return {**message, "content": _truncate(message["content"], limit)}


def _truncate(text: str, limit: int) -> str:
    """Cut text to ``limit`` characters, marking the cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - len(TRUNCATION_MARK), 0)] + TRUNCATION_MARK


# -- Output: chunks as events --------------------------------------------------------


class StreamState:
    """What one streamed reply has shown so far: announced calls, the usage."""

    def __init__(self) -> None:
        self.ids: dict[int, str] = {}
        self.named: set[int] = set()
        # Some servers repeat the usage on every chunk; the engine wants it once.
        self.usage: Usage | None = None

    def delta(
        self, index: int, call_id: str | None, name: str | None, args: str
    ) -> ToolCallDelta:
        """Return the event for one fragment of call ``index``."""
        new_id = None
        if index not in self.ids:
            # Some local servers omit the id; the engine needs one to match outputs.
            new_id = self.ids[index] = call_id or f"call_{secrets.token_hex(12)}"
        new_name = None
        if name and index not in self.named:
            self.named.add(index)
            new_name = name
        return ToolCallDelta(index=index, arguments=args, id=new_id, name=new_name)


def _check_is_event_stream(content_type: str) -> None:
    """Refuse a 200 that is not SSE (an HTML proxy page, a server ignoring stream)."""
    if "text/event-stream" not in content_type:
        log.warning("Model server answered with content type %s", content_type)
        raise ProviderError(MALFORMED)


def _decoded(chunks: Iterable[ChatCompletionChunk]) -> Iterator[ChatCompletionChunk]:
    """Iterate the SDK stream, turning undecodable data into a ``ProviderError``."""
    try:
        yield from chunks
    except json.JSONDecodeError:
        log.warning("Model server sent a chunk that is not JSON")
        raise ProviderError(MALFORMED) from None


def _chunk_events(chunk: object, state: StreamState) -> list[ProviderEvent]:
    """Map one chunk to events; a chunk of the wrong shape is a ``ProviderError``."""
    try:
        return _events_of(chunk, state)
    except (AttributeError, TypeError, ValueError):
        log.warning("Model server sent a chunk of an unexpected shape")
        raise ProviderError(MALFORMED) from None


def _events_of(chunk: object, state: StreamState) -> list[ProviderEvent]:
    """Map one chunk: text, tool call fragments, finish reason, usage."""
    choices = getattr(chunk, "choices", None)
    usage = getattr(chunk, "usage", None)
    if not isinstance(choices, list) and usage is None:
        raise TypeError("chunk has neither choices nor usage")
    events: list[ProviderEvent] = []
    for choice in (choices or [])[:1]:
        events.extend(_delta_events(choice.delta, state))
        events.extend(_finish_events(choice.finish_reason, state))
    if usage is not None:
        prompt, completion = usage.prompt_tokens or 0, usage.completion_tokens or 0
        state.usage = Usage(int(prompt), int(completion))
    return events


def _delta_events(delta: object, state: StreamState) -> list[ProviderEvent]:
    """Map a choice delta to its text and tool call fragments."""
    if delta is None:
        return []
    events: list[ProviderEvent] = []
    text = getattr(delta, "content", None)
    if text:
        events.append(TextDelta(text))
    for position, call in enumerate(getattr(delta, "tool_calls", None) or ()):
        index = getattr(call, "index", None)
        function = getattr(call, "function", None)
        events.append(
            state.delta(
                position if index is None else int(index),
                getattr(call, "id", None),
                getattr(function, "name", None),
                getattr(function, "arguments", None) or "",
            )
        )
    return events


def _finish_events(reason: str | None, state: StreamState) -> list[Finish]:
    """Map a finish reason; a plain stop needs no event."""
    if reason == "length":
        return [Finish("max_tokens")]
    # Some local servers report "stop" after calling tools.
    if reason == "tool_calls" or (reason == "stop" and state.ids):
        return [Finish("tool_calls")]
    return []

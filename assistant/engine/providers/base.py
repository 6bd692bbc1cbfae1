"""The contract between the engine's run runner and a model provider.

The runner turns a thread (messages plus past tool calls) into a ``ModelRequest``,
iterates ``provider.stream(request)`` and maps each ``ProviderEvent`` onto the
Assistants wire events of the run.  Closing the iterator early (``.close()``) must
abort the model call: that is how a cancelled run stops generating.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal
from typing import Protocol


@dataclass(frozen=True)
class ToolCall:
    """A function call the model made, with its complete JSON arguments."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Turn:
    """One entry of the conversation the model sees, oldest first.

    ``user``: ``content`` is what the person typed; ``speaker`` is their display name
    (from the message metadata ``name``), which the provider uses to tag the turn.
    ``assistant``: ``content`` is the reply text; ``tool_calls`` the calls it made.
    ``tool``: ``content`` is the output of the call ``tool_call_id``.
    """

    role: Literal["user", "assistant", "tool"]
    content: str = ""
    speaker: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None


@dataclass(frozen=True)
class ModelRequest:
    """Everything a provider needs to produce the next assistant output."""

    model: str
    instructions: str
    turns: tuple[Turn, ...]
    tools: tuple[dict, ...] = ()  # wire shape: {"type": "function", "function": {...}}
    temperature: float | None = None
    top_p: float | None = None
    # What this call may still write: the run's max_completion_tokens less what its
    # earlier model calls wrote.
    max_completion_tokens: int | None = None
    # "none", "auto", "required" or {"type": "function", "function": {"name": …}};
    # a call that follows tool outputs gets "auto", so a forced call is made once.
    tool_choice: str | dict = "auto"
    parallel_tool_calls: bool = True
    # "auto", {"type": "text"}, {"type": "json_object"} or
    # {"type": "json_schema", "json_schema": {"name": …, "schema": {…}, …}}.
    response_format: str | dict = "auto"


@dataclass(frozen=True)
class TextDelta:
    """A fragment of the assistant's reply text."""

    text: str


@dataclass(frozen=True)
class ToolCallDelta:
    """A fragment of function call number ``index``.

    The first fragment of an index carries ``id`` and ``name``; later ones carry only
    ``arguments`` fragments, which concatenate to the full JSON arguments.
    """

    index: int
    arguments: str = ""
    id: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class Usage:
    """Token counts for the model call, reported once, usually last."""

    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class Finish:
    """Why the model stopped, when it is not a plain stop (e.g. the token limit)."""

    reason: Literal["stop", "tool_calls", "max_tokens"]


ProviderEvent = TextDelta | ToolCallDelta | Usage | Finish


def count_tokens(text: str) -> int:
    """Return a rough, model-independent token count of text: its words."""
    return len(text.split())


def estimate_prompt_tokens(instructions: str, turns: tuple[Turn, ...]) -> int:
    """Return the rough token count of a model input (the demo model's exact one).

    The engine checks ``max_prompt_tokens`` against this before a model call, as
    it cannot know a real model's tokenizer; the model's own usage is what counts
    once the call is made.
    """
    return count_tokens(instructions) + sum(count_tokens(t.content) for t in turns)


class ProviderError(Exception):
    """A model call failed; becomes the run's ``last_error``.

    ``code`` is one of the wire's ``last_error`` codes: ``server_error``,
    ``rate_limit_exceeded`` or ``invalid_prompt``.  ``message`` is shown to people,
    so it is a plain sentence and never contains a secret.
    """

    def __init__(self, message: str, code: str = "server_error") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class Provider(Protocol):
    """Produces the assistant's next output for a request, as a stream of events."""

    name: str

    def stream(self, request: ModelRequest) -> Iterator[ProviderEvent]:
        """Yield events as the model makes them; raise ``ProviderError`` on errors."""
        ...

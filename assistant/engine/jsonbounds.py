"""Parse untrusted JSON with a bound on how deeply it nests.

Python's ``json`` parser recurses once per level of nesting, so ten thousand ``[``
raise ``RecursionError`` (an HTTP 500, a dropped Socket.IO frame) instead of the
``ValueError`` every caller handles.  Counting the depth first, in linear time and
without recursion, turns such input into an ordinary ``ValueError`` before the
parser starts.

The engine owns this module because it must not import the app's modules; the
app's HTTP routes and Socket.IO frames use it too.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

from flask.json.provider import DefaultJSONProvider

MAX_DEPTH = 64  # HTTP bodies; a function tool's JSON schema nests deepest of all

# A JSON string, escapes included (unrolled, so it never backtracks).
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class JSONTooDeep(ValueError):
    """JSON that nests deeper than allowed."""

    def __init__(self, max_depth: int) -> None:
        super().__init__(f"JSON may nest at most {max_depth} levels deep.")
        self.max_depth = max_depth


def as_text(data: str | bytes | bytearray) -> str:
    """Decode JSON bytes the way ``json.loads`` does (UTF-8, -16 or -32)."""
    if isinstance(data, str):
        return data
    return bytes(data).decode(json.detect_encoding(data), "surrogatepass")


def nesting_depth(text: str) -> int:
    """Return how deeply the arrays and objects of ``text`` nest.

    Strings are dropped first, so brackets inside them do not count.  Where
    ``text`` is valid JSON this is exact; where it is not, the parser stops at the
    first error, before any depth this count missed.
    """
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def check_depth(data: str | bytes | bytearray, max_depth: int) -> str:
    """Return ``data`` as text; raise ``JSONTooDeep`` if it nests too deeply."""
    text = as_text(data)
    if nesting_depth(text) > max_depth:
        raise JSONTooDeep(max_depth)
    return text


def loads(data: str | bytes | bytearray, max_depth: int = MAX_DEPTH, **kwargs) -> Any:
    """Parse JSON like ``json.loads``, refusing nesting deeper than ``max_depth``."""
    return json.loads(check_depth(data, max_depth), **kwargs)


class BoundedJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider, with request bodies parsed by the bounded ``loads``.

    ``request.get_json`` handles a ``ValueError`` (a 400, or ``None`` when silent),
    so a too-deep body is refused like any other malformed one.
    """

    max_depth = MAX_DEPTH

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        """Parse JSON, refusing nesting deeper than ``max_depth``."""
        return loads(s, self.max_depth, **kwargs)

"""The function tools the assistant can call, and the registry that runs them.

``ToolRegistry.call`` never raises: whatever goes wrong (unknown tool, bad JSON,
bad arguments, a tool crashing) comes back as a JSON ``{"error": "..."}`` output,
so the model can read it and recover instead of the run dying.
"""

from __future__ import annotations

import ast
import functools
import json
import logging
import math
import operator
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from assistant.engine.validation import JSON_TYPES
from assistant.engine.validation import is_kind
from assistant.timezones import zone_key

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

DATA_DIR = Path(__file__).resolve().parent / "data"
CATS_PATH = "static/cats/"  # relative to the page, so a sub-path works too

LOG_PREVIEW_CHARS = 200


class ToolError(Exception):
    """A tool could not do what was asked; the message is shown to the model."""


@dataclass(frozen=True)
class Tool:
    """A function the model may call, described by a JSON schema."""

    name: str
    description: str
    parameters: dict[str, Any]
    func: Callable[..., Any]
    status_label: str | None = None

    def definition(self) -> dict[str, Any]:
        """Return the tool in the wire shape the model API expects."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
                "strict": False,
            },
        }


class ToolRegistry:
    """The tools available to a run, looked up and called by name."""

    def __init__(self) -> None:
        self._tools: dict[str, Tool] = {}

    def register(self, tool: Tool) -> None:
        """Add a tool; a second tool with the same name is a programming error."""
        if tool.name in self._tools:
            raise ValueError(f"tool {tool.name!r} is already registered")
        self._tools[tool.name] = tool

    def get(self, name: str) -> Tool | None:
        """Return the tool called ``name``, or None."""
        return self._tools.get(name)

    def definitions(self) -> list[dict[str, Any]]:
        """Return every tool's wire definition, in registration order."""
        return [tool.definition() for tool in self._tools.values()]

    def label(self, name: str) -> str:
        """Return the short status phrase the UI shows while the tool runs."""
        tool = self._tools.get(name)
        if tool is None:
            return "Using a tool…"
        return tool.status_label or f"Using {tool.name}…"

    def call(self, name: str, arguments: str) -> str:
        """Run the tool ``name`` with JSON ``arguments`` and return its output text."""
        tool = self._tools.get(name)
        if tool is None:
            return error_output(f"Unknown tool {name!r}.")
        try:
            args = parse_arguments(arguments)
            validate_arguments(args, tool.parameters)
            result = tool.func(**args)
            return result if isinstance(result, str) else to_json(result)
        except ToolError as exc:
            return error_output(str(exc))
        except Exception:
            # A broken tool must not kill the run: the model gets an error output.
            log.exception("Tool %s failed (arguments: %s)", name, preview(arguments))
            return error_output(f"The tool {name!r} failed unexpectedly.")


def error_output(message: str) -> str:
    """Return the JSON error output the model sees."""
    return to_json({"error": message})


def to_json(value: Any) -> str:
    """Encode a tool result as compact JSON text."""
    return json.dumps(value, ensure_ascii=False)


def preview(text: str) -> str:
    """Shorten ``text`` for logs so arguments never land there in full."""
    text = str(text)
    if len(text) <= LOG_PREVIEW_CHARS:
        return text
    return text[:LOG_PREVIEW_CHARS] + "…"


def parse_arguments(arguments: str) -> dict[str, Any]:
    """Decode the model's JSON arguments into a dict."""
    # Models send "" (not "{}") for tools without parameters.
    text = (arguments or "").strip() or "{}"
    try:
        args = json.loads(text)
    except (json.JSONDecodeError, TypeError) as exc:
        raise ToolError(f"Arguments are not valid JSON: {exc}") from None
    if not isinstance(args, dict):
        raise ToolError("Arguments must be a JSON object.")
    return args


def has_json_type(value: Any, kind: str) -> bool:
    """Tell whether a decoded JSON value has a schema type; unknown types pass."""
    return kind not in JSON_TYPES or is_kind(value, kind)


def validate_arguments(args: dict[str, Any], schema: dict[str, Any]) -> None:
    """Check ``args`` against the schema's required names, property types and enums."""
    properties = schema.get("properties", {})
    missing = [key for key in schema.get("required", []) if key not in args]
    unknown = [key for key in args if key not in properties]
    if missing:
        raise ToolError(f"Missing required argument(s): {', '.join(missing)}.")
    if unknown:
        raise ToolError(f"Unknown argument(s): {', '.join(unknown)}.")
    for key, value in args.items():
        validate_value(key, value, properties[key])


def validate_value(key: str, value: Any, spec: dict[str, Any]) -> None:
    """Check one argument against its property schema."""
    types = spec.get("type")
    if isinstance(types, str):
        types = [types]
    if types and not any(has_json_type(value, t) for t in types):
        raise ToolError(f"Argument {key!r} must be of type {' or '.join(types)}.")
    if "enum" in spec and value not in spec["enum"]:
        allowed = ", ".join(json.dumps(v) for v in spec["enum"])
        raise ToolError(f"Argument {key!r} must be one of: {allowed}.")


def utc_now() -> datetime:
    """Return the current time, timezone-aware in UTC."""
    return datetime.now(UTC)


# --- get_current_time -------------------------------------------------------------


def resolve_zone(name: str) -> zoneinfo.ZoneInfo:
    """Return the zone for an IANA name, alias or city, case-insensitively."""
    key = zone_key(name)
    try:
        return zoneinfo.ZoneInfo(key or name.strip())
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        # ValueError: keys like "../x" that are not valid zone paths at all.
        raise ToolError(
            f"Unknown timezone {name!r}. Use an IANA name such as "
            "'Europe/London' or 'Asia/Tokyo', or 'UTC'."
        ) from None


def format_offset(moment: datetime) -> str:
    """Format a datetime's UTC offset as ``+09:00``."""
    offset = moment.utcoffset() or timedelta(0)  # a naive time counts as UTC
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


def get_current_time(timezone: str, *, clock: Clock = utc_now) -> dict[str, str]:
    """Return the current local time and date in ``timezone``."""
    zone = resolve_zone(timezone)
    now = clock()
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)  # a naive clock is taken to mean UTC
    local = now.astimezone(zone)
    return {
        "timezone": zone.key,
        "iso": local.isoformat(timespec="seconds"),
        "time": f"{local:%H:%M}",
        "date": f"{local:%A}, {local.day} {local:%B %Y}",
        "utc_offset": format_offset(local),
    }


# --- calculate --------------------------------------------------------------------

MAX_EXPRESSION_CHARS = 200
MAX_EXPONENT = 1000
MAX_RESULT_DIGITS = 1000
# An int with more bits than this has more than MAX_RESULT_DIGITS decimal digits.
MAX_RESULT_BITS = int(MAX_RESULT_DIGITS / math.log10(2))
MAX_ROUND_DIGITS = 15

_BINARY_OPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY_OPS: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}
_CONSTANTS = {"pi": math.pi, "e": math.e}


def _round(value: float, ndigits: int = 0) -> float:
    """Round like ``round``, refusing digit counts that make big-int work."""
    if not isinstance(ndigits, int) or abs(ndigits) > MAX_ROUND_DIGITS:
        limit = MAX_ROUND_DIGITS
        raise ToolError(f"round() digits must be an integer within ±{limit}.")
    return round(value, ndigits) if ndigits else round(value)


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "sqrt": math.sqrt,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "log": math.log,
    "exp": math.exp,
    "abs": abs,
    "round": _round,
    "min": min,
    "max": max,
}


def _check_size(value: Any) -> Any:
    """Refuse results too large to be useful or safe to keep computing with."""
    if isinstance(value, int) and value.bit_length() > MAX_RESULT_BITS:
        raise ToolError(f"The result has more than {MAX_RESULT_DIGITS} digits.")
    if isinstance(value, complex):
        # (-8) ** 0.5 is complex in Python; this is a real-number calculator.
        raise ToolError("The result is not a real number.")
    if isinstance(value, float) and not math.isfinite(value):
        raise ToolError("The result is too large to represent.")
    return value


def _power(base: Any, exponent: Any) -> Any:
    """Raise to a power after checking the result cannot explode."""
    if abs(exponent) > MAX_EXPONENT:
        raise ToolError(f"Exponents larger than {MAX_EXPONENT} are not allowed.")
    # Estimate the size before computing: 999**999 would already be too big.
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0:
        if (abs(base).bit_length() - 1) * exponent > MAX_RESULT_BITS:
            raise ToolError(f"The result has more than {MAX_RESULT_DIGITS} digits.")
    return base**exponent


def _eval_node(node: ast.AST) -> Any:
    """Evaluate one node of the allowed arithmetic grammar."""
    if isinstance(node, ast.Expression):
        return _eval_node(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return _check_size(node.value)  # 1e999 parses as inf
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY_OPS:
        return _UNARY_OPS[type(node.op)](_eval_node(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY_OPS:
        return _eval_binop(node)
    if isinstance(node, ast.Call):
        return _eval_call(node)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitXor):
        raise ToolError("Use ** for powers (^ is not supported).")
    if isinstance(node, ast.Name):
        raise ToolError(f"Unknown name {node.id!r}.")
    raise ToolError(f"Unsupported syntax: {type(node).__name__}.")


def _eval_binop(node: ast.BinOp) -> Any:
    """Evaluate an arithmetic operator with its size guards."""
    left, right = _eval_node(node.left), _eval_node(node.right)
    if isinstance(node.op, ast.Pow):
        return _check_size(_power(left, right))
    return _check_size(_BINARY_OPS[type(node.op)](left, right))


def _eval_call(node: ast.Call) -> Any:
    """Evaluate a call to one of the allowed math functions."""
    if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
        raise ToolError(f"Unsupported function call: {ast.unparse(node.func)[:40]}.")
    if node.keywords:
        raise ToolError("Keyword arguments are not supported.")
    args = [_eval_node(arg) for arg in node.args]
    try:
        return _check_size(_FUNCTIONS[node.func.id](*args))
    except TypeError:
        raise ToolError(f"Wrong arguments for {node.func.id}().") from None


def _tidy(value: Any) -> int | float:
    """Keep ints exact and round floats to 12 significant digits."""
    if isinstance(value, float):
        return float(f"{value:.12g}")
    return value


def calculate(expression: str) -> dict[str, Any]:
    """Evaluate an arithmetic expression safely, without ``eval``."""
    expression = expression.strip()
    if not expression:
        raise ToolError("The expression is empty.")
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ToolError(
            f"Expressions are limited to {MAX_EXPRESSION_CHARS} characters."
        )
    try:
        tree = ast.parse(expression, mode="eval")
        result = _eval_node(tree)
    except SyntaxError:
        raise ToolError("The expression is not valid arithmetic.") from None
    except ZeroDivisionError:
        raise ToolError("Division by zero.") from None
    except OverflowError:
        raise ToolError("The result is too large to represent.") from None
    except ValueError as exc:
        # math domain errors, e.g. sqrt(-1) or log(0).
        raise ToolError(f"Cannot compute that: {exc}.") from None
    except (RecursionError, MemoryError):
        raise ToolError("The expression is too complex.") from None
    return {"expression": expression, "result": _tidy(result)}


# --- cat of the day ---------------------------------------------------------------


@functools.cache
def load_data(filename: str) -> list[Any]:
    """Load one of the JSON lists the app ships in ``assistant/data``."""
    with (DATA_DIR / filename).open(encoding="utf-8") as f:
        return json.load(f)


def pick_for_date(items: list[Any], when: datetime) -> Any:
    """Pick the same item for every call on one date (day-of-year index)."""
    return items[(when.timetuple().tm_yday - 1) % len(items)]


def get_daily_cat_trivia(*, clock: Clock = utc_now) -> dict[str, str]:
    """Return today's cat fact."""
    today = clock()
    trivia = pick_for_date(load_data("cat_trivia.json"), today)
    return {"date": today.date().isoformat(), "trivia": trivia}


def get_cat_picture_of_the_day(
    *, clock: Clock = utc_now, public_url: str = ""
) -> dict[str, str]:
    """Return today's cat picture: its title, description and URL (absolute under
    ``public_url`` when set, so clients on other origins can load it; else
    relative to the page)."""
    today = clock()
    picture = pick_for_date(load_data("cat_pictures.json"), today)
    return {
        "date": today.date().isoformat(),
        "title": picture["title"],
        "description": picture["description"],
        "url": urljoin(public_url.rstrip("/") + "/", CATS_PATH) + picture["file"]
        if public_url
        else CATS_PATH + picture["file"],
    }


# --- the default set ----------------------------------------------------------------

NO_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}, "required": []}


def default_registry(clock: Clock = utc_now, public_url: str = "") -> ToolRegistry:
    """Build a registry with the built-in tools, reading "now" from ``clock`` and
    linking pictures under ``public_url`` (see ``get_cat_picture_of_the_day``)."""
    registry = ToolRegistry()
    registry.register(
        Tool(
            name="get_current_time",
            description=(
                "Get the current local time and date in a timezone. Accepts an IANA "
                "name like 'Europe/Paris', 'UTC', or a major city like 'Tokyo'."
            ),
            parameters={
                "type": "object",
                "properties": {
                    "timezone": {
                        "type": "string",
                        "description": "IANA timezone name, 'UTC', or a city name.",
                    }
                },
                "required": ["timezone"],
            },
            func=functools.partial(get_current_time, clock=clock),
            status_label="Checking the time…",
        )
    )
    registry.register(
        Tool(
            name="calculate",
            description=(
                "Evaluate an arithmetic expression exactly. Supports + - * / // % **, "
                "parentheses, pi, e, and sqrt, sin, cos, tan (radians), log, exp, "
                "abs, round, min, max. Use it instead of doing arithmetic in your head."
            ),
            parameters={
                "type": "object",
                "properties": {
                    "expression": {
                        "type": "string",
                        "description": "The expression, e.g. '(2 + 3) * sqrt(16)'.",
                    }
                },
                "required": ["expression"],
            },
            func=calculate,
            status_label="Calculating…",
        )
    )
    registry.register(
        Tool(
            name="get_daily_cat_trivia",
            description="Get today's cat trivia: one true fact about cats per day.",
            parameters=NO_PARAMETERS,
            func=functools.partial(get_daily_cat_trivia, clock=clock),
            status_label="Looking up cat trivia…",
        )
    )
    registry.register(
        Tool(
            name="get_cat_picture_of_the_day",
            description=(
                "Get today's cat picture: a title, a short description and the "
                "image's URL on this site."
            ),
            parameters=NO_PARAMETERS,
            func=functools.partial(
                get_cat_picture_of_the_day, clock=clock, public_url=public_url
            ),
            status_label="Fetching the cat picture of the day…",
        )
    )
    return registry

"""The tool registry and the built-in tools, called the way a run calls them."""

import json
import logging
from datetime import UTC
from datetime import datetime
from pathlib import Path

import pytest

from assistant.tools import Tool
from assistant.tools import ToolRegistry
from assistant.tools import default_registry

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
FIXED_NOW = datetime(2026, 11, 27, 5, 5, 30, tzinfo=UTC)


@pytest.fixture
def registry() -> ToolRegistry:
    """Build the default registry on a fixed clock."""
    return default_registry(clock=lambda: FIXED_NOW)


def call(registry: ToolRegistry, name: str, **arguments) -> dict:
    """Call a tool with keyword arguments and decode its JSON output."""
    return json.loads(registry.call(name, json.dumps(arguments)))


def calc(registry: ToolRegistry, expression: str) -> dict:
    """Evaluate an expression with the calculate tool."""
    return call(registry, "calculate", expression=expression)


def on_day(day: datetime) -> ToolRegistry:
    """Build the default registry frozen at ``day``."""
    return default_registry(clock=lambda: day)


def test_definitions_have_the_wire_shape(registry):
    definitions = registry.definitions()
    names = [d["function"]["name"] for d in definitions]
    assert names == [
        "get_current_time",
        "calculate",
        "get_daily_cat_trivia",
        "get_cat_picture_of_the_day",
    ]
    for definition in definitions:
        assert definition["type"] == "function"
        assert set(definition["function"]) == {
            "name",
            "description",
            "parameters",
            "strict",
        }
        assert definition["function"]["strict"] is False
        assert definition["function"]["parameters"]["type"] == "object"


def test_clock_is_not_part_of_any_schema(registry):
    for definition in registry.definitions():
        assert "clock" not in json.dumps(definition["function"]["parameters"])


def test_labels(registry):
    assert registry.label("get_current_time") == "Checking the time…"
    assert registry.label("calculate") == "Calculating…"
    assert registry.label("get_daily_cat_trivia") == "Looking up cat trivia…"
    assert registry.label("nope") == "Using a tool…"


def test_time_in_a_known_zone(registry):
    assert call(registry, "get_current_time", timezone="Asia/Tokyo") == {
        "timezone": "Asia/Tokyo",
        "iso": "2026-11-27T14:05:30+09:00",
        "time": "14:05",
        "date": "Friday, 27 November 2026",
        "utc_offset": "+09:00",
    }


def test_time_with_a_negative_offset(registry):
    result = call(registry, "get_current_time", timezone="America/New_York")
    assert result["utc_offset"] == "-05:00"
    assert result["date"] == "Friday, 27 November 2026"
    assert result["time"] == "00:05"


@pytest.mark.parametrize(
    ("alias", "zone"),
    [
        ("utc", "UTC"),
        ("UTC", "UTC"),
        ("Tokyo", "Asia/Tokyo"),
        ("tokyo", "Asia/Tokyo"),
        ("asia/tokyo", "Asia/Tokyo"),
        ("New York", "America/New_York"),
        ("San Francisco", "America/Los_Angeles"),
    ],
)
def test_time_aliases(registry, alias, zone):
    assert call(registry, "get_current_time", timezone=alias)["timezone"] == zone


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "../../etc/passwd", ""])
def test_unknown_zone_is_an_error_with_an_example(registry, name):
    error = call(registry, "get_current_time", timezone=name)["error"]
    assert "Unknown timezone" in error
    assert "Europe/London" in error


@pytest.mark.parametrize(
    ("expression", "result"),
    [
        ("2+3*4", 14),
        ("(2+3)*4", 20),
        ("-(2 + 3) ** 2", -25),
        ("7 // 2 + 7 % 2", 4),
        ("2 ** 10", 1024),
        ("0.1 + 0.2", 0.3),
        ("1 / 3", 0.333333333333),
        ("sqrt(16) + abs(-2)", 6.0),
        ("round(pi, 2)", 3.14),
        ("max(1, 5, 3) - min(4, 2)", 3),
        ("log(e) + cos(0) + sin(0) + tan(0) + exp(0)", 3.0),
    ],
)
def test_calculate(registry, expression, result):
    assert calc(registry, expression) == {"expression": expression, "result": result}


def test_calculate_keeps_big_ints_exact(registry):
    assert calc(registry, "2 ** 100")["result"] == 2**100


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("1 / 0", "Division by zero"),
        ("5 % 0", "Division by zero"),
        ("sqrt(-1)", "Cannot compute"),
        ("(-8) ** 0.5", "not a real number"),
        ("2 ** 10000", "Exponents larger than"),
        ("9 ** 999 * 9 ** 999 * 9 ** 999", "more than 1000 digits"),
        ("999 ** 999", "more than 1000 digits"),
        ("10.0 ** 400", "too large"),
        ("exp(1000)", "too large"),
        ("10 ** 999 / 3", "too large"),
        ("1e999", "too large"),
        ("round(123, -100000000)", "round() digits"),
        ("1" * 201, "limited to 200"),
        ("2 ^ 3", "Use **"),
        ("2 +", "not valid arithmetic"),
        ("", "empty"),
    ],
)
def test_calculate_errors(registry, expression, message):
    assert message in calc(registry, expression)["error"]


@pytest.mark.parametrize(
    "expression",
    [
        "__import__('os')",
        "().__class__",
        "(1).__class__.__bases__",
        "open('x')",
        "x",
        "'a' * 3",
        "[1, 2]",
        "lambda: 1",
        "sqrt(x=4)",
        "True + 1",
    ],
)
def test_calculate_refuses_anything_outside_the_allow_list(registry, expression):
    assert "error" in calc(registry, expression)


def test_trivia_is_fixed_per_date_and_changes_across_days():
    day1, day2 = FIXED_NOW, FIXED_NOW.replace(day=28)
    first = call(on_day(day1), "get_daily_cat_trivia")
    assert first == call(on_day(day1.replace(hour=23)), "get_daily_cat_trivia")
    assert first["date"] == "2026-11-27"
    assert first["trivia"]
    assert call(on_day(day2), "get_daily_cat_trivia")["trivia"] != first["trivia"]


def test_picture_is_fixed_per_date_and_ships_with_the_app(registry):
    picture = call(registry, "get_cat_picture_of_the_day")
    assert picture == call(registry, "get_cat_picture_of_the_day")
    assert picture["date"] == "2026-11-27"
    assert picture["title"] and picture["description"]
    assert picture["url"].startswith("static/cats/")  # relative to the page
    assert (STATIC_DIR / picture["url"].removeprefix("static/")).is_file()


def test_picture_links_are_absolute_under_the_public_url():
    registry = default_registry(
        clock=lambda: FIXED_NOW, public_url="https://chat.example.org/team"
    )
    url = call(registry, "get_cat_picture_of_the_day")["url"]
    assert url.startswith("https://chat.example.org/team/static/cats/")


def test_every_listed_picture_is_a_small_titled_svg():
    for day in range(1, 4):
        url = call(on_day(FIXED_NOW.replace(day=day)), "get_cat_picture_of_the_day")
        svg = STATIC_DIR / url["url"].removeprefix("static/")
        assert svg.stat().st_size < 4096
        assert "<title" in svg.read_text(encoding="utf-8")


def test_no_argument_tools_accept_an_empty_string(registry):
    assert "trivia" in json.loads(registry.call("get_daily_cat_trivia", ""))


def test_unknown_tool_is_an_error(registry):
    assert "Unknown tool" in json.loads(registry.call("rm_rf", "{}"))["error"]


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]", "null"])
def test_malformed_arguments_are_an_error(registry, arguments):
    assert "error" in json.loads(registry.call("calculate", arguments))


def test_missing_argument_is_an_error(registry):
    assert "Missing required" in call(registry, "get_current_time")["error"]


def test_wrong_type_is_an_error(registry):
    error = call(registry, "calculate", expression=42)["error"]
    assert "must be of type string" in error


def test_extra_argument_is_an_error(registry):
    error = call(registry, "get_current_time", timezone="UTC", clock="x")["error"]
    assert "Unknown argument" in error


def test_enum_and_types_are_checked():
    registry = ToolRegistry()
    schema = {
        "type": "object",
        "properties": {
            "unit": {"type": "string", "enum": ["c", "f"]},
            "count": {"type": "integer"},
        },
        "required": ["unit"],
    }
    registry.register(Tool("convert", "Convert.", schema, lambda unit, count=1: unit))
    assert registry.call("convert", '{"unit": "c", "count": 2}') == "c"
    assert "one of" in json.loads(registry.call("convert", '{"unit": "k"}'))["error"]
    bad_count = registry.call("convert", '{"unit": "c", "count": true}')
    assert "integer" in json.loads(bad_count)["error"]


def test_tool_raising_is_an_error_output_and_logged(caplog):
    def explode() -> str:
        raise RuntimeError("boom")

    registry = ToolRegistry()
    registry.register(Tool("explode", "Fail.", {"type": "object"}, explode))
    with caplog.at_level(logging.ERROR, logger="assistant.tools"):
        output = registry.call("explode", "{}")
    assert "failed unexpectedly" in json.loads(output)["error"]
    assert "boom" in caplog.text


def test_logged_arguments_are_truncated(caplog):
    def explode(text: str) -> str:
        raise RuntimeError("boom")

    schema = {"type": "object", "properties": {"text": {"type": "string"}}}
    registry = ToolRegistry()
    registry.register(Tool("explode", "Fail.", schema, explode))
    with caplog.at_level(logging.ERROR, logger="assistant.tools"):
        registry.call("explode", json.dumps({"text": "x" * 5000}))
    assert "x" * 200 not in caplog.text


def test_non_string_results_are_json_encoded():
    registry = ToolRegistry()
    registry.register(Tool("nums", "Numbers.", {"type": "object"}, lambda: [1, 2]))
    assert registry.call("nums", "{}") == "[1, 2]"


def test_duplicate_names_are_refused():
    registry = ToolRegistry()
    tool = Tool("t", "T.", {"type": "object"}, lambda: "ok")
    registry.register(tool)
    with pytest.raises(ValueError):
        registry.register(tool)

"""The same Assistants v2 scenario through openai-node, the other official SDK.

The test installs the pinned openai-node (tests/js_sdk/package.json) with npm into
tests/js_sdk/node_modules (git-ignored) and runs tests/js_sdk/scenario.mjs against
the engine served over real HTTP.  It is skipped, with a hint, where Node.js or
npm is missing or the npm registry cannot be reached; the app never needs Node.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading

import pytest
from werkzeug.serving import make_server

from assistant.engine import create_api
from tests.live_server import ROOT

pytest_plugins = ["engine_fixtures"]

JS_DIR = ROOT / "tests" / "js_sdk"
NODE_HINT = (
    "needs Node.js and npm (Node 22 or newer, as openai-node asks) to check the"
    " engine with openai-node; the app itself never needs Node"
)


def installed_sdk() -> None:
    """Install the pinned openai-node once, or skip the test saying why."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip(NODE_HINT)
    wanted = json.loads((JS_DIR / "package.json").read_text())["dependencies"]
    installed = JS_DIR / "node_modules" / "openai" / "package.json"
    if (
        installed.exists()
        and json.loads(installed.read_text())["version"] == (wanted["openai"])
    ):
        return
    done = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        pytest.skip(f"npm install failed ({done.stderr.strip()[-300:]}); {NODE_HINT}")


@pytest.fixture
def base_url(engine):
    """Serve the engine's API, with a key, on a free loopback port."""
    server = make_server("127.0.0.1", 0, create_api(engine, api_key="secret"), True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()
    thread.join()


def run_scenario(base_url: str) -> dict:
    """Run scenario.mjs against ``base_url`` and return what it printed."""
    env = {**os.environ, "ENGINE_BASE_URL": base_url, "ENGINE_API_KEY": "secret"}
    done = subprocess.run(
        ["node", "scenario.mjs"],
        cwd=JS_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_openai_node_runs_the_whole_surface(base_url):
    installed_sdk()
    seen = run_scenario(base_url)
    first, spare = seen["assistantIds"]
    assert seen["assistantsListed"] == [spare, first]  # paged one by one
    assert seen["threadMetadata"] == {"room": "den"}
    assert seen["questionText"] == "what time is it in Tokyo?"
    assert seen["messageMetadata"] == {"name": "Ann", "seen": "1"}
    assert seen["waitingStatus"] == "requires_action"
    assert seen["callArguments"] == {"timezone": "Asia/Tokyo"}
    assert seen["busyCode"] == "run_active"
    assert seen["doneStatus"] == "completed" and seen["doneUsage"]["total_tokens"]
    assert seen["stepTypes"] == ["message_creation", "tool_calls"]
    assert seen["toolOutput"] == "09:30"
    assert seen["runsListed"] == [seen["doneId"]]
    assert seen["runMetadata"] == {"k": "v"}
    assert seen["truncated"] == {
        "status": "incomplete",
        "reason": "max_completion_tokens",
        "words": 256,
    }
    assert seen["jsonReply"]["status"] == "completed"
    assert set(seen["jsonReply"]["reply"]) == {"reply"}
    assert seen["createAndRunStatus"] == "queued"
    assert seen["createAndRunPoll"] == {
        "status": "requires_action",
        "call": "get_current_time",
    }
    assert seen["createAndRunStream"] == {
        "status": "completed",
        "first": ["thread.created", "thread.run.created", "thread.run.queued"],
    }
    assert seen["messageDeleted"] and seen["assistantDeleted"]
    assert seen["threadDeleted"]

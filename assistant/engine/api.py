"""The engine's WSGI app: the Assistants API routes under ``/v1``, JSON and SSE.

Every error leaves as OpenAI's JSON error body, never an HTML page, and with
``x-should-retry: false``: the SDK retries 5xx without an idempotency key, so a
retried POST would create a second run.
"""

from __future__ import annotations

import hmac
import logging
import re
from typing import Any

from flask import Blueprint
from flask import Flask
from flask import Response
from flask import current_app
from flask import jsonify
from flask import request
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import RequestEntityTooLarge

from web import sse

from . import validation as v
from .engine import Engine
from .engine import RunReply
from .errors import EngineError
from .jsonbounds import BoundedJSONProvider
from .store import StoreBusyError

log = logging.getLogger(__name__)

bp = Blueprint("assistants_api", __name__)

SERVER_ERROR = (
    "The server had an error processing your request. Sorry about that! You can retry"
    " your request, or contact us through our help center at help.openai.com if you"
    " keep seeing this error."
)
STORE_BUSY = (
    "The server's database is busy (locked by another connection). Please try"
    " again in a moment."
)
# Room for a message at the 256,000-character cap even when every character is
# sent as an escaped surrogate pair (12 bytes), plus the rest of the body.
MAX_BODY_BYTES = 4 * 1024 * 1024
# RFC 7240's ``wait`` preference, among others: ``Prefer: respond-async, wait=10``.
PREFER_WAIT = re.compile(r"(?:^|[,;\s])wait\s*=\s*\"?(\d{1,9})\b", re.IGNORECASE)
NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an"
    " Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)


def create_api(
    engine: Engine, api_key: str | None = None, *, prefix: str = "/v1"
) -> Flask:
    """Create the WSGI app over ``engine``; with ``api_key``, require it as Bearer.

    :param prefix: where the routes start; ``""`` for an app mounted at ``/v1`` by a
        dispatcher (which moves ``/v1`` into ``SCRIPT_NAME``).
    """
    app = Flask(__name__)
    app.json = BoundedJSONProvider(app)  # too deep: "could not parse", not a 500
    app.extensions["assistants_engine"] = engine
    app.config["ENGINE_API_KEY"] = api_key
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.register_blueprint(bp, url_prefix=prefix)
    app.register_error_handler(EngineError, engine_error)
    app.register_error_handler(StoreBusyError, store_busy)
    app.register_error_handler(RequestEntityTooLarge, too_large)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unexpected_error)
    if api_key:
        app.before_request(check_api_key)
    return app


def get_engine() -> Engine:
    """Return the engine of the current app."""
    return current_app.extensions["assistants_engine"]


# Errors and authentication ----------------------------------------------------


def error_response(error: EngineError) -> Response:
    """Return an error as a JSON response that the SDK does not retry."""
    response = jsonify(error.body())
    response.status_code = error.status
    response.headers["x-should-retry"] = "false"
    return response


def engine_error(error: EngineError) -> Response:
    """Answer an ``EngineError`` with its JSON body."""
    return error_response(error)


def http_error(error: HTTPException) -> Response:
    """Answer routing errors (404, 405, …) with JSON instead of HTML."""
    message = error.description or error.name
    if error.code == 404:
        path = request.script_root + request.path  # the /v1 of a mounted app too
        message = f"Invalid URL ({request.method} {path})"
    return error_response(EngineError(message, status=error.code or 500))


def too_large(error: RequestEntityTooLarge) -> Response:
    """Answer an oversized body with a JSON 413 worded like OpenAI's."""
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    size = request.content_length
    read = f"{size} bytes read" if size else f"more than {limit} bytes read"
    message = f"Maximum content size limit ({limit}) exceeded ({read})"
    return error_response(EngineError(message, status=413, type="server_error"))


def store_busy(error: StoreBusyError) -> Response:
    """Answer a store locked past its busy timeout with a JSON 503 ``store_busy``."""
    log.warning("Store busy in %s %s: %s", request.method, request.path, error)
    busy = EngineError(STORE_BUSY, status=503, type="server_error", code="store_busy")
    return error_response(busy)


def unexpected_error(error: Exception) -> Response:
    """Log an unexpected exception and answer a JSON 500."""
    log.exception("Unexpected error in %s %s", request.method, request.path)
    return error_response(EngineError(SERVER_ERROR, status=500, type="server_error"))


def check_api_key() -> Response | None:
    """Refuse requests without the right Bearer key (401, OpenAI's wording)."""
    expected = current_app.config["ENGINE_API_KEY"]
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    given = given.strip()
    if scheme.lower() == "bearer" and hmac.compare_digest(
        given.encode(), expected.encode()
    ):
        return None
    message = NO_KEY
    if given:
        message = (
            f"Incorrect API key provided: {mask_key(given)}. You can find your API key"
            " at https://platform.openai.com/account/api-keys."
        )
    code = "invalid_api_key" if given else None
    return error_response(EngineError(message, status=401, code=code))


def mask_key(key: str) -> str:
    """Show at most the first 3 and last 4 characters of a key."""
    if len(key) <= 8:
        return "*" * len(key)
    return f"{key[:3]}{'*' * 4}{key[-4:]}"


# Bodies and replies -----------------------------------------------------------


def body() -> dict[str, Any]:
    """Return the JSON object body; an empty body counts as ``{}``."""
    if not request.get_data(cache=True):
        return {}
    data = request.get_json(silent=True, force=True)
    if data is None:
        raise EngineError(
            "We could not parse the JSON body of your request. The OpenAI API expects a"
            " JSON payload, but what was sent was not valid JSON."
        )
    if not isinstance(data, dict):
        raise EngineError("Invalid body: expected a JSON object.")
    v.check_unicode(data)
    return data


def check_include() -> None:
    """Check the ``include[]`` query (the SDK sends the brackets)."""
    v.include_values(
        [*request.args.getlist("include[]"), *request.args.getlist("include")]
    )


def run_reply(reply: RunReply) -> Response:
    """Return a run as JSON, or its event stream when the request asked to stream."""
    run, subscription = reply
    if subscription is None:
        return jsonify(run)
    return Response(
        subscription.frames(), mimetype="text/event-stream", headers=sse.HEADERS
    )


# Routes -----------------------------------------------------------------------


@bp.post("/assistants")
def create_assistant() -> Response:
    """Create an assistant."""
    return jsonify(get_engine().create_assistant(body()))


@bp.get("/assistants")
def list_assistants() -> Response:
    """List assistants."""
    return jsonify(get_engine().list_assistants(request.args))


@bp.get("/assistants/<assistant_id>")
def get_assistant(assistant_id: str) -> Response:
    """Retrieve an assistant."""
    return jsonify(get_engine().get_assistant(assistant_id))


@bp.post("/assistants/<assistant_id>")
def modify_assistant(assistant_id: str) -> Response:
    """Modify an assistant."""
    return jsonify(get_engine().modify_assistant(assistant_id, body()))


@bp.delete("/assistants/<assistant_id>")
def delete_assistant(assistant_id: str) -> Response:
    """Delete an assistant."""
    return jsonify(get_engine().delete_assistant(assistant_id))


@bp.post("/threads")
def create_thread() -> Response:
    """Create a thread."""
    return jsonify(get_engine().create_thread(body()))


@bp.get("/threads/<thread_id>")
def get_thread(thread_id: str) -> Response:
    """Retrieve a thread."""
    return jsonify(get_engine().get_thread(thread_id))


@bp.post("/threads/<thread_id>")
def modify_thread(thread_id: str) -> Response:
    """Modify a thread's metadata or tool resources."""
    return jsonify(get_engine().modify_thread(thread_id, body()))


@bp.post("/threads/runs")
def create_thread_and_run() -> Response:
    """Create a thread and a run on it: JSON ``queued`` at once, or its SSE stream."""
    check_include()
    return run_reply(get_engine().create_thread_and_run(body()))


@bp.delete("/threads/<thread_id>")
def delete_thread(thread_id: str) -> Response:
    """Delete a thread with its messages and runs."""
    return jsonify(get_engine().delete_thread(thread_id))


@bp.post("/threads/<thread_id>/messages")
def create_message(thread_id: str) -> Response:
    """Add a message to a thread."""
    return jsonify(get_engine().create_message(thread_id, body()))


@bp.get("/threads/<thread_id>/messages")
def list_messages(thread_id: str) -> Response:
    """List a thread's messages."""
    return jsonify(get_engine().list_messages(thread_id, request.args))


@bp.get("/threads/<thread_id>/messages/<message_id>")
def get_message(thread_id: str, message_id: str) -> Response:
    """Retrieve a message."""
    return jsonify(get_engine().get_message(thread_id, message_id))


@bp.post("/threads/<thread_id>/messages/<message_id>")
def modify_message(thread_id: str, message_id: str) -> Response:
    """Modify a message's metadata."""
    return jsonify(get_engine().modify_message(thread_id, message_id, body()))


@bp.delete("/threads/<thread_id>/messages/<message_id>")
def delete_message(thread_id: str, message_id: str) -> Response:
    """Delete a message."""
    return jsonify(get_engine().delete_message(thread_id, message_id))


@bp.post("/threads/<thread_id>/runs")
def create_run(thread_id: str) -> Response:
    """Create a run: JSON ``queued`` at once, or its SSE stream."""
    check_include()
    return run_reply(get_engine().create_run(thread_id, body()))


@bp.get("/threads/<thread_id>/runs")
def list_runs(thread_id: str) -> Response:
    """List a thread's runs."""
    return jsonify(get_engine().list_runs(thread_id, request.args))


@bp.get("/threads/<thread_id>/runs/<run_id>")
def get_run(thread_id: str, run_id: str) -> Response:
    """Retrieve a run, with a polling hint when configured.

    With ``Prefer: wait=N`` (RFC 7240) the answer is held until the run stops
    moving on its own (``requires_action`` or ended) or N seconds pass; it then
    says ``Preference-Applied: wait=N`` and ``openai-poll-after-ms: 0`` (ask
    again at once: the next retrieve waits too).  Without it, the run is
    answered at once, as the Assistants API did.
    """
    engine = get_engine()
    wait_s = prefer_wait_s(request.headers.get("Prefer", ""))
    if wait_s is None:
        response = jsonify(engine.get_run(thread_id, run_id))
        if engine.poll_after_ms is not None:
            response.headers["openai-poll-after-ms"] = str(engine.poll_after_ms)
        return response
    response = jsonify(engine.wait_for_run(thread_id, run_id, wait_s))
    response.headers["Preference-Applied"] = f"wait={wait_s}"
    response.headers["openai-poll-after-ms"] = "0"
    return response


def prefer_wait_s(header: str) -> int | None:
    """Return the seconds of a ``Prefer`` header's ``wait`` preference, if any."""
    match = PREFER_WAIT.search(header)
    return int(match[1]) if match else None


@bp.post("/threads/<thread_id>/runs/<run_id>")
def modify_run(thread_id: str, run_id: str) -> Response:
    """Modify a run's metadata."""
    return jsonify(get_engine().modify_run(thread_id, run_id, body()))


@bp.get("/threads/<thread_id>/runs/<run_id>/steps")
def list_steps(thread_id: str, run_id: str) -> Response:
    """List a run's steps."""
    check_include()
    return jsonify(get_engine().list_steps(thread_id, run_id, request.args))


@bp.get("/threads/<thread_id>/runs/<run_id>/steps/<step_id>")
def get_step(thread_id: str, run_id: str, step_id: str) -> Response:
    """Retrieve a run step."""
    check_include()
    return jsonify(get_engine().get_step(thread_id, run_id, step_id))


@bp.post("/threads/<thread_id>/runs/<run_id>/submit_tool_outputs")
def submit_tool_outputs(thread_id: str, run_id: str) -> Response:
    """Submit tool outputs: JSON ``queued`` at once, or the continued SSE stream."""
    return run_reply(get_engine().submit_tool_outputs(thread_id, run_id, body()))


@bp.post("/threads/<thread_id>/runs/<run_id>/cancel")
def cancel_run(thread_id: str, run_id: str) -> Response:
    """Cancel a run; it answers ``cancelling``."""
    return jsonify(get_engine().cancel_run(thread_id, run_id))

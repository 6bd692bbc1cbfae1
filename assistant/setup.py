"""Choose the backend from configuration and build the ``AssistantService``.

no key, no base URL          -> the embedded engine on the offline demo model
OPENAI_API_KEY / MODEL_BASE_URL -> the embedded engine on Chat Completions
ASSISTANTS_BASE_URL + OPENAI_ASSISTANT_ID -> a remote Assistants-compatible server
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from collections.abc import Mapping

import openai
from flask import Flask
from openai.types.beta import Assistant
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from assistant.client import embedded_client
from assistant.client import remote_client
from assistant.engine import Engine
from assistant.engine import create_api
from assistant.engine import create_engine
from assistant.engine.providers.openai_chat import DEFAULT_MODEL
from assistant.engine.providers.openai_chat import ChatCompletionsProvider
from assistant.errors import AssistantError
from assistant.service import AssistantInfo
from assistant.service import AssistantService
from assistant.tools import ToolRegistry
from assistant.tools import default_registry

log = logging.getLogger(__name__)

EXTENSION = "threadroom.assistant"
ENGINE_EXTENSION = "threadroom.engine"
ASSISTANT_KEY = {"threadroom": "room-assistant"}  # finds our assistant again on restart
DEMO_NAME = "Threadroom demo (offline)"
DEFAULT_NAME = "Threadroom Assistant"


def init_assistant(app: Flask, assistant: AssistantService | None = None) -> None:
    """Build (or take) the assistant service and, if configured, mount ``/v1``.

    Runs after Socket.IO is bound to ``app``: the engine spawns its run tasks with
    that server's ``start_background_task``, so they follow the app's async mode.
    """
    engine = None
    if assistant is None:
        # Flask-SocketIO's init_app files itself here; reading it from the app (not
        # importing ``sockets``) keeps assistant/ free of the room's packages.
        spawn = app.extensions["socketio"].server.start_background_task
        offload = app.extensions.get("threadroom.offload")  # SQLite off the loop
        hooks = app.extensions.get("threadroom.hooks", {})  # ops' counters
        assistant, engine = build_service(app.config, spawn, offload, **hooks)
    app.extensions[EXTENSION] = assistant
    app.extensions[ENGINE_EXTENSION] = engine
    if engine is not None and app.config["ENGINE_API_KEY"]:
        api = create_api(engine, api_key=app.config["ENGINE_API_KEY"], prefix="")
        mount_engine(app, api)


def get_assistant(app: Flask) -> AssistantService:
    """Return the app's assistant service."""
    return app.extensions[EXTENSION]


def build_service(
    config: Mapping,
    spawn: Callable,
    offload: Callable | None = None,
    *,
    on_request: Callable | None = None,
    on_model_error: Callable[[str], None] | None = None,
) -> tuple[AssistantService, Engine | None]:
    """Build the service for the configured backend, and the engine if embedded;
    ``offload`` runs the engine's SQLite calls off the event loop.

    :param on_request: an SDK request hook (the per-turn backend request count).
    :param on_model_error: told the kind of each failed model call (metrics).
    """
    hooks = {"request": [on_request]} if on_request else None
    tools = default_registry(public_url=config["PUBLIC_URL"])
    common = {
        "poll_interval_ms": config["POLL_INTERVAL_MS"],
        "run_timeout_s": config["RUN_TIMEOUT_S"],
        "spawn": spawn,
    }
    engine: Engine | None = None
    if config["ASSISTANTS_BASE_URL"]:
        client, info = _remote_backend(config, hooks)
    else:
        provider = _chat_provider(config, on_model_error)
        engine, client, info = _embedded_backend(
            config, spawn, tools, offload, provider, hooks
        )
    log.info("assistant backend: %s, model %s", info.backend, info.model)
    return AssistantService(client, info, tools, **common), engine


def _remote_backend(config: Mapping, hooks) -> tuple[openai.OpenAI, AssistantInfo]:
    """Connect to a remote Assistants server that already holds the assistant."""
    assistant_id = config["OPENAI_ASSISTANT_ID"]
    if not assistant_id:
        raise AssistantError(
            "ASSISTANTS_BASE_URL is set but OPENAI_ASSISTANT_ID is not."
        )
    client = remote_client(
        config["ASSISTANTS_BASE_URL"], config["OPENAI_API_KEY"], event_hooks=hooks
    )
    try:
        assistant = client.beta.assistants.retrieve(assistant_id)
    except openai.APIError as exc:
        client.close()  # the app will not start: release the connection now
        raise AssistantError(
            f"The Assistants server at {config['ASSISTANTS_BASE_URL']} has no "
            f"assistant {assistant_id!r} or cannot be reached "
            f"({exc.__class__.__name__})."
        ) from exc
    name = config["ASSISTANT_NAME"] or assistant.name or DEFAULT_NAME
    return client, AssistantInfo(assistant.id, name, "remote", assistant.model)


def _embedded_backend(
    config: Mapping,
    spawn: Callable,
    tools: ToolRegistry,
    offload: Callable | None,
    provider: ChatCompletionsProvider | None,
    hooks: dict | None,
) -> tuple[Engine, openai.OpenAI, AssistantInfo]:
    """Start the embedded engine and create or update our assistant in it."""
    engine = create_engine(
        db_path=config["DATABASE_URL"] or config["ENGINE_DB"],
        default_provider=provider,
        demo_delay_ms=config["DEMO_DELAY_MS"],
        spawn=spawn,
        run_expiry_s=config["RUN_EXPIRY_S"],
        poll_after_ms=config["POLL_INTERVAL_MS"],
        offload=offload,
        context_chars=config["MODEL_CONTEXT_CHARS"],
    )
    client = embedded_client(create_api(engine), event_hooks=hooks)
    backend = "demo" if provider is None else "openai"
    model = "demo" if provider is None else provider.model
    name = config["ASSISTANT_NAME"] or (DEMO_NAME if provider is None else DEFAULT_NAME)
    assistant = _sync_assistant(client, name, model, config, tools)
    return engine, client, AssistantInfo(assistant.id, name, backend, model)


def _chat_provider(
    config: Mapping, on_error: Callable[[str], None] | None = None
) -> ChatCompletionsProvider | None:
    """Return the Chat Completions provider when a key or base URL is configured."""
    if not (config["OPENAI_API_KEY"] or config["MODEL_BASE_URL"]):
        return None
    return ChatCompletionsProvider(
        api_key=config["OPENAI_API_KEY"],
        base_url=config["MODEL_BASE_URL"] or None,
        model=config["MODEL"] or DEFAULT_MODEL,
        connect_timeout_s=config["MODEL_CONNECT_TIMEOUT_S"],
        read_timeout_s=config["MODEL_READ_TIMEOUT_S"],
        stall_timeout_s=config["MODEL_STALL_TIMEOUT_S"],
        context_chars=config["MODEL_CONTEXT_CHARS"],
        call_deadline_s=config["MODEL_CALL_DEADLINE_S"],
        on_error=on_error,
    )


def _sync_assistant(
    client: openai.OpenAI,
    name: str,
    model: str,
    config: Mapping,
    tools: ToolRegistry,
) -> Assistant:
    """Find our assistant (kept across restarts) and bring it up to date."""
    settings = {
        "name": name,
        "model": model,
        "instructions": config["ASSISTANT_INSTRUCTIONS"],
        "tools": tools.definitions(),
        "metadata": ASSISTANT_KEY,
    }
    for assistant in client.beta.assistants.list(limit=100):
        if (assistant.metadata or {}).get("threadroom") == ASSISTANT_KEY["threadroom"]:
            return client.beta.assistants.update(assistant.id, **settings)
    return client.beta.assistants.create(**settings)


def mount_engine(app: Flask, engine_app: Flask) -> None:
    """Serve the engine's Assistants API (built with ``prefix=""``) at ``/v1``."""
    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/v1": engine_app})  # type: ignore[method-assign]

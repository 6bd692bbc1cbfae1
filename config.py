"""Every Threadroom setting, read from the environment once (``.env`` loaded first).

``socketio.run`` does not go through ``flask run``, so ``.env`` is loaded here,
explicitly, and nowhere else reads the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from dotenv import load_dotenv

from rooms.limits import LimitSettings
from storage.database import is_postgres_url

load_dotenv()


def _int(name: str, default: int) -> int:
    """Read an integer setting, falling back to ``default`` when unset or blank."""
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def _float(name: str, default: float) -> float:
    """Read a number setting, falling back to ``default`` when unset or blank."""
    value = os.environ.get(name, "").strip()
    return float(value) if value else default


def _str(name: str, default: str = "") -> str:
    """Read a string setting, stripped; ``default`` when unset or blank."""
    return os.environ.get(name, "").strip() or default


def _list(name: str, default: str = "") -> list[str]:
    """Read a comma-separated setting as a list of non-empty items."""
    return [item.strip() for item in _str(name, default).split(",") if item.strip()]


DEFAULT_INSTRUCTIONS = (
    "You are a helpful assistant taking part in a group chat. Several people share "
    "this conversation; each user message is tagged with the name of who wrote it. "
    "Address people by name when it helps, keep answers short and friendly, and use "
    "the tools you have when they fit the question."
)


class Config:
    """Application settings; ``create_app(config=...)`` overrides any of them."""

    SECRET_KEY = _str("SECRET_KEY")  # blank: a random one, kept in the instance folder
    HOST = _str("HOST", "127.0.0.1")
    PORT = _int("PORT", 5020)

    # Model backends (see README "Configuration").
    OPENAI_API_KEY = _str("OPENAI_API_KEY")
    MODEL_BASE_URL = _str("MODEL_BASE_URL")
    MODEL = _str("MODEL")
    MODEL_CONNECT_TIMEOUT_S = _int("MODEL_CONNECT_TIMEOUT_S", 10)
    MODEL_READ_TIMEOUT_S = _int("MODEL_READ_TIMEOUT_S", 120)
    MODEL_STALL_TIMEOUT_S = _int("MODEL_STALL_TIMEOUT_S", 60)
    MODEL_CONTEXT_CHARS = _int("MODEL_CONTEXT_CHARS", 48000)
    # One model call's budget, the SDK's retries included.
    MODEL_CALL_DEADLINE_S = _float("MODEL_CALL_DEADLINE_S", 60)
    ASSISTANTS_BASE_URL = _str("ASSISTANTS_BASE_URL")
    OPENAI_ASSISTANT_ID = _str("OPENAI_ASSISTANT_ID")
    ASSISTANT_NAME = _str("ASSISTANT_NAME")
    ASSISTANT_INSTRUCTIONS = _str("ASSISTANT_INSTRUCTIONS", DEFAULT_INSTRUCTIONS)

    # The embedded engine.
    ENGINE_DB = _str("ENGINE_DB")  # blank: instance/threadroom.sqlite3
    # postgresql://user[:password]@host[:port]/db: the engine's store and the room
    # directory on PostgreSQL instead of ENGINE_DB (shared mode's database).
    DATABASE_URL = _str("DATABASE_URL")
    # redis://host:port/db: shared mode (with DATABASE_URL).  Socket.IO fan-out, the
    # rooms' state, the turn lease and the rate limits live there; any number of
    # processes on any hosts then serve the same rooms.
    REDIS_URL = _str("REDIS_URL")
    # Prefixes every Redis key and names the Socket.IO channel, so deployments (or
    # test runs) can share one Redis server: pub/sub channels ignore the db number.
    REDIS_PREFIX = _str("REDIS_PREFIX", "threadroom")
    ENGINE_API_KEY = _str("ENGINE_API_KEY")
    DEMO_DELAY_MS = _int("DEMO_DELAY_MS", 60)
    RUN_EXPIRY_S = _int("RUN_EXPIRY_S", 600)

    # The room and its turns.
    POLL_INTERVAL_MS = _int("POLL_INTERVAL_MS", 250)
    RUN_TIMEOUT_S = _int("RUN_TIMEOUT_S", 120)
    EMPTY_ROOM_TTL_S = _int("EMPTY_ROOM_TTL_S", 300)
    MAX_MESSAGE_CHARS = _int("MAX_MESSAGE_CHARS", 4000)
    STREAM_MODE = _str("STREAM_MODE", "stream")  # "stream" or "mock"
    ROOM_BAN_S = _int("ROOM_BAN_S", 600)  # how long a removed person stays out
    # Where people reach the app (e.g. https://chat.example.org/chat/): links the
    # tools hand out become absolute, for clients on other origins.  Blank: links
    # relative to the page.
    PUBLIC_URL = _str("PUBLIC_URL")
    # "address": a tokenless POST /stream is the registered tab with that user id
    # from the same client address (the original client's stream mode).
    LEGACY_STREAM_SENDERS = _str("LEGACY_STREAM_SENDERS")

    # Limits (README "Limits").  Rates use the `limits` syntax, several windows
    # separated by ";": a burst and a sustained rate.
    LIMIT_MESSAGE_RATE = _str("LIMIT_MESSAGE_RATE", LimitSettings.message_rate)
    LIMIT_QUEUED_PER_PERSON = _int(
        "LIMIT_QUEUED_PER_PERSON", LimitSettings.queued_per_person
    )
    LIMIT_REGISTRATION_RATE = _str(
        "LIMIT_REGISTRATION_RATE", LimitSettings.registration_rate
    )
    LIMIT_NEW_ROOM_RATE = _str("LIMIT_NEW_ROOM_RATE", LimitSettings.new_room_rate)
    LIMIT_ROOMS = _int("LIMIT_ROOMS", LimitSettings.max_rooms)
    LIMIT_CONNECTIONS = _int("LIMIT_CONNECTIONS", LimitSettings.max_connections)
    LIMIT_ROOM_MEMBERS = _int("LIMIT_ROOM_MEMBERS", LimitSettings.max_room_members)
    LIMIT_ROOM_QUEUE = _int("LIMIT_ROOM_QUEUE", LimitSettings.max_room_queue)
    # Blank: REDIS_URL in shared mode (the counters shared by every process), else
    # this process's memory.
    LIMIT_STORAGE_URI = _str("LIMIT_STORAGE_URI")

    # Socket.IO.
    CORS_ALLOWED_ORIGINS = _list("CORS_ALLOWED_ORIGINS")
    SOCKETIO_MESSAGE_QUEUE = _str("SOCKETIO_MESSAGE_QUEUE")  # blank: REDIS_URL
    ASYNC_MODE = _str("ASYNC_MODE") or None  # None: Flask-SocketIO picks

    # HTTP security headers.
    FRAME_ANCESTORS = _str("FRAME_ANCESTORS", "none")  # who may frame the page

    # Operations (README "Operations").
    LOG_FORMAT = _str("LOG_FORMAT", "text")  # "text" or "json" (one object a line)
    LOG_LEVEL = _str("LOG_LEVEL", "INFO")
    READYZ_CACHE_S = _float("READYZ_CACHE_S", 5)  # how long a /readyz answer holds
    READYZ_TIMEOUT_S = _float("READYZ_TIMEOUT_S", 3)  # per dependency probed
    # Reverse proxies in front that set X-Forwarded-For/-Proto/-Host/-Prefix (0:
    # none; those headers are then ignored, since anyone could send them).
    TRUSTED_PROXIES = _int("TRUSTED_PROXIES", 0)


class ConfigError(ValueError):
    """A setting that cannot work; the message says which and how to fix it."""


URL_SETTINGS = ("MODEL_BASE_URL", "ASSISTANTS_BASE_URL", "PUBLIC_URL")
LOG_FORMATS = ("text", "json")


def check_config(config: Mapping) -> None:
    """Refuse settings that cannot work, before anything is built on them.

    A base URL without ``http://`` would otherwise surface as "Could not reach the
    model server at 127.0.0.1:11434/v1" at the first message, hiding the mistake.
    """
    for name in URL_SETTINGS:
        value = config.get(name) or ""
        if value and urlsplit(value).scheme not in ("http", "https"):
            raise ConfigError(
                f"{name}={value!r} has no http:// or https:// scheme; "
                f"write it in full, e.g. {name}=http://{value.split('://')[-1]}"
            )
    database_url = config.get("DATABASE_URL") or ""
    redis_url = config.get("REDIS_URL") or ""
    if redis_url and urlsplit(redis_url).scheme not in ("redis", "rediss"):
        raise ConfigError(
            f"REDIS_URL={redis_url!r} must start with redis:// (or rediss:// for"
            " TLS), e.g. REDIS_URL=redis://127.0.0.1:6379/0"
        )
    if redis_url and not database_url:
        raise ConfigError(
            "REDIS_URL turns on shared mode, which also needs DATABASE_URL"
            " (PostgreSQL, e.g. postgresql://user@host:5432/threadroom): several"
            " processes cannot share one SQLite file"
        )
    if database_url and not is_postgres_url(database_url):
        raise ConfigError(
            "DATABASE_URL must start with postgresql://, e.g."
            " postgresql://user@host:5432/threadroom (the password, if any, after"
            " the user: postgresql://user:password@host/threadroom)"
        )
    level = str(config.get("LOG_LEVEL", "INFO")).upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigError(
            f"LOG_LEVEL={config['LOG_LEVEL']!r} is not one of: DEBUG, INFO, WARNING,"
            " ERROR, CRITICAL"
        )
    if config.get("LOG_FORMAT", "text") not in LOG_FORMATS:
        raise ConfigError(
            f"LOG_FORMAT={config['LOG_FORMAT']!r} is not one of: "
            + ", ".join(LOG_FORMATS)
        )

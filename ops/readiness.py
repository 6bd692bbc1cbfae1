"""Readiness: can this process answer a message right now?

It can when the conversation store answers and the model server (or the remote
Assistants server) answers with this key and knows this model.  Each check says,
when it fails, what is wrong in the words of the setting to fix.  Results are kept
for ``READYZ_CACHE_S`` so a load balancer probing every second costs one model
server request every few seconds, not one per probe.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx2
import redis
from flask import Flask

from assistant.engine.providers.openai_chat import DEFAULT_MODEL
from assistant.engine.providers.openai_chat import OPENAI_BASE_URL
from assistant.engine.providers.openai_chat import body_meaning

log = logging.getLogger("threadroom.readiness")

EXTENSION = "threadroom.readiness"


@dataclass(frozen=True)
class Check:
    """One dependency's answer: ``problem`` is None when it is fine."""

    name: str
    problem: str | None = None

    @property
    def ok(self) -> bool:
        """Tell whether the dependency answered as it should."""
        return self.problem is None


@dataclass(frozen=True)
class Report:
    """Every check, at one moment."""

    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        """Tell whether every check passed."""
        return all(check.ok for check in self.checks)

    def body(self) -> dict:
        """Return the JSON body of ``/readyz``."""
        return {
            "status": "ready" if self.ok else "unavailable",
            "checks": {c.name: "ok" if c.ok else c.problem for c in self.checks},
            "problems": [f"{c.name}: {c.problem}" for c in self.checks if not c.ok],
        }


class Readiness:
    """Run the checks, at most once per ``cache_s``."""

    def __init__(self, checks: list[Callable[[], Check]], cache_s: float) -> None:
        self._checks = checks
        self._cache_s = cache_s
        self._lock = threading.Lock()  # green under monkey-patching
        self._report: Report | None = None
        self._taken = 0.0

    def report(self) -> Report:
        """Return a recent report, checking again when the last one is stale."""
        with self._lock:
            fresh = time.monotonic() - self._taken < self._cache_s
            if self._report is None or not fresh:
                self._report = Report(tuple(check() for check in self._checks))
                self._taken = time.monotonic()
            return self._report


def store_check(read: Callable[[], object]) -> Callable[[], Check]:
    """Return a check that the store answers ``read()`` (one small query)."""

    def check() -> Check:
        try:
            read()
        except Exception as exc:  # locked, unreadable, closed: all mean not ready
            return Check("store", f"the conversation store did not answer ({exc}).")
        return Check("store")

    return check


def redis_check(url: str, timeout_s: float) -> Callable[[], Check]:
    """Check that shared mode's Redis answers (rooms, queues and fan-out live
    there: without it this process can serve nobody)."""

    def check() -> Check:
        client = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        try:
            client.ping()
        except redis.RedisError as exc:
            where = urlsplit(url).netloc.rpartition("@")[2]  # never the password
            return Check("redis", f"Redis at {where} did not answer ({exc}). Check"
                         " REDIS_URL.")  # fmt: skip
        finally:
            client.close()
        return Check("redis")

    return check


def model_check(config: Mapping) -> Callable[[], Check]:
    """Return a check that the model server lists ``MODEL`` for this key."""
    base_url = (config["MODEL_BASE_URL"] or OPENAI_BASE_URL).rstrip("/")
    model, key = config["MODEL"] or DEFAULT_MODEL, config["OPENAI_API_KEY"]
    timeout = config["READYZ_TIMEOUT_S"]

    def check() -> Check:
        problem, listed = _get_json(f"{base_url}/models", key, timeout, base_url)
        if problem is None and not _lists(listed, model):
            problem = (
                f"the model server does not list the model '{model}' "
                f"(it lists: {_names(listed)}). Check MODEL."
            )
        return Check("model", problem)

    return check


def remote_check(config: Mapping) -> Callable[[], Check]:
    """Return a check that the remote Assistants server has our assistant."""
    base_url = config["ASSISTANTS_BASE_URL"].rstrip("/")
    assistant = config["OPENAI_ASSISTANT_ID"]
    key, timeout = config["OPENAI_API_KEY"], config["READYZ_TIMEOUT_S"]

    def check() -> Check:
        url = f"{base_url}/assistants/{assistant}"
        problem, _ = _get_json(url, key, timeout, base_url, remote=True)
        return Check("assistants_server", problem)

    return check


def _get_json(
    url: str, key: str, timeout: float, base_url: str, *, remote: bool = False
) -> tuple[str | None, object]:
    """GET ``url``; return what is wrong (or None) and the decoded body."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if remote:
        headers["OpenAI-Beta"] = "assistants=v2"
    where = _where(base_url, "Assistants server" if remote else "model server")
    try:
        response = httpx2.get(url, headers=headers, timeout=timeout)
    except httpx2.TimeoutException:
        return f"{where} did not answer within {timeout:g} s.", None
    except httpx2.HTTPError as exc:
        return f"could not connect to {where} ({_reason(exc)}).", None
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code == 200 and isinstance(body, dict):
        return None, body
    return _status_problem(response, body, where, base_url, remote), body


def _status_problem(response, body, where: str, base_url: str, remote: bool) -> str:
    """Say what an unexpected answer means, naming the setting to check."""
    status = response.status_code
    setting = "ASSISTANTS_BASE_URL" if remote else "MODEL_BASE_URL"
    meaning = body_meaning(status, body if isinstance(body, dict) else {})
    if meaning == "auth" or status in (401, 403):
        return f"{where} rejected the API key (HTTP {status}). Check OPENAI_API_KEY."
    if remote and status == 404:
        return f"{where} has no such assistant (HTTP 404). Check OPENAI_ASSISTANT_ID."
    if status == 404 or (status == 200 and not isinstance(body, dict)):
        path = "/assistants" if remote else "/models"
        hint = " It usually ends in /v1." if not base_url.endswith("/v1") else ""
        return (
            f"{_safe(base_url)} does not look like an OpenAI-compatible API "
            f"(GET {path}: HTTP {status}). Check {setting}.{hint}"
        )
    return f"{where} failed (HTTP {status})."


def _lists(listed: object, model: str) -> bool:
    """Tell whether a ``/models`` body lists ``model``."""
    return model in _ids(listed)


def _ids(listed: object) -> list[str]:
    """Return the model ids of a ``/models`` body."""
    data = listed.get("data") if isinstance(listed, dict) else None
    return [str(m.get("id")) for m in data or () if isinstance(m, dict)]


def _names(listed: object, most: int = 10) -> str:
    """Return the first few listed model ids, for the message."""
    ids = _ids(listed)
    shown = ", ".join(ids[:most]) or "nothing"
    return shown + (f" and {len(ids) - most} more" if len(ids) > most else "")


def _where(base_url: str, what: str) -> str:
    """Name a server by host and port only (never credentials or a query)."""
    parts = urlsplit(base_url)
    host = parts.hostname or base_url
    return (
        f"the {what} at {host}:{parts.port}" if parts.port else f"the {what} at {host}"
    )


def _safe(url: str) -> str:
    """Return a URL without credentials or query, to show in a message."""
    parts = urlsplit(url)
    host = f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname
    return f"{parts.scheme}://{host}{parts.path}"


def _reason(exc: Exception) -> str:
    """Return the short reason of a connection failure (refused, DNS, TLS)."""
    text = str(exc) or type(exc).__name__
    if "refused" in text.lower():
        return "connection refused"
    return text[:200]


def init_readiness(app: Flask, store_read: Callable[[], object] | None) -> Readiness:
    """Build the app's readiness checks for the configured backend."""
    config = app.config
    checks = []
    if store_read is not None:
        checks.append(store_check(store_read))
    if config["REDIS_URL"]:
        checks.append(redis_check(config["REDIS_URL"], config["READYZ_TIMEOUT_S"]))
    if config["ASSISTANTS_BASE_URL"]:
        checks.append(remote_check(config))
    elif config["OPENAI_API_KEY"] or config["MODEL_BASE_URL"]:
        checks.append(model_check(config))
    readiness = Readiness(checks, config["READYZ_CACHE_S"])
    app.extensions[EXTENSION] = readiness
    return readiness


def get_readiness(app: Flask) -> Readiness:
    """Return the app's readiness checks."""
    return app.extensions[EXTENSION]


def warn_if_not_ready(readiness: Readiness) -> None:
    """Log one clear warning at start when a dependency is not answering."""
    report = readiness.report()
    if not report.ok:
        log.warning(
            "not ready yet (GET /readyz answers 503 until fixed): %s",
            "; ".join(report.body()["problems"]),
        )

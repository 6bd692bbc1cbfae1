"""Build the official ``openai`` SDK client for the embedded engine or a remote one."""

from __future__ import annotations

from collections.abc import Callable

import httpx2
import openai

EMBEDDED_BASE_URL = "http://engine/v1"


def embedded_client(
    wsgi_app: Callable, *, max_retries: int = 0, event_hooks: dict | None = None
) -> openai.OpenAI:
    """Return an SDK client that calls the in-process engine through WSGI.

    Nothing crosses a socket: ``httpx2.WSGITransport`` runs the engine's WSGI app in
    the caller's thread (or green thread) and streams its SSE body lazily.
    """
    http_client = httpx2.Client(
        transport=httpx2.WSGITransport(app=wsgi_app), event_hooks=event_hooks
    )
    return openai.OpenAI(
        api_key="embedded",
        base_url=EMBEDDED_BASE_URL,
        http_client=http_client,
        max_retries=max_retries,
    )


def remote_client(
    base_url: str, api_key: str, *, timeout: float = 60, event_hooks: dict | None = None
) -> openai.OpenAI:
    """Return an SDK client for a remote Assistants-compatible server."""
    return openai.OpenAI(
        api_key=api_key or "none",
        base_url=base_url,
        timeout=timeout,
        max_retries=2,
        http_client=(
            openai.DefaultHttpxClient(event_hooks=event_hooks) if event_hooks else None
        ),
    )

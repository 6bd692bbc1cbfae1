"""Model providers and the choice of one per run model."""

from __future__ import annotations

from .base import Provider


def select_provider(
    model: str, default_provider: Provider | None, demo: Provider
) -> Provider:
    """Return the provider for ``model``: "demo…" models always get the demo."""
    if model.startswith("demo") or default_provider is None:
        return demo
    return default_provider

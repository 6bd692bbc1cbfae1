"""Helpers of the PostgreSQL tests: an administrative connection, a URL's database."""

from __future__ import annotations

from urllib.parse import urlsplit
from urllib.parse import urlunsplit

import pg8000.native

from storage.postgres import connect_params


def admin_connection(url: str) -> pg8000.native.Connection:
    """Connect to the administrative database named by ``url``."""
    params = connect_params(url, busy_timeout_s=5)
    params["timeout"] = 5
    return pg8000.native.Connection(**params)


def with_database(url: str, name: str) -> str:
    """Return ``url`` naming database ``name`` instead."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))

"""PostgreSQL for the tests: a database of its own per test run, an empty schema
per test, on the machine's real server (never a mock).

``TEST_DATABASE_URL`` names a database to connect to for creating and dropping
the run's own (default: postgres on 127.0.0.1:5432); without a reachable server
the PostgreSQL tests skip, saying how to get one.
"""

from __future__ import annotations

import os
import uuid

import pytest
from pg_helpers import admin_connection
from pg_helpers import with_database

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
HINT = (
    "PostgreSQL is not reachable: start PostgreSQL and set"
    " TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres, or run .ci/run"
)


@pytest.fixture(scope="session")
def pg_database():
    """Create this test run's database; yield its URL; drop it at the end."""
    url = os.environ.get("TEST_DATABASE_URL") or DEFAULT_URL
    try:
        admin = admin_connection(url)
    except Exception as exc:  # any failure to connect means: no server to test on
        pytest.skip(f"{HINT} ({exc.__class__.__name__}: {exc})")
    name = f"threadroom_test_{uuid.uuid4().hex[:12]}"
    admin.run(f"CREATE DATABASE {name}")
    try:
        yield with_database(url, name)
    finally:
        # FORCE: connections a test left open must not keep the database alive.
        admin.run(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


@pytest.fixture
def pg_url(pg_database):
    """Return the URL of the run's database, emptied for this test."""
    connection = admin_connection(pg_database)
    try:
        connection.run("DROP SCHEMA public CASCADE")
        connection.run("CREATE SCHEMA public")
    finally:
        connection.close()
    return pg_database


@pytest.fixture(params=["sqlite", "postgres"])
def db_location(request):
    """Return a fresh store location on each database: SQLite in memory, or an
    empty PostgreSQL database."""
    if request.param == "sqlite":
        return ":memory:"
    return request.getfixturevalue("pg_url")

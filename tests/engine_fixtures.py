"""Fixtures of the engine tests: engines on each store (SQLite in memory and an empty
PostgreSQL database: every test that uses them runs on both), a raw HTTP client
over one, and an empty thread and a demo assistant made through the module's SDK
``client``.

Engine test modules load this with ``pytest_plugins = ["engine_fixtures"]``.  Each
keeps its own three-line ``client`` fixture (a strict SDK client): the name is
taken by the app's Flask test client in conftest.py, which would win over a plugin.
"""

from __future__ import annotations

import pytest
from engine_helpers import TIME_TOOL
from engine_helpers import raw_client

from assistant.engine import create_api
from assistant.engine import create_engine

pytest_plugins = ["pg_fixtures"]


@pytest.fixture
def make_engine(db_location):
    """Return a factory of engines (``create_engine``) on the test's database,
    closed after the test."""
    engines = []

    def make(**kwargs):
        kwargs.setdefault("db_path", db_location)
        engines.append(create_engine(**kwargs))
        return engines[-1]

    yield make
    for engine in engines:
        engine.close()


@pytest.fixture
def engine(make_engine):
    """Return an engine with an instant demo model."""
    return make_engine()


@pytest.fixture
def http(engine):
    """Return a plain HTTP client over the engine (it sends bytes as they are)."""
    with raw_client(create_api(engine)) as client:
        yield client


@pytest.fixture
def assistant(client):
    """Return a demo assistant with the time tool."""
    return client.beta.assistants.create(model="demo", tools=[TIME_TOOL])


@pytest.fixture
def thread(client):
    """Return an empty thread."""
    return client.beta.threads.create()

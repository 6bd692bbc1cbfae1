"""Fixtures of the shared-mode tests: real Redis, real PostgreSQL, real processes.

Test modules load this with ``pytest_plugins = ["cluster_fixtures"]`` and use:

- ``make_cluster(size, **env)``: start ``size`` ``python app.py`` processes in
  shared mode (a fresh PostgreSQL database, a Redis key prefix of their own) and
  return the ``Cluster``; every one is stopped, its keys deleted and its database
  dropped at the end of the test.
- ``cluster``: ``make_cluster(2)``.
- ``shared_backends``: the Redis and PostgreSQL URLs, or a skip saying how to get
  them (``TEST_REDIS_URL``, ``TEST_DATABASE_URL``, or ``.ci/run``).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

import pytest
import redis
from pg_fixtures import DEFAULT_URL as DEFAULT_DATABASE_URL
from pg_fixtures import HINT as DATABASE_HINT
from pg_helpers import admin_connection
from pg_helpers import with_database

from tests.cluster import Cluster
from tests.cluster import redis_url_for_tests

REDIS_HINT = (
    "Redis is not reachable: start it (redis-server --daemonize yes) and set"
    " TEST_REDIS_URL=redis://127.0.0.1:6379, or run .ci/run"
)


@dataclass
class SharedBackends:
    """Where the shared-mode tests find Redis and PostgreSQL's admin database."""

    redis_url: str
    admin_database_url: str


@pytest.fixture(scope="session")
def shared_backends() -> SharedBackends:
    """Return the reachable Redis and PostgreSQL; skip with a hint otherwise."""
    redis_url = redis_url_for_tests()
    client = redis.Redis.from_url(redis_url, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"{REDIS_HINT} ({exc.__class__.__name__}: {exc})")
    finally:
        client.close()
    database_url = os.environ.get("TEST_DATABASE_URL") or DEFAULT_DATABASE_URL
    try:
        admin_connection(database_url).close()
    except Exception as exc:  # any failure to connect means: no server to test on
        pytest.skip(f"{DATABASE_HINT} ({exc.__class__.__name__}: {exc})")
    return SharedBackends(redis_url, database_url)


@pytest.fixture
def make_cluster(shared_backends, tmp_path):
    """Start clusters on a fresh database each; stop and clean them after."""
    made: list[tuple[Cluster, str]] = []
    admin = admin_connection(shared_backends.admin_database_url)

    def make(size: int = 2, **env: str) -> Cluster:
        name = f"threadroom_cluster_{uuid.uuid4().hex[:12]}"
        admin.run(f"CREATE DATABASE {name}")
        cluster = Cluster(
            tmp_path / f"cluster-{len(made)}",
            size,
            redis_url=shared_backends.redis_url,
            database_url=with_database(shared_backends.admin_database_url, name),
            **env,
        )
        made.append((cluster, name))
        return cluster.start_all()

    yield make
    try:
        for cluster, name in made:
            cluster.close()
            # FORCE: a killed process's connections must not keep it alive.
            admin.run(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        admin.close()


@pytest.fixture
def cluster(make_cluster) -> Cluster:
    """Two processes in shared mode, serving the same rooms."""
    return make_cluster(2)

"""Shared mode refuses settings it cannot work with, before serving anyone: each
refusal is one line naming the setting to fix, and exit code 2."""

from __future__ import annotations

import pytest

from ops.readiness import redis_check
from tests.live_server import free_port
from tests.live_server import start_refused

pytest_plugins = ["pg_fixtures"]

PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def test_redis_without_a_database_url_is_refused(tmp_path):
    error = start_refused(tmp_path, REDIS_URL="redis://127.0.0.1:6379/0")
    assert "REDIS_URL turns on shared mode, which also needs DATABASE_URL" in error


def test_a_redis_url_without_its_scheme_is_refused(tmp_path):
    error = start_refused(tmp_path, REDIS_URL="127.0.0.1:6379", DATABASE_URL=PG_URL)
    assert "REDIS_URL='127.0.0.1:6379' must start with redis://" in error


def test_shared_mode_without_a_secret_key_is_refused(tmp_path):
    error = start_refused(
        tmp_path,
        REDIS_URL="redis://127.0.0.1:6379/0",
        DATABASE_URL=PG_URL,
        SECRET_KEY="",
    )
    assert "Shared mode (REDIS_URL) needs SECRET_KEY, the same on every" in error


def test_a_redis_nobody_answers_on_stops_the_start(tmp_path, pg_url):
    closed = free_port()
    error = start_refused(
        tmp_path,
        REDIS_URL=f"redis://127.0.0.1:{closed}/0",
        DATABASE_URL=pg_url,
    )
    assert f"Cannot reach Redis at 127.0.0.1:{closed} (REDIS_URL)" in error
    assert "unset REDIS_URL to run a single process" in error


@pytest.mark.parametrize("password", ["", "s3cret@"])
def test_readiness_names_the_redis_that_does_not_answer_without_its_password(
    password,
):
    closed = free_port()
    auth = f":{password.replace('@', '%40')}@" if password else ""
    check = redis_check(f"redis://{auth}127.0.0.1:{closed}/0", timeout_s=1)()
    assert not check.ok and check.name == "redis"
    assert f"Redis at 127.0.0.1:{closed} did not answer" in (check.problem or "")
    assert "Check REDIS_URL." in (check.problem or "")
    assert "s3cret" not in (check.problem or "")

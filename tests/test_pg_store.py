"""PostgreSQL (DATABASE_URL): the room directory on both stores, run ownership
between processes sharing one database, a busy or lost server, and the app on it.

Two engines on one database stand for two processes: each store has its own
owner id and heartbeat.  The engine suite itself runs on both stores through
``engine_fixtures``.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import openai
import pytest
from engine_helpers import TIME_TOOL
from engine_helpers import make_client
from engine_helpers import poll_run
from engine_helpers import say
from engine_helpers import wait_until
from pg_helpers import admin_connection
from test_engine_store import Gated

from assistant.engine import Engine
from assistant.engine import create_api
from assistant.engine import create_engine
from assistant.engine.store import RESTART_ERROR
from assistant.engine.store import Store
from config import ConfigError
from rooms.directory import ThreadDirectory
from rooms.errors import StoreBusy
from tests.conftest import Person
from tests.live_server import ROOT
from tests.live_server import LiveServer
from tests.test_live_process import SERVERS
from tests.test_live_process import complete_a_turn

pytest_plugins = ["pg_fixtures"]


# The room directory, on each store --------------------------------------------


@pytest.fixture
def open_directory():
    """Return a factory of directories, closed after the test."""
    opened: list[ThreadDirectory] = []

    def make(location: str) -> ThreadDirectory:
        opened.append(ThreadDirectory(location))
        return opened[-1]

    yield make
    for directory in opened:
        directory.close()


def test_the_directory_keeps_rooms_users_settings_and_bans(open_directory, db_location):
    directory = open_directory(db_location)
    directory.set("room", "thread-1")
    directory.set("room", "thread-2")  # a new thread replaces the old one
    directory.add_user("u1")
    directory.add_user("u1")  # handed out twice: still one user
    directory.save_settings("room", {"owner": "u1"})
    directory.save_settings("room", {"owner": "u2"})
    directory.ban("room", "u3", 1796374154.864007)
    assert directory.get("room") == "thread-2"
    assert (directory.has_user("u1"), directory.has_user("u2")) == (True, False)
    assert directory.settings("room") == {"owner": "u2"}
    # Epoch seconds keep their fraction (a 4-byte REAL would round them).
    assert directory.banned_until("room", "u3") == 1796374154.864007
    assert directory.banned_until("room", "u1") is None


def test_the_directory_keeps_the_record_in_order_and_forgets_it(
    open_directory, db_location
):
    directory = open_directory(db_location)
    directory.set("room", "t")
    for n in range(3):
        directory.add_line("t", {"content": f"line {n}"}, f"m{n}" if n else None)
    directory.add_note("t", "m1", {"status": "stopped", "stopped_by": "Bob"})
    directory.add_note("t", "m1", {"status": "interrupted"})
    directory.open_turn("room", "t", {"turn": 1})
    directory.open_turn("room", "t", {"turn": 2})
    assert directory.lines("t") == [
        (None, {"content": "line 0"}),
        ("m1", {"content": "line 1"}),
        ("m2", {"content": "line 2"}),
    ]
    assert directory.notes("t") == {"m1": {"status": "interrupted"}}
    assert directory.open_turns() == [("room", "t", {"turn": 2})]
    directory.close_turn("room")
    directory.forget("room", "t")
    assert directory.open_turns() == []
    assert (directory.get("room"), directory.lines("t"), directory.notes("t")) == (
        None,
        [],
        {},
    )


def test_several_directories_start_on_one_database_at_once(open_directory, pg_url):
    # Processes starting together: the schema lock keeps the catalogue consistent.
    errors: list[BaseException] = []

    def start() -> None:
        try:
            open_directory(pg_url).add_user("u")
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    starters = [threading.Thread(target=start) for _ in range(6)]
    for starter in starters:
        starter.start()
    for starter in starters:
        starter.join(30)
    assert errors == []
    assert open_directory(pg_url).has_user("u")


# Run ownership: two processes, one database ------------------------------------


def start_gated_run(engine, gate):
    """Start a run on ``engine`` that stays in progress until ``gate`` opens."""
    client = make_client(create_api(engine))
    assistant = client.beta.assistants.create(model="gated")
    thread = client.beta.threads.create()
    say(client, thread, "hi")
    run = client.beta.threads.runs.create(
        thread_id=thread.id, assistant_id=assistant.id
    )
    wait_until(
        lambda: engine.store.history(thread.id)[-1].get("status") == "in_progress"
    )
    return client, thread, run


def run_status(engine, run_id):
    """Return the stored status of a run."""
    return engine.store.get("runs", run_id)["status"]


def test_a_second_process_starting_leaves_the_first_ones_run_alone(pg_url):
    gate = threading.Event()
    first = create_engine(db_path=pg_url, default_provider=Gated(gate))
    try:
        client, thread, run = start_gated_run(first, gate)
        second = create_engine(db_path=pg_url)  # its start-up runs recovery
        try:
            assert second.store.owner != first.store.owner
            assert run_status(second, run.id) == "in_progress"
            gate.set()
            done = client.beta.threads.runs.poll(run.id, thread_id=thread.id)
            assert done.status == "completed"
        finally:
            second.close()
    finally:
        gate.set()
        first.close()


def test_a_live_process_keeps_its_run_while_others_sweep(pg_url):
    gate = threading.Event()
    # Both beat three times a second and take a second's silence for a death.
    first = create_engine(db_path=pg_url, default_provider=Gated(gate), lapse_s=1)
    second = create_engine(db_path=pg_url, lapse_s=1)
    try:
        client, thread, run = start_gated_run(first, gate)
        time.sleep(2.5)  # several of the second's sweeps, across a lapse
        assert run_status(second, run.id) == "in_progress"
        gate.set()
        done = client.beta.threads.runs.poll(run.id, thread_id=thread.id)
        assert done.status == "completed"
    finally:
        gate.set()
        second.close()
        first.close()


def test_a_lapsed_process_has_its_run_failed_by_another(pg_url):
    gate = threading.Event()
    # The first beats once, at start (its next beat is an hour away): to the
    # second, which takes a second's silence for a death, it stopped.
    first = create_engine(db_path=pg_url, default_provider=Gated(gate), lapse_s=3600)
    second = create_engine(db_path=pg_url, lapse_s=1)
    try:
        _, thread, run = start_gated_run(first, gate)
        client = make_client(create_api(second))
        wait_until(lambda: run_status(second, run.id) == "failed", timeout_s=10)
        failed = client.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
        assert failed.last_error.code == RESTART_ERROR["code"]
        assert failed.last_error.message == RESTART_ERROR["message"]
        reply = client.beta.threads.messages.list(thread.id, limit=1).data[0]
        assert reply.status == "incomplete"
        assert reply.incomplete_details.reason == "run_failed"
        # It was only paused: it wakes, ends its run (and its tasks), but what
        # another process stored for a finished run stays.
        gate.set()
        first.close()
        assert run_status(second, run.id) == "failed"
    finally:
        gate.set()
        second.close()
        first.close()


def test_a_run_waiting_for_tools_outlives_its_process_and_another_ends_it(pg_url):
    # The first beats once; by the second's one-second lapse it is gone.
    first = create_engine(db_path=pg_url, lapse_s=3600)
    # A slow reply: the second's sweeps see the resumed run in progress.
    second = create_engine(db_path=pg_url, lapse_s=1, demo_delay_ms=150)
    try:
        client = make_client(create_api(first))
        assistant = client.beta.assistants.create(model="demo", tools=[TIME_TOOL])
        thread = client.beta.threads.create()
        say(client, thread, "what is the current time?")
        run = poll_run(client, thread, assistant)
        assert run.status == "requires_action"
        time.sleep(2)  # past the lapse: the sweeps leave a run that is not overdue
        assert run_status(second, run.id) == "requires_action"
        other = make_client(create_api(second))
        call = run.required_action.submit_tool_outputs.tool_calls[0]
        done = other.beta.threads.runs.submit_tool_outputs_and_poll(
            thread_id=thread.id,
            run_id=run.id,
            tool_outputs=[{"tool_call_id": call.id, "output": "12:00"}],
            poll_interval_ms=10,
        )
        assert done.status == "completed"  # the second owns it now
    finally:
        second.close()
        first.close()


def test_a_clean_stop_lets_the_others_close_its_runs_at_once(pg_url):
    store = Store(pg_url)
    live = Store(pg_url, lapse_s=3600)
    try:
        assert store.owner in live.live_owners()
    finally:
        store.close()
    try:
        assert store.owner not in live.live_owners()  # its heartbeat is gone
    finally:
        live.close()


# A busy or lost server ----------------------------------------------------------


def test_a_locked_table_answers_503_store_busy_then_works(pg_url):
    engine = Engine(Store(pg_url, busy_timeout_s=0.1))
    client = make_client(create_api(engine))
    thread = client.beta.threads.create()
    other = admin_connection(pg_url)
    other.run("BEGIN")
    other.run("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE")  # a long migration
    try:
        with pytest.raises(openai.InternalServerError) as caught:
            say(client, thread, "while locked")
    finally:
        other.run("ROLLBACK")
        other.close()
    assert (caught.value.status_code, caught.value.code) == (503, "store_busy")
    try:
        message = say(client, thread, "after the lock")
        assert [m.id for m in client.beta.threads.messages.list(thread.id)] == [
            message.id
        ]
    finally:
        engine.close()


def test_a_lost_connection_is_busy_once_then_opened_again(open_directory, pg_url):
    directory = open_directory(pg_url)
    directory.add_user("before")
    admin = admin_connection(pg_url)
    try:
        admin.run(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        admin.close()
    with pytest.raises(StoreBusy):
        directory.has_user("before")
    assert directory.has_user("before")  # a new connection, the same data


# The app on PostgreSQL ------------------------------------------------------------


def close_app(app) -> None:
    """Stop an app's engine and give its directory's socket back."""
    app.extensions["threadroom.engine"].close()
    app.extensions["threadroom.rooms"].directory.close()


def test_the_room_talks_and_its_history_survives_a_restart(make_app, pg_url):
    first = make_app(DATABASE_URL=pg_url)
    alice = Person(first, first.test_client())
    alice.register("Alice")
    alice.say("remember this")
    assert alice.wait("ai-end")[0]["status"] == "completed"
    alice.close()
    close_app(first)

    second = make_app(DATABASE_URL=pg_url)
    bob = Person(second, second.test_client())
    bob.register("Bob")
    history = bob.wait("message-list")[0]
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert history[0]["content"] == "remember this"
    bob.close()
    close_app(second)


@pytest.mark.parametrize("server_kind", ["python-app.py", "gunicorn-gevent"])
def test_a_real_server_on_postgresql_completes_a_turn(tmp_path, pg_url, server_kind):
    # pg8000's socket under eventlet's and gevent's monkey-patching, for real.
    options = SERVERS[server_kind]
    with LiveServer(tmp_path, **options, DATABASE_URL=pg_url) as server:
        assert "Live" in complete_a_turn(server.url)["content"]
    assert not (tmp_path / "threadroom.sqlite3").exists()  # ENGINE_DB unused


def test_a_database_url_that_is_not_postgresql_is_refused(make_app):
    with pytest.raises(ConfigError, match="postgresql://"):
        make_app(DATABASE_URL="mysql://db/threadroom")


# The driver under monkey-patching ---------------------------------------------------

GREEN_PROBE = """
import sys
{patch}
import threading
import time
from storage.postgres import PostgresDatabase

db = PostgresDatabase(sys.argv[1], busy_error=RuntimeError)
ticks = []
def tick():
    while len(ticks) < 1000:
        ticks.append(time.monotonic())
        time.sleep(0.01)
threading.Thread(target=tick, daemon=True).start()
started = time.monotonic()
db.rows("SELECT pg_sleep(0.5)")
print(sum(1 for t in ticks if started < t < time.monotonic()))
"""
PATCHES = {
    "eventlet": "import eventlet; eventlet.monkey_patch()",
    "gevent": "from gevent import monkey; monkey.patch_all()",
}


@pytest.mark.parametrize("hub", PATCHES)
def test_a_slow_query_leaves_the_hub_serving_others(pg_url, hub):
    # Why pg8000: its wait on the server is a green socket read, so the other
    # greenlets run meanwhile; a blocking C call would freeze them for 0.5 s.
    probe = GREEN_PROBE.format(patch=PATCHES[hub])
    result = subprocess.run(
        [sys.executable, "-c", probe, pg_url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.split()[-1]) >= 20  # ~50 ticks of 10 ms in 0.5 s

"""The engine's SQLite store: persistence, crash recovery, the thread pool it runs
its calls in, a locked file, and one process per file."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest
from engine_helpers import make_client
from engine_helpers import say
from engine_helpers import stream_run
from engine_helpers import wait_until

from assistant.engine import Engine
from assistant.engine import StoreInUseError
from assistant.engine import create_api
from assistant.engine import create_engine
from assistant.engine import objects
from assistant.engine.providers.base import TextDelta
from assistant.engine.store import Store
from tests.live_server import ROOT


def test_restart_keeps_data_and_fails_in_flight_runs(tmp_path):
    db = str(tmp_path / "nested" / "engine.sqlite3")
    engine = create_engine(db_path=db)
    client = make_client(create_api(engine))
    assistant = client.beta.assistants.create(model="demo", name="Keeper")
    thread = client.beta.threads.create(metadata={"room": "r"})
    client.beta.threads.messages.create(thread.id, role="user", content="remember me")
    done = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=10
    )
    engine.close()
    in_flight = crash_with_running_run(db, thread.id, assistant.id)

    engine = create_engine(db_path=db)
    client = make_client(create_api(engine))
    try:
        assert client.beta.assistants.retrieve(assistant.id).name == "Keeper"
        assert client.beta.threads.retrieve(thread.id).metadata == {"room": "r"}
        texts = [m.role for m in client.beta.threads.messages.list(thread.id)]
        assert texts == ["assistant", "user"]
        runs = client.beta.threads.runs
        assert runs.retrieve(done.id, thread_id=thread.id).status == "completed"
        failed = runs.retrieve(in_flight, thread_id=thread.id)
        assert failed.status == "failed" and failed.failed_at
        assert failed.last_error.message == (
            "The server restarted while this run was in progress."
        )
        client.beta.threads.messages.create(thread.id, role="user", content="free")
    finally:
        engine.close()


def crash_with_running_run(db: str, thread_id: str, assistant_id: str) -> str:
    """Leave an in-progress run in the store, as a process that died would."""
    store = Store(db)
    fields = {"assistant_id": assistant_id, "model": "demo", "instructions": ""}
    run = objects.run(thread_id, {**fields, "tools": []}, 600)
    run["status"] = "in_progress"
    store.insert("runs", run)
    store.close()
    return run["id"]


def test_history_interleaves_messages_and_steps_in_order():
    store = Store(":memory:")
    thread = store.insert("threads", objects.thread(None, None))
    first = store.insert("messages", objects.message(thread["id"], "user", []))
    run = objects.run(thread["id"], {"assistant_id": "asst_1", "model": "m"}, 60)
    step = store.insert(
        "steps", objects.step(run, {"type": "tool_calls", "tool_calls": []})
    )
    last = store.insert("messages", objects.message(thread["id"], "user", []))
    assert [item["id"] for item in store.history(thread["id"])] == [
        first["id"],
        step["id"],
        last["id"],
    ]
    store.close()


# SQLite off the event loop ------------------------------------------------------


class PoolOffload:
    """An ``offload`` that runs each call in one worker thread, as tpool does."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.worker = self.pool.submit(threading.get_ident).result()
        self.calls = 0

    def __call__(self, fn, *args):
        """Run ``fn(*args)`` in the worker thread and return its result."""
        self.calls += 1
        return self.pool.submit(fn, *args).result()


def test_every_sqlite_statement_runs_through_offload(tmp_path, monkeypatch):
    threads_seen = set()
    connect = sqlite3.connect

    def traced_connect(*args, **kwargs):
        db = connect(*args, **kwargs)
        db.set_trace_callback(lambda sql: threads_seen.add(threading.get_ident()))
        return db

    monkeypatch.setattr(sqlite3, "connect", traced_connect)
    offload = PoolOffload()
    engine = create_engine(db_path=str(tmp_path / "e.sqlite3"), offload=offload)
    try:
        client = make_client(create_api(engine))
        assistant = client.beta.assistants.create(model="demo")
        thread = client.beta.threads.create()
        say(client, thread, "hello from the pool")
        handler = stream_run(client, thread, assistant)
        assert handler.current_run.status == "completed"
    finally:
        engine.close()
        offload.pool.shutdown()
    assert offload.calls > 10
    assert threads_seen == {offload.worker}


def test_a_locked_store_answers_503_store_busy_then_works(tmp_path):
    db = str(tmp_path / "engine.sqlite3")
    engine = Engine(Store(db, busy_timeout_s=0.1))
    client = make_client(create_api(engine))
    thread = client.beta.threads.create()
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process's long write, say
    try:
        with pytest.raises(openai.InternalServerError) as caught:
            say(client, thread, "while locked")
    finally:
        other.execute("ROLLBACK")
        other.close()
    error = caught.value
    assert (error.status_code, error.type, error.code) == (
        503,
        "server_error",
        "store_busy",
    )
    assert error.response.headers["x-should-retry"] == "false"
    try:
        message = say(client, thread, "after the lock")
        listed = client.beta.threads.messages.list(thread.id)
        assert [m.id for m in listed] == [message.id]
    finally:
        engine.close()


def test_a_run_whose_store_locks_mid_reply_still_ends_its_stream(tmp_path):
    db = str(tmp_path / "engine.sqlite3")
    gate = threading.Event()
    engine = Engine(Store(db, busy_timeout_s=0.1), default_provider=Gated(gate))
    client = make_client(create_api(engine))
    assistant = client.beta.assistants.create(model="gated")
    thread = client.beta.threads.create()
    say(client, thread, "hi")
    other = sqlite3.connect(db, isolation_level=None)
    try:
        with client.beta.threads.runs.stream(
            thread_id=thread.id, assistant_id=assistant.id
        ) as events:
            for event in events:
                if event.event == "thread.message.delta" and not gate.is_set():
                    other.execute("BEGIN EXCLUSIVE")
                    gate.set()  # the reply ends while nothing can be written
        assert event.event != "thread.run.completed"
    finally:
        if other.in_transaction:
            other.execute("ROLLBACK")
        other.close()
        engine.close()


class Gated:
    """A provider that says "first " 50 times, pauses, says "then ", waits for
    ``gate``, then says "last"."""

    name = "gated"

    def __init__(self, gate: threading.Event, pause_s: float = 0.0) -> None:
        self.gate = gate
        self.pause_s = pause_s

    def stream(self, request):
        """Yield the first words, wait for the gate, then finish the reply."""
        for _ in range(50):
            yield TextDelta("first ")
        time.sleep(self.pause_s)
        yield TextDelta("then ")
        self.gate.wait(10)
        yield TextDelta("last")


# The growing reply ------------------------------------------------------------


def test_the_growing_reply_is_saved_about_once_a_second(monkeypatch):
    gate = threading.Event()
    engine = create_engine(default_provider=Gated(gate, pause_s=1.1))
    writes = []
    update = engine.store.update
    monkeypatch.setattr(
        engine.store,
        "update",
        lambda kind, obj: writes.append(kind) or update(kind, obj),
    )
    client = make_client(create_api(engine))
    try:
        assistant = client.beta.assistants.create(model="gated")
        thread = client.beta.threads.create()
        say(client, thread, "hi")
        run = client.beta.threads.runs.create(
            thread_id=thread.id, assistant_id=assistant.id
        )
        saved = wait_until(lambda: reply_so_far(client, thread.id), timeout_s=5)
        assert saved.status == "in_progress"
        assert saved.content[0].text.value == "first " * 50 + "then "
        assert writes.count("messages") == 1  # 51 fragments, one write
        gate.set()
        done = client.beta.threads.runs.poll(run.id, thread_id=thread.id)
        assert done.status == "completed"
        assert reply_so_far(client, thread.id, "completed").content[0].text.value == (
            "first " * 50 + "then last"
        )
    finally:
        gate.set()
        engine.close()


def reply_so_far(client, thread_id: str, status: str = "in_progress"):
    """Return the assistant message if it has stored text and ``status``."""
    newest = client.beta.threads.messages.list(thread_id, limit=1).data[0]
    if newest.role == "assistant" and newest.content and newest.status == status:
        return newest
    return None


def test_recovery_keeps_the_saved_text_of_an_interrupted_reply(tmp_path):
    db = str(tmp_path / "engine.sqlite3")
    store = Store(db)
    thread = store.insert("threads", objects.thread(None, None))
    fields = {"assistant_id": "asst_1", "model": "demo", "instructions": ""}
    run = objects.run(thread["id"], {**fields, "tools": []}, 600)
    run["status"] = "in_progress"
    store.insert("runs", run)
    reply = objects.message(
        thread["id"], "assistant", [objects.text_block("Half a rep")],
        status="in_progress", completed_at=None, run_id=run["id"],
    )  # fmt: skip
    store.insert("messages", reply)
    store.close()  # as if killed: nothing closed the run

    engine = create_engine(db_path=db)
    try:
        client = make_client(create_api(engine))
        kept = client.beta.threads.messages.retrieve(
            reply["id"], thread_id=thread["id"]
        )
        assert kept.status == "incomplete"
        assert kept.incomplete_details.reason == "run_failed"
        assert kept.content[0].text.value == "Half a rep"
    finally:
        engine.close()


# One process per file -----------------------------------------------------------

OPEN_STORE = (
    "import sys\nfrom assistant.engine.store import Store\nStore(sys.argv[1]).close()\n"
)


def open_in_another_process(db: str) -> subprocess.CompletedProcess:
    """Open and close the store at ``db`` in a fresh Python process."""
    return subprocess.run(
        [sys.executable, "-c", OPEN_STORE, db],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_second_process_cannot_open_the_same_file(tmp_path):
    db = str(tmp_path / "engine.sqlite3")
    engine = create_engine(db_path=db)
    try:
        refused = open_in_another_process(db)
    finally:
        engine.close()
    assert refused.returncode != 0
    assert "StoreInUseError" in refused.stderr
    assert f"The database file {db} is in use by another Threadroom process" in (
        refused.stderr
    )
    assert "use shared mode (set REDIS_URL and DATABASE_URL)" in refused.stderr
    allowed = open_in_another_process(db)
    assert allowed.returncode == 0, allowed.stderr


def test_a_second_app_in_this_process_cannot_open_it_either(make_app, tmp_path):
    db = str(tmp_path / "threadroom.sqlite3")
    first = make_app(ENGINE_DB=db)
    with pytest.raises(StoreInUseError, match="in use by another Threadroom process"):
        make_app(ENGINE_DB=db)
    first.extensions["threadroom.engine"].close()
    second = make_app(ENGINE_DB=db)
    assert second.extensions["threadroom.engine"].store.select("threads") == []


def test_memory_stores_need_no_lock():
    first, second = Store(":memory:"), Store(":memory:")
    first.close()
    second.close()

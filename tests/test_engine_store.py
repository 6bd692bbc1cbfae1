"""The engine's SQLite store: persistence across restarts and crash recovery."""

from __future__ import annotations

from engine_helpers import make_client

from assistant.engine import create_engine
from assistant.engine import objects
from assistant.engine.store import Store


def test_restart_keeps_data_and_fails_in_flight_runs(tmp_path):
    db = str(tmp_path / "nested" / "engine.sqlite3")
    engine = create_engine(db_path=db)
    client = make_client(engine.wsgi_app)
    assistant = client.beta.assistants.create(model="demo", name="Keeper")
    thread = client.beta.threads.create(metadata={"room": "r"})
    client.beta.threads.messages.create(thread.id, role="user", content="remember me")
    done = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=10
    )
    engine.close()
    in_flight = crash_with_running_run(db, thread.id, assistant.id)

    engine = create_engine(db_path=db)
    client = make_client(engine.wsgi_app)
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

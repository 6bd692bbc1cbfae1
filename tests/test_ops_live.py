"""The operators' view of real processes: log lines as shipped, shutdown noise,
start-up refusals, and eventlet's debug mode."""

from __future__ import annotations

import json

import pytest
import socketio
import websocket

import app as app_module
from tests.conftest import TEST_CONFIG
from tests.conftest import wait_for
from tests.live_server import LiveServer
from tests.live_server import start_refused
from tests.test_live_process import complete_a_turn


def test_json_logs_are_one_object_per_line_with_the_turn(tmp_path):
    with LiveServer(tmp_path, LOG_FORMAT="json") as server:
        complete_a_turn(server.url)
        wait_for(lambda: '"turn": {' in server.log())
    lines = [line for line in server.log().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is JSON
    turns = [r["turn"] for r in records if r.get("logger") == "threadroom.turns"]
    assert len(turns) == 1
    assert turns[0]["speakers"] == ["Live"] and turns[0]["status"] == "completed"
    assert turns[0]["backend_requests"] > 0 and turns[0]["tools"] == []


@pytest.mark.parametrize("gunicorn", [False, True], ids=["python-app.py", "gunicorn"])
def test_people_leaving_leave_no_shutdown_noise_in_the_log(tmp_path, gunicorn):
    """eventlet's WebSocket close() writes 'socket shutdown error: [Errno 9] Bad
    file descriptor' when a client has closed first (seen under gunicorn)."""
    with LiveServer(tmp_path, gunicorn=gunicorn) as server:
        url = server.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
        for _ in range(3):
            raw = websocket.create_connection(url, timeout=10)
            raw.recv()  # engine.io open
            raw.send("40")  # socket.io connect
            raw.recv()
            raw.close()
        client = socketio.Client()
        client.connect(server.url, transports=["websocket"])
        client.disconnect()
        complete_a_turn(server.url)  # a later line shows the server went on
        wait_for(lambda: "status=completed" in server.log())
    assert "socket shutdown error" not in server.log()
    assert "Traceback" not in server.log()


def test_a_base_url_without_a_scheme_stops_the_server_with_one_clear_line(tmp_path):
    error = start_refused(tmp_path, MODEL_BASE_URL="127.0.0.1:11434/v1")
    assert "MODEL_BASE_URL='127.0.0.1:11434/v1' has no http:// or https://" in error


def test_python_app_py_serves_with_eventlet_debug_off(monkeypatch, make_app):
    """eventlet.wsgi.server's debug=True (its default, kept by socketio.run) sends
    a failing request's traceback to the client."""
    import eventlet
    import eventlet.wsgi

    seen: dict = {}
    monkeypatch.setattr(app_module, "listen", lambda host, port: ("socket", port))
    monkeypatch.setattr(
        eventlet.wsgi, "server", lambda sock, app, **kw: seen.update(kw)
    )
    app_module.serve(make_app(**{**TEST_CONFIG, "PORT": 5999}))
    assert seen["debug"] is False
    assert seen["max_size"] >= 10_000 and seen["minimum_chunk_size"] == 0


def test_python_app_py_keeps_small_socket_buffers_per_connection(monkeypatch, make_app):
    """An idle WebSocket keeps its request's buffers: eventlet's 8 + 16 KiB were a
    sixth of its memory.  Never unbuffered: eventlet's writelines loses data."""
    import eventlet.wsgi

    seen: dict = {}
    monkeypatch.setattr(app_module, "listen", lambda host, port: ("socket", port))
    monkeypatch.setattr(
        eventlet.wsgi, "server", lambda sock, app, **kw: seen.update(kw)
    )
    app_module.serve(make_app(**{**TEST_CONFIG, "PORT": 5999}))
    protocol = seen["protocol"]
    assert 0 < protocol.rbufsize <= 1024 and 0 < protocol.wbufsize <= 1024

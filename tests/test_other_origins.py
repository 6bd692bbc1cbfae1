"""The original client on another origin: CORS on /stream and Socket.IO, and its
tokenless stream mode."""

from __future__ import annotations

from tests.conftest import Person
from tests.conftest import wait_for

VUE = "http://localhost:5173"
HANDSHAKE = "/socket.io/?EIO=4&transport=polling"


def test_a_listed_origin_may_post_to_stream_preflight_included(make_app):
    client = make_app(CORS_ALLOWED_ORIGINS=[VUE]).test_client()
    preflight = client.options(
        "/stream",
        headers={
            "Origin": VUE,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == VUE
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    body = {"content": "hello", "user_id": "vue-1", "name": "Vue"}
    response = client.post("/stream", json=body, headers={"Origin": VUE})
    assert response.headers["Access-Control-Allow-Origin"] == VUE
    exposed = response.headers["Access-Control-Expose-Headers"]
    assert "X-Threadroom-Token" in exposed
    other = client.post("/stream", json=body, headers={"Origin": "http://evil.test"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_without_a_list_stream_answers_no_other_origin(client):
    body = {"content": "hello", "user_id": "vue-1", "name": "Vue"}
    response = client.post("/stream", json=body, headers={"Origin": VUE})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_a_list_of_origins_keeps_the_pages_own_origin_in(make_app):
    client = make_app(CORS_ALLOWED_ORIGINS=[VUE]).test_client()
    own = client.get(HANDSHAKE, headers={"Origin": "http://localhost"})
    assert own.status_code == 200  # the page served by this app
    listed = client.get(HANDSHAKE, headers={"Origin": VUE})
    assert listed.status_code == 200
    foreign = client.get(HANDSHAKE, headers={"Origin": "http://evil.test"})
    assert foreign.status_code == 400


def test_the_original_clients_tokenless_stream_post_is_its_own_tab(make_app):
    app = make_app(LEGACY_STREAM_SENDERS="address")
    alice, bob = Person(app, app.test_client()), Person(app, app.test_client())
    alice.register("Alice", user_id="vue-alice")
    bob.register("Bob")
    body = {"id": "m-1", "content": "hello", "user_id": "vue-alice", "name": "Alice"}
    reply = app.test_client().post("/stream", json=body)
    assert "Hi Alice!" in reply.get_data(as_text=True)
    wait_for(lambda: bob.payloads("message-list")[1:])
    assert bob.payloads("message")[-1]["name"] == "Alice"  # not "Alice (2)"
    alice.wait("ai-end")
    assert [m for m in alice.payloads("message") if m["id"] == "m-1"] == []
    assert alice.payloads("message-list")[1:] == []  # the reply came by the stream
    assert "Alice (2)" not in str(bob.pull())  # nobody new joined


def test_without_the_setting_a_tokenless_post_is_someone_new(app):
    alice = Person(app, app.test_client())
    alice.register("Alice", user_id="vue-alice")
    body = {"content": "hello", "user_id": "vue-alice", "name": "Alice"}
    app.test_client().post("/stream", json=body)
    assert alice.wait("message")[0]["name"] == "Alice (2)"

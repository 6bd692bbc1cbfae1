"""Text at the edges: lone surrogates, normalisation, lookalike and reserved names."""

from __future__ import annotations

import pytest

from tests.conftest import wait_for

SURROGATE = "evil \ud800 here"


def test_a_lone_surrogate_is_refused_and_the_room_keeps_answering(people):
    alice, bob = people("Alice"), people("Bob")
    ack = alice.say(SURROGATE)
    assert ack == {
        "ok": False,
        "error": "This message contains an invalid character (a lone UTF-16"
        " surrogate).",
    }
    assert bob.say("still there?")["ok"]
    assert bob.wait("ai-end")[0]["status"] == "completed"
    heard = [m["content"] for m in alice.payloads("message")]
    assert heard == ["still there?"]  # nobody saw the refused message


def test_a_lone_surrogate_in_a_nickname_is_refused(people):
    stranger = people()
    ack = stranger.register("x\udfffy")
    assert ack == {
        "ok": False,
        "error": "A nickname contains an invalid character (a lone UTF-16 surrogate).",
    }
    assert stranger.register("Kim")["ok"]


def test_a_lone_surrogate_over_stream_is_a_400(client, people):
    bystander = people("Bystander")
    body = {"content": SURROGATE, "user_id": "u-eve", "name": "Eve"}
    response = client.post("/stream", json=body)
    assert response.status_code == 400
    assert "lone UTF-16 surrogate" in response.get_json()["error"]
    assert bystander.say("hello")["ok"]
    assert bystander.wait("ai-end")[0]["status"] == "completed"


def test_text_is_stored_in_nfc(people):
    alice, bob = people("Alice"), people("Bob")
    assert alice.say("cafe\u0301")["ok"]  # e + combining acute
    assert bob.wait("message")[0]["content"] == "caf\u00e9"


@pytest.mark.parametrize(
    "lookalike",
    ["alice\u200b", "\u0430lice", "\uff41\uff4c\uff49\uff43\uff45", "AIice", "ALICE"],
    ids=["zero-width", "cyrillic-a", "fullwidth", "capital-i", "upper-case"],
)
def test_a_lookalike_of_a_present_name_gets_a_suffix(people, lookalike):
    alice = people("alice")
    other = people()
    ack = other.register(lookalike, user_id="someone-else")
    assert ack["ok"] and ack["name"].endswith(" (2)")
    assert alice.wait("join")[0]["name"] == ack["name"]


def test_fullwidth_and_invisible_characters_are_cleaned_from_a_name(people):
    other = people()
    ack = other.register("\uff2b\uff49\uff4d\u200b", user_id="u-kim")
    assert ack["name"] == "Kim"


def test_an_emoji_family_keeps_its_joiners(people):
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    ack = people().register(f"{family} fan", user_id="u-fan")
    assert ack["name"] == f"{family} fan"


@pytest.mark.parametrize(
    "name", ["Threadroom demo (offline)", "threadroom", "System", "\u0430ssistant"]
)
def test_the_assistants_and_servers_names_cannot_be_taken(people, name):
    ack = people().register(name, user_id="u-mallory")
    assert ack["ok"] is False
    assert "reserved for the assistant or the server" in ack["error"]


@pytest.mark.parametrize("user_id", ["system", "Assistant"])
def test_reserved_user_ids_cannot_be_claimed(people, user_id):
    ack = people().register("Mallory", user_id=user_id)
    assert ack == {
        "ok": False,
        "error": f"The user id {user_id!r} is reserved; please use another.",
    }


def test_a_reserved_name_over_stream_is_a_400(client):
    body = {"content": "hi", "user_id": "u-m", "name": "Threadroom"}
    response = client.post("/stream", json=body)
    assert response.status_code == 400
    assert "reserved" in response.get_json()["error"]


def test_a_bystander_room_is_unaffected_by_junk(people):
    bystander = people("Bea", room="quiet")
    attacker = people("Mallory", room="noisy")
    for junk in (SURROGATE, "\x00", "", None, {"content": ["x"]}):
        payload = {"content": junk} if not isinstance(junk, dict) else junk
        assert attacker.emit("message", payload)["ok"] is False
    assert bystander.say("hi")["ok"]
    wait_for(lambda: bystander.payloads("ai-end"))
    assert bystander.payloads("ai-end")[0]["status"] == "completed"


@pytest.mark.parametrize(
    "field, value, error",
    [
        ("room", "lobby\n", "A room name is 1-32 lowercase letters"),
        ("user_id", "u-ann\n", "The user id must be up to 64 letters"),
    ],
)
def test_a_trailing_newline_does_not_slip_into_a_room_name_or_an_id(
    people, field, value, error
):
    """Python's "$" matches before a final newline: names and ids become keys,
    channels and log lines, where a newline splits them."""
    ann = people()
    ack = ann.emit("register", {"user_id": "u-ann", "name": "Ann", field: value})
    assert ack["ok"] is False and ack["error"].startswith(error)


def test_a_trailing_newline_does_not_slip_into_a_message_id(people):
    ann = people("Ann")
    ack = ann.say("hello", "m-1\n")
    assert ack == {"ok": False, "error": ack["error"]}
    assert ack["error"].startswith("The message id must be up to 64 letters")

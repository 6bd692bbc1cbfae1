"""The app factory's own duties."""

from __future__ import annotations

import os

from app import instance_secret


def test_a_blank_secret_key_becomes_a_kept_random_one(tmp_path):
    first = instance_secret(str(tmp_path / "instance"))
    assert len(first) == 64 and first == instance_secret(str(tmp_path / "instance"))
    assert first != instance_secret(str(tmp_path / "elsewhere"))
    assert os.stat(tmp_path / "instance" / "secret_key").st_mode & 0o077 == 0


def test_the_engine_is_served_at_v1_only_with_a_key(make_app):
    closed = make_app().test_client()
    assert closed.get("/v1/assistants").status_code == 404
    opened = make_app(ENGINE_API_KEY="k3y").test_client()
    assert opened.get("/v1/assistants").status_code == 401
    listed = opened.get("/v1/assistants", headers={"Authorization": "Bearer k3y"})
    assert listed.status_code == 200 and listed.get_json()["object"] == "list"

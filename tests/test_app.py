"""The app factory's own duties."""

from __future__ import annotations

import os

from app import instance_secret


def test_a_blank_secret_key_becomes_a_kept_random_one(tmp_path):
    first = instance_secret(str(tmp_path / "instance"))
    assert len(first) == 64 and first == instance_secret(str(tmp_path / "instance"))
    assert first != instance_secret(str(tmp_path / "elsewhere"))
    assert os.stat(tmp_path / "instance" / "secret_key").st_mode & 0o077 == 0

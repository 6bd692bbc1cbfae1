"""The socket ``python app.py`` listens on."""

from __future__ import annotations

import socket

from app import listen


def test_connections_are_accepted_without_nagle_delay():
    listener = listen("127.0.0.1", 0)
    try:
        client = socket.create_connection(listener.getsockname())
        accepted, _ = listener.accept()
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        accepted.close()
        client.close()
    finally:
        listener.close()

"""The WebSocket transport as a browser negotiates it with ``python app.py``."""

from __future__ import annotations

import json

import pytest
import websocket

from tests.live_server import LiveServer

BROWSER_OFFER = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with LiveServer(tmp_path_factory.mktemp("transport")) as live:
        yield live


def test_a_browser_offering_deflate_gets_uncompressed_frames(server):
    ws = websocket.create_connection(
        server.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket",
        header=[BROWSER_OFFER],
        timeout=10,
    )
    try:
        assert "sec-websocket-extensions" not in ws.getheaders()
        opening = ws.recv()  # readable as it is: no compressed frame
        assert opening.startswith("0")
        assert json.loads(opening[1:])["sid"]
    finally:
        ws.close()

"""How the WebSocket transport is negotiated: without permessage-deflate.

Every browser offers permessage-deflate.  eventlet's WebSocket accepts the offer
and then compresses every frame, each connection with its own zlib stream (about
100 KB once used), and python-engineio has no option to decline it or to skip
small frames.  Room events are a few hundred bytes, so compression bought little
and cost the most: issue 14 measured 174 against 70 KB per idle connection, and
the server and every client compressing each delivery separately.  socket.io 4's
own server declines the offer by default for the same reason.

The offer is a request header, so it is declined here, before python-engineio
sees the request: with the header gone, the handshake answers without the
extension and frames go out as they are.  Only Socket.IO serves WebSockets here.
"""

from __future__ import annotations

from collections.abc import Callable

OFFER = "HTTP_SEC_WEBSOCKET_EXTENSIONS"


def decline_websocket_compression(wsgi_app: Callable) -> Callable:
    """Wrap a WSGI app so that WebSocket handshakes never negotiate compression."""

    def without_compression(environ, start_response):
        environ.pop(OFFER, None)
        return wsgi_app(environ, start_response)

    return without_compression

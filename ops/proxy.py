"""Serving behind reverse proxies, at the root or under a path such as ``/chat/``."""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix


def init_proxy(app: Flask) -> None:
    """Trust ``TRUSTED_PROXIES`` proxies' X-Forwarded-For/-Proto/-Host/-Prefix.

    Off by default: without a proxy anyone could send those headers and choose
    the address the per-address limits count against.  With it, the client's
    address, scheme, host and the path prefix (``SCRIPT_NAME``, so ``url_for``
    and redirects carry ``/chat``) are the ones the proxy saw.  Called last in
    the factory: the Socket.IO and ``/v1`` middlewares must see the fixed
    environment too.
    """
    hops = app.config["TRUSTED_PROXIES"]
    if hops > 0:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_prefix=hops
        )

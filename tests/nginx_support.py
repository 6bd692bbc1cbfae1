"""A real nginx on loopback, configured with the README's server block, for tests.

The configuration is read from the README (its ``nginx`` code blocks: one process,
or shared mode's several), so the documented configuration is the tested one; only
the listen address and the upstream ports are changed.  nginx runs in the
foreground with every path (pid, logs, temporary files) in a temporary directory.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from tests.live_server import ROOT
from tests.live_server import free_port
from tests.live_server import stop_process
from tests.live_server import wait_healthy

NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.path.exists(p)),
    None,
)
SKIP_REASON = "install nginx (apt-get install nginx) to run the reverse-proxy tests"


SHARED_MARKER = "# Shared mode:"  # the first line of the shared-mode block


def readme_nginx_blocks() -> list[str]:
    """Return the README's nginx configuration blocks."""
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```nginx\n(.*?)```", text, re.S)


def readme_server_block(shared: bool = False) -> str:
    """Return the README's nginx block for one process, or for shared mode's
    several."""
    blocks = [
        block
        for block in readme_nginx_blocks()
        if block.startswith(SHARED_MARKER) == shared
    ]
    assert len(blocks) == 1, "the README should hold one nginx block of each kind"
    return blocks[0]


def nginx_conf(
    directory: Path, listen_port: int, app_ports: list[int], block: str
) -> str:
    """Return a whole nginx.conf around ``block``, on loopback ports: the upstream's
    servers 127.0.0.1:5020, :5021, ... become ``app_ports``."""
    block = block.replace("listen 80;", f"listen 127.0.0.1:{listen_port};", 1)
    for n, port in enumerate(app_ports):
        old = f"server 127.0.0.1:{5020 + n};"
        assert old in block, f"the block names fewer upstreams than {app_ports}"
        block = block.replace(old, f"server 127.0.0.1:{port};", 1)
    temp = "\n".join(
        f"    {kind}_temp_path {directory / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # As root, nginx's workers switch to "nobody", who cannot use this directory.
    user = "user root;\n" if os.geteuid() == 0 else ""
    return (
        f"{user}worker_processes 1;\ndaemon off;\npid {directory / 'nginx.pid'};\n"
        f"error_log {directory / 'error.log'} warn;\n"
        "events { worker_connections 1024; }\n"
        f"http {{\n    access_log {directory / 'access.log'};\n{temp}\n{block}\n}}\n"
    )


class Nginx:
    """nginx in front of ``app_ports``, listening on a free loopback port, with the
    README's block (``block`` if given: a variant of it)."""

    def __init__(self, directory: Path, *app_ports: int, block: str = "") -> None:
        assert NGINX is not None, SKIP_REASON
        self.directory = directory
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        directory.mkdir(parents=True, exist_ok=True)
        self.conf = directory / "nginx.conf"
        block = block or readme_server_block(shared=len(app_ports) > 1)
        self.conf.write_text(nginx_conf(directory, self.port, list(app_ports), block))
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 15) -> Nginx:
        """Start nginx and wait until it proxies /healthz."""
        command = [NGINX, "-p", str(self.directory), "-c", str(self.conf)]
        command += ["-e", str(self.directory / "error.log")]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        wait_healthy(self.process, self.url, timeout, "nginx", self.errors)
        return self

    def stop(self) -> None:
        """Stop nginx (it shuts down quickly on SIGTERM)."""
        stop_process(self.process)

    def errors(self) -> str:
        """Return nginx's error log."""
        path = self.directory / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def __enter__(self) -> Nginx:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

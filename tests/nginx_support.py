"""A real nginx on loopback, configured with the README's server block, for tests.

The configuration is read from the README (its ``nginx`` code block), so the
documented configuration is the tested one; only the listen address and the
upstream port are changed.  nginx runs in the foreground with every path (pid,
logs, temporary files) in a temporary directory.
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


def readme_server_block() -> str:
    """Return the README's nginx configuration block."""
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```nginx\n(.*?)```", text, re.S)
    assert len(blocks) == 1, "the README should hold exactly one nginx block"
    return blocks[0]


def nginx_conf(directory: Path, listen_port: int, app_port: int) -> str:
    """Return a whole nginx.conf around the README's block, on loopback ports."""
    block = readme_server_block()
    block = block.replace("listen 80;", f"listen 127.0.0.1:{listen_port};", 1)
    block = block.replace("server 127.0.0.1:5020;", f"server 127.0.0.1:{app_port};", 1)
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
    """nginx in front of ``app_port``, listening on a free loopback port."""

    def __init__(self, directory: Path, app_port: int) -> None:
        assert NGINX is not None, SKIP_REASON
        self.directory = directory
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        directory.mkdir(parents=True, exist_ok=True)
        self.conf = directory / "nginx.conf"
        self.conf.write_text(nginx_conf(directory, self.port, app_port))
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

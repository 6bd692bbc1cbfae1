"""``python app.py`` and gunicorn (``gunicorn.conf.py``) raise their own open-file
limit, so a shell's default soft limit (1,024) does not cap them at a thousand
connections."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest

from tests.live_server import LiveServer


def open_file_limits(pid: int) -> tuple[int, int]:
    """Return a process's soft and hard open-file limits, as the kernel has them."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError("no open-file limit in /proc")


@pytest.fixture
def low_soft_file_limit():
    """Start children with a soft open-file limit of 512 (hard limit untouched)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= 512:
        pytest.skip(f"the hard open-file limit ({hard}) leaves nothing to raise")
    resource.setrlimit(resource.RLIMIT_NOFILE, (512, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def serving_process(pid: int) -> int:
    """Return gunicorn's one worker, or ``pid`` itself when it has no children."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return int(children[0]) if children else pid


@pytest.mark.parametrize(
    "gunicorn", [False, True], ids=["python-app.py", "gunicorn-gevent"]
)
def test_the_server_raises_its_soft_file_limit_to_the_hard_limit(
    tmp_path, low_soft_file_limit, gunicorn
):
    with LiveServer(tmp_path, gunicorn=gunicorn, worker="gevent") as server:
        assert server.process is not None
        soft, hard = open_file_limits(serving_process(server.process.pid))
        assert soft == hard

#!/usr/bin/env python3
"""Set Threadroom up and run it, or its tests, with nothing but Python 3.11.

    python3 dev.py run     # create .venv, install requirements, serve on the demo model
    python3 dev.py test    # create .venv, install dev requirements, lint, run tests
                           # (the page's JS unit tests too, when Node 20+ is installed)
    python3 dev.py lock    # recompile the lock files after a change to pyproject.toml

The virtual environment is reused; requirements are reinstalled only when a
requirements file changes (a hash of them is kept in .venv).  requirements.txt and
requirements-dev.txt are lock files: every package, transitive ones too, pinned,
compiled by pip-tools from the direct dependencies in pyproject.toml.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")


def ensure_venv(requirements: str) -> None:
    """Create .venv and install ``requirements`` unless already done for these pins."""
    if not PYTHON.exists():
        print("Creating .venv …", flush=True)
        venv.create(VENV, with_pip=True)
    stamp = VENV / f".installed-{requirements}"
    digest = requirements_digest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    print(f"Installing {requirements} …", flush=True)
    pip = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "-r", str(ROOT / requirements)], check=True)
    stamp.write_text(digest)


def requirements_digest() -> str:
    """Hash every requirements file, so a changed pin triggers a reinstall."""
    digest = hashlib.sha256()
    for path in sorted(ROOT.glob("requirements*.txt")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def run(args: list[str]) -> int:
    """Serve the app (``python app.py``) on eventlet."""
    ensure_venv("requirements.txt")
    return subprocess.call([str(PYTHON), "app.py", *args], cwd=ROOT)


def test(args: list[str]) -> int:
    """Lint and type-check, then run the JS unit tests and the whole test suite
    (extra arguments go to pytest)."""
    ensure_venv("requirements-dev.txt")
    lint = subprocess.call([str(PYTHON), "-m", "ruff", "check", "."], cwd=ROOT)
    if lint:
        return lint
    # The type checker keeps the hints honest (its files: pyproject.toml).
    types = subprocess.call([str(PYTHON), "-m", "mypy"], cwd=ROOT)
    if types:
        return types
    js = test_js()
    if js:
        return js
    return subprocess.call([str(PYTHON), "-m", "pytest", *args], cwd=ROOT)


def test_js() -> int:
    """Run the page's JS unit tests with Node's own runner, if Node 20+ is installed.

    Only the tests need Node; the app serves the page's modules as they are.
    """
    node = shutil.which("node")
    if node is None or node_major(node) < 20:
        print("Skipped the JS unit tests (tests/js): install Node 20+ to run them.")
        return 0
    command = [node, "--test", "--test-reporter=spec", "tests/js/"]
    return subprocess.call(command, cwd=ROOT)


def node_major(node: str) -> int:
    """Return the major version of ``node`` ("v20.20.2" is 20; 0 when unreadable)."""
    done = subprocess.run([node, "--version"], capture_output=True, text=True)
    major = done.stdout.strip().lstrip("v").split(".")[0]
    return int(major) if major.isdigit() else 0


def lock(args: list[str]) -> int:
    """Compile pyproject.toml's dependencies into the two lock files (extra
    arguments go to pip-compile, e.g. ``--upgrade-package flask``)."""
    ensure_venv("requirements-dev.txt")
    compile_ = [str(PYTHON), "-m", "piptools", "compile", "-q", "--strip-extras"]
    compile_ += ["--no-emit-index-url", "--no-emit-find-links", *args]
    env = {**os.environ, "CUSTOM_COMPILE_COMMAND": "python3 dev.py lock"}
    for extra, output in (
        ([], "requirements.txt"),
        (["--extra", "dev"], "requirements-dev.txt"),
    ):
        command = [*compile_, *extra, "-o", output, "pyproject.toml"]
        if subprocess.call(command, cwd=ROOT, env=env):
            return 1
    return 0


COMMANDS = {"run": run, "test": test, "lock": lock}


def main() -> int:
    """Dispatch ``dev.py run`` / ``dev.py test``."""
    if sys.version_info < (3, 11):  # noqa: UP036 - a newcomer's old Python
        sys.exit("Threadroom needs Python 3.11 or newer.")
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(__doc__)
        return 2
    return COMMANDS[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())

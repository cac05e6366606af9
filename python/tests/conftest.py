"""Helpers of the Python package's tests: they run the installed pymanager_rs (the wheel),
real services, and real pytest sessions in subprocesses.

Every process a test starts carries ``PYMANAGER_TEST_TAG=<random>`` in its environment (all
descendants inherit it), so that "nothing is left behind" is checked by looking at every
process on the machine, not only at the pids a test happened to learn.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "pytest"
#: How long a test waits for something that must happen (a busy machine is slow).
PATIENCE = 120.0


@pytest.fixture
def tag(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A tag in this process's environment, inherited by everything the test starts; at the
    end no process may carry it any more (besides this one)."""
    value = uuid.uuid4().hex
    monkeypatch.setenv("PYMANAGER_TEST_TAG", value)
    yield value
    left = tagged(value)
    assert not left, f"processes left behind: {describe(left)}"


def tagged(tag: str) -> List[int]:
    """Pids of the processes (other than this one) whose environment carries the tag."""
    needle = f"PYMANAGER_TEST_TAG={tag}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle in f.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:
            continue
    return found


def describe(pids: List[int]) -> str:
    out = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            out.append(f"{pid}: {cmdline}")
        except OSError:
            out.append(f"{pid}: (gone)")
    return "; ".join(out)


def wait_gone(pids: List[int], timeout: float = PATIENCE) -> List[int]:
    """Waits (on pidfds, no polling) until every pid has ended; the ones still alive after
    ``timeout`` seconds."""
    fds: Dict[int, int] = {}
    for pid in pids:
        try:
            fds[os.pidfd_open(pid)] = pid
        except ProcessLookupError:
            pass
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    try:
        remaining = dict(fds)
        deadline = _now() + timeout
        while remaining and _now() < deadline:
            for fd, _ in poller.poll(max(1, int((deadline - _now()) * 1000))):
                poller.unregister(fd)
                remaining.pop(fd, None)
        return sorted(remaining.values())
    finally:
        for fd in fds:
            os.close(fd)


def _now() -> float:
    return time.monotonic()


def write_config(directory: Path, config: dict, name: str = "pymanager.json") -> Path:
    path = directory / name
    path.write_text(json.dumps(config, indent=2))
    return path


def http_service(name: str, **extra: object) -> dict:
    """A process serving HTTP on its port `http` (chosen free), verified by `GET /`."""
    process = {
        "executable": sys.executable,
        "arguments": ["-u", "-m", "http.server", "--bind", "127.0.0.1", f"${{ports.{name}.http}}"],
        "ports": {"http": 0},
        "verifier": {
            "type": "http",
            "arguments": {"url": f"http://127.0.0.1:${{ports.{name}.http}}/", "interval": 0.1},
        },
    }
    process.update(extra)
    return process


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A copy of examples/pytest to run pytest in."""
    dest = tmp_path / "example"
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache", ".pymanager"))
    return dest


def run_pytest(directory: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """``python -m pytest ARGS`` in ``directory`` (with this interpreter: the venv that
    has the wheel), its output in the result."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=directory,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )


class Barrier:
    """A Unix socket that tests in a pytest subprocess connect to, to tell the outer test
    something (a line) and then wait for its word: an event, not a sleep."""

    def __init__(self, directory: Path) -> None:
        self.path = str(directory / "barrier.sock")
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.path)
        self.server.listen(8)
        self.server.settimeout(PATIENCE)
        self.clients: List[socket.socket] = []

    def accept(self) -> dict:
        """The next client's message (one JSON line); it stays connected, waiting."""
        conn, _ = self.server.accept()
        conn.settimeout(PATIENCE)
        self.clients.append(conn)
        data = b""
        while not data.endswith(b"\n"):
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
        return json.loads(data)

    def release(self) -> None:
        for conn in self.clients:
            try:
                conn.sendall(b"go\n")
            except OSError:
                pass

    def close(self) -> None:
        for conn in self.clients:
            conn.close()
        self.server.close()


#: A test module for a pytest subprocess: tells the barrier about its environment, then
#: waits for the outer test's word (or, for ever, to be killed).
BARRIER_TEST = '''
import json, os, socket

def test_meet(pymanager_env):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(os.environ["BARRIER"])
    info = {
        "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"),
        "pid": os.getpid(),
        "manager": int(pymanager_env.environ["PYMANAGER_PID"]),
        "api": pymanager_env.url_base,
        "ports": {p["name"]: p.get("ports") for p in pymanager_env.processes()},
        "pids": [p["pid"] for p in pymanager_env.processes()],
    }
    s.sendall((json.dumps(info) + "\\n").encode())
    assert s.recv(16) == b"go\\n"
'''


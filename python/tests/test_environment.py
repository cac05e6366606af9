"""The Python API: an Environment over real services, started by the installed binary."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import PATIENCE, http_service, tagged, wait_gone, write_config
from pymanager_rs import Environment, PymanagerError, StartupError, find_pymanager_bin


def get(url: str) -> int:
    host, _, port = url.split("/")[2].partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("GET", "/" + url.split("/", 3)[3])
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_an_environment_serves_its_ports_logs_and_controls(tmp_path: Path, tag: str) -> None:
    config = write_config(
        tmp_path,
        {"keep-alive": True, "processes": {"web": http_service("web"), "side": http_service("side")}},
    )
    with Environment(config) as env:
        assert env.running
        port = env.port("web", "http")
        assert port == env.port("web") and port != env.port("side", "http")
        assert env.url("web") == f"http://127.0.0.1:{port}/"
        assert env.url("web", path="x") == f"http://127.0.0.1:{port}/x"
        assert get(env.url("web", path="/")) == 200
        assert env.environ["PYMANAGER_PORT_WEB_HTTP"] == str(port)
        assert env.status()["status"] == "running"
        assert [p["name"] for p in env.processes()] == ["web", "side"]
        # http.server logs each request on stderr: the API keeps the process's output.
        assert '"GET / HTTP/1.1" 200' in env.logs("web", lines=10)

        first = env.process("web")["pid"]
        restarted = env.restart("web")
        assert restarted["lifecycle"] == "ready" and restarted["pid"] != first
        assert env.port("web") == port, "a port is kept across restarts"
        assert env.stop("web")["lifecycle"] == "stopped"
        assert env.start("web")["lifecycle"] == "ready"

        with pytest.raises(PymanagerError, match="no port 'admin'.*its ports: http"):
            env.port("web", "admin")
        with pytest.raises(PymanagerError, match="no process 'nope'"):
            env.port("nope")
        with pytest.raises(PymanagerError) as e:
            env.restart("nope")
        assert e.value.status == 404
        pids = tagged(tag)
        assert len(pids) >= 3, "the guardian, the manager and the services carry the tag"
    # Leaving the block stopped everything: nothing is left, without waiting.
    assert not env.running
    assert tagged(tag) == []
    with pytest.raises(PymanagerError, match="not started"):
        env.status()


def test_a_startup_failure_raises_the_failure_report(tmp_path: Path, tag: str) -> None:
    config = write_config(
        tmp_path,
        {
            "processes": {
                "web": http_service("web"),
                "migrate": {
                    "executable": "sh",
                    "arguments": ["-c", "echo applying 0042_users; echo 'no such table: users' >&2; exit 3"],
                    "verifier": {"type": "exited", "arguments": {"expect_code": 0}},
                },
            }
        },
    )
    env = Environment(config)
    with pytest.raises(StartupError) as e:
        env.start()
    report = str(e.value)
    assert e.value.returncode == 5
    assert e.value.report == report and e.value.config == str(config)
    # The report names the process, the reason and its last output lines.
    assert "migrate" in report, report
    assert "no such table: users" in report, report
    assert "applying 0042_users" in report, report
    assert not env.running
    assert tagged(tag) == []


def test_a_config_that_cannot_be_loaded_is_a_startup_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(StartupError) as e:
        Environment(tmp_path / "missing.json").start()
    assert e.value.returncode == 1
    assert "missing.json" in str(e.value)
    write_config(tmp_path, {"processes": {"web": {"executable": "true", "arguments": 3}}})
    with pytest.raises(StartupError) as e:
        Environment(tmp_path / "pymanager.json").start()
    assert e.value.returncode == 5
    assert "processes.web.arguments" in str(e.value)


def test_a_startup_timeout_stops_what_was_started(tmp_path: Path, tag: str) -> None:
    # Nothing ever listens on the port the verifier asks: only the time-out ends the wait.
    config = write_config(
        tmp_path,
        {
            "processes": {
                "stuck": {
                    "executable": "sh",
                    "arguments": ["-c", "echo stuck-starting; exec sleep 600"],
                    "verifier": {"type": "tcp", "arguments": {"port": 9, "timeout": 600}},
                }
            }
        },
    )
    env = Environment(config, startup_timeout=3)
    with pytest.raises(StartupError) as e:
        env.start()
    assert e.value.returncode == 5
    report = str(e.value)
    assert "stuck" in report, "the report names what was not ready: " + report
    assert tagged(tag) == []


def test_two_copies_of_one_config_run_at_once_on_their_own_ports(tmp_path: Path, tag: str) -> None:
    config = write_config(tmp_path, {"processes": {"web": http_service("web")}})
    with Environment(config) as one, Environment(config) as two:
        assert one.port("web") != two.port("web")
        assert one.url_base != two.url_base
        assert get(one.url("web")) == 200 and get(two.url("web")) == 200
        assert {p["pid"] for p in one.processes()}.isdisjoint(p["pid"] for p in two.processes())


def test_the_api_needs_the_token_the_environment_was_given(tmp_path: Path, tag: str) -> None:
    config = write_config(tmp_path, {"processes": {"web": http_service("web")}})
    with Environment(config) as env:
        token = env.environ.get("PYMANAGER_TOKEN")
        assert token, "an environment always has a token of its own"
        conn = http.client.HTTPConnection("127.0.0.1", int(env.url_base.rsplit(":", 1)[1]), timeout=30)
        conn.request("GET", "/api/v1/processes")
        assert conn.getresponse().status == 401
        conn.close()


def test_kill_9_of_the_interpreter_leaves_no_process(tmp_path: Path, tag: str) -> None:
    config = write_config(
        tmp_path,
        {
            "processes": {
                "web": http_service("web"),
                # A grandchild too: the services' own children must go as well.
                "forker": {
                    "executable": "sh",
                    "arguments": ["-c", "sleep 600 & echo forked; sleep 600"],
                    "verifier": {"type": "output", "arguments": {"pattern": "forked"}},
                },
            }
        },
    )
    script = textwrap.dedent(
        f"""
        import sys
        from pymanager_rs import Environment
        env = Environment({str(config)!r})
        env.start()
        print("ready", flush=True)
        sys.stdin.read()
        """
    )
    python = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert python.stdout is not None
        assert python.stdout.readline().strip() == "ready"
        running = [p for p in tagged(tag) if p != python.pid]
        assert len(running) >= 5, "guardian, manager, web, sh and its sleeps"
        python.send_signal(signal.SIGKILL)
        python.wait()
        assert wait_gone(running, PATIENCE) == []
        assert tagged(tag) == []
    finally:
        python.kill()
        python.wait()


def test_the_binary_is_the_one_installed_beside_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYMANAGER_BIN", raising=False)
    path = find_pymanager_bin()
    assert os.path.dirname(path) == os.path.dirname(sys.executable), path
    version = subprocess.run([path, "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("pymanager ")
    monkeypatch.setenv("PYMANAGER_BIN", "/nonexistent/pymanager")
    with pytest.raises(FileNotFoundError, match="PYMANAGER_BIN=/nonexistent/pymanager"):
        find_pymanager_bin()
    # `python -m pymanager_rs` runs it too, for a venv whose bin/ is not on PATH.
    monkeypatch.delenv("PYMANAGER_BIN")
    out = subprocess.run(
        [sys.executable, "-m", "pymanager_rs", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout == version.stdout

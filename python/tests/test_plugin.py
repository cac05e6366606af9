"""The pytest plugin, through real pytest sessions (subprocesses) on examples/pytest and
on small projects made here, with real services."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from conftest import (
    BARRIER_TEST,
    PATIENCE,
    Barrier,
    http_service,
    run_pytest,
    tagged,
    wait_gone,
    write_config,
)


def summary(out: str) -> str:
    return out.strip().splitlines()[-1]


def test_the_example_passes_and_leaves_nothing(example: Path, tag: str) -> None:
    result = run_pytest(example)
    assert result.returncode == 0, result.stdout
    assert re.search(r"\b6 passed\b", summary(result.stdout)), result.stdout
    # The session's end stopped every environment before pytest exited: no wait needed.
    assert tagged(tag) == []


def test_the_example_passes_on_two_workers(example: Path, tag: str) -> None:
    result = run_pytest(example, "-n", "2")
    assert result.returncode == 0, result.stdout
    assert re.search(r"\b6 passed\b", summary(result.stdout)), result.stdout
    assert tagged(tag) == []


def test_a_failing_test_reports_the_logs_of_each_process(example: Path, tag: str) -> None:
    (example / "tests" / "test_deliberately_failing.py").write_text(
        textwrap.dedent(
            """
            def test_wrong_greeting(api):
                assert api.get("/hello/eve") == (200, "Goodbye, eve")
            """
        )
    )
    result = run_pytest(example, "tests/test_deliberately_failing.py")
    out = result.stdout
    assert result.returncode == 1, out
    assert re.search(r"-+ pymanager logs -+", out), out
    section = out[out.index("pymanager logs") :]
    # Each process's header, and its last lines: what the services printed.
    assert re.search(r"--- store \[ready, pid \d+\], last 20 lines:", section), section
    assert re.search(r"--- api \[ready, pid \d+\], last 20 lines:", section), section
    assert "store listening on 127.0.0.1:" in section, section
    assert "api listening on 127.0.0.1:" in section, section
    assert "GET /hello/eve" in section, section
    assert tagged(tag) == []


def test_two_workers_run_their_own_copies_at_once(example: Path, tag: str) -> None:
    (example / "tests" / "test_meet.py").write_text(BARRIER_TEST)
    barrier = Barrier(example)
    env = dict(os.environ, BARRIER=barrier.path)
    # --dist each: both workers run the meeting test, each in its own environment.
    pytest = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", "--dist", "each",
         "tests/test_meet.py"],
        cwd=example, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    output: list = []
    reader = threading.Thread(target=lambda: output.append(pytest.stdout.read()))  # type: ignore[union-attr]
    reader.start()
    try:
        one, two = barrier.accept(), barrier.accept()
        # Both environments are up at this moment: no port, API or process in common.
        assert {one["worker"], two["worker"]} == {"gw0", "gw1"}
        assert one["api"] != two["api"]
        ports = [p for info in (one, two) for proc in info["ports"].values() for p in proc.values()]
        assert len(ports) == 4 and len(set(ports)) == 4, (one, two)
        assert set(one["pids"]).isdisjoint(two["pids"])
        assert one["manager"] != two["manager"]
        barrier.release()
        assert pytest.wait(timeout=PATIENCE) == 0
    finally:
        barrier.close()
        pytest.kill()
        pytest.wait()
        reader.join()
    assert re.search(r"\b2 passed\b", output[0]), output[0]
    assert tagged(tag) == []


def _session_waiting_at_barrier(example: Path, *args: str):
    (example / "tests" / "test_meet.py").write_text(BARRIER_TEST)
    barrier = Barrier(example)
    env = dict(os.environ, BARRIER=barrier.path)
    pytest = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args, "tests/test_meet.py"],
        cwd=example, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    return barrier, pytest


def test_kill_9_of_pytest_leaves_no_process(example: Path, tag: str) -> None:
    barrier, pytest = _session_waiting_at_barrier(example)
    try:
        info = barrier.accept()
        running = [p for p in tagged(tag) if p != pytest.pid]
        assert info["manager"] in running and set(info["pids"]) <= set(running)
        pytest.send_signal(signal.SIGKILL)
        pytest.wait()
        assert wait_gone(running, PATIENCE) == []
    finally:
        barrier.close()
        pytest.kill()
        pytest.wait()
    assert tagged(tag) == []


def test_ctrl_c_stops_everything_before_pytest_exits(example: Path, tag: str) -> None:
    barrier, pytest = _session_waiting_at_barrier(example)
    try:
        barrier.accept()
        pytest.send_signal(signal.SIGINT)
        out, _ = pytest.communicate(timeout=PATIENCE)
        assert pytest.returncode == 2, out  # pytest's "interrupted"
        assert "KeyboardInterrupt" in out, out
        # pytest stopped the environment while it tore the session down.
        assert tagged(tag) == []
    finally:
        barrier.close()
        pytest.kill()
        pytest.wait()


def test_a_startup_failure_is_a_setup_error_carrying_the_report(tmp_path: Path, tag: str) -> None:
    write_config(
        tmp_path,
        {
            "processes": {
                "db": {
                    "executable": "sh",
                    "arguments": ["-c", "echo 'FATAL: data directory has wrong ownership'; exit 1"],
                    "verifier": {"type": "exited", "arguments": {"expect_code": 0}},
                }
            }
        },
    )
    (tmp_path / "test_one.py").write_text("def test_one(pymanager_env):\n    pass\n\ndef test_two(pymanager_env):\n    pass\n")
    result = run_pytest(tmp_path)
    out = result.stdout
    assert result.returncode == 1, out
    assert "ERROR at setup of test_one" in out and "ERROR at setup of test_two" in out, out
    assert "pymanager could not start" in out, out
    assert "FATAL: data directory has wrong ownership" in out, out
    # Once for the session, not once per test: the second test reuses the failure.
    assert re.search(r"\b2 errors\b", summary(out)), out
    assert tagged(tag) == []


def test_marks_give_modules_and_classes_their_own_environments(tmp_path: Path, tag: str) -> None:
    write_config(tmp_path, {"keep-alive": True, "processes": {"web": http_service("web")}})
    write_config(tmp_path, {"keep-alive": True, "processes": {"other": http_service("other")}}, "other.json")
    (tmp_path / "pytest.ini").write_text("[pytest]\npymanager_config = pymanager.json\n")
    (tmp_path / "test_a_marked_module.py").write_text(textwrap.dedent(
        """
        import pytest, os
        pytestmark = pytest.mark.pymanager(config="other.json")
        SEEN = {}

        def test_module_env(pymanager_env):
            assert [p["name"] for p in pymanager_env.processes()] == ["other"]
            os.environ["MODULE_MANAGER"] = pymanager_env.environ["PYMANAGER_PID"]

        class TestInside:
            def test_same_module_env(self, pymanager_env):
                assert pymanager_env.environ["PYMANAGER_PID"] == os.environ["MODULE_MANAGER"]
        """
    ))
    (tmp_path / "test_b_marked_class.py").write_text(textwrap.dedent(
        """
        import os, select, pytest

        def test_the_module_env_was_stopped_after_its_module():
            try:
                fd = os.pidfd_open(int(os.environ["MODULE_MANAGER"]))
            except ProcessLookupError:
                return
            assert select.select([fd], [], [], 0)[0], "still running"

        def test_session_env(pymanager_env):
            assert [p["name"] for p in pymanager_env.processes()] == ["web"]
            os.environ["SESSION_MANAGER"] = pymanager_env.environ["PYMANAGER_PID"]

        @pytest.mark.pymanager(config="other.json")
        class TestMarked:
            def test_class_env(self, pymanager_env):
                assert [p["name"] for p in pymanager_env.processes()] == ["other"]
                assert pymanager_env.environ["PYMANAGER_PID"] != os.environ["MODULE_MANAGER"]

        class TestUnmarked:
            def test_session_env_again(self, pymanager_env):
                assert pymanager_env.environ["PYMANAGER_PID"] == os.environ["SESSION_MANAGER"]
        """
    ))
    result = run_pytest(tmp_path)
    assert result.returncode == 0, result.stdout
    assert re.search(r"\b6 passed\b", summary(result.stdout)), result.stdout
    assert tagged(tag) == []


def test_a_mark_on_a_function_is_refused(tmp_path: Path) -> None:
    (tmp_path / "test_x.py").write_text(
        "import pytest\n\n@pytest.mark.pymanager(config='x.json')\ndef test_x():\n    pass\n"
    )
    result = run_pytest(tmp_path)
    assert result.returncode == 4, result.stdout
    assert "goes on a module" in result.stdout, result.stdout


def test_a_missing_config_names_the_ways_to_give_one(tmp_path: Path) -> None:
    (tmp_path / "test_x.py").write_text("def test_x(pymanager_env):\n    pass\n")
    result = run_pytest(tmp_path)
    assert result.returncode == 1, result.stdout
    assert "--pymanager-config FILE" in result.stdout, result.stdout
    result = run_pytest(tmp_path, "--pymanager-config", "elsewhere.json")
    assert str(tmp_path / "elsewhere.json") in result.stdout, result.stdout


def test_python_verifier_modules_work_with_the_python_extra(tmp_path: Path, tag: str) -> None:
    """`pip install "pymanager-rs[python]"` puts componentize-py beside the binary; a verifier
    module written for the original then works, with that venv's bin/ not on PATH."""
    tool = Path(sys.executable).parent / "componentize-py"
    assert tool.is_file(), 'install the wheel with its extra: pip install "pymanager-rs[python]"'
    (tmp_path / "checks.py").write_text(textwrap.dedent(
        """
        from pymutils.verifier import Verifier

        class SaidHello(Verifier):
            def run(self, proc):
                return proc.wait(30) == 0
        """
    ))
    write_config(tmp_path, {
        "keep-alive": True,
        "modules": {"checks": {"verifiers": ["SaidHello"]}},
        "processes": {"hello": {"executable": "echo", "arguments": ["hello"],
                                "verifier": {"type": "checks.SaidHello"}}},
    })  # fmt: skip
    env = dict(os.environ, PATH="/usr/bin:/bin", XDG_CACHE_HOME=str(tmp_path / "cache"))
    env.pop("PYMANAGER_COMPONENTIZE_PY", None)
    script = textwrap.dedent(
        """
        from pymanager_rs import Environment
        with Environment("pymanager.json") as env:
            print(env.process("hello")["verifier"]["outcome"])
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "passed", done.stdout
    assert tagged(tag) == []

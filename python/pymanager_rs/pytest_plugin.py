"""The pytest plugin of pymanager (loaded by pytest through the ``pytest11`` entry point).

- ``pymanager_env``: a session-scoped fixture, the :class:`~pymanager_rs.Environment` of
  ``--pymanager-config FILE``, else of the ini option ``pymanager_config``, else of
  ``pymanager.json`` in the rootdir. Started the first time a test asks for it, stopped at
  the end of the session (Ctrl-C included).
- ``@pytest.mark.pymanager(config="other.json")`` on a module (``pytestmark = ...``) or a
  class: its tests get an environment of their own as ``pymanager_env``, started for them
  and stopped once the last of them has run. The path is relative to the test file.
- Under pytest-xdist each worker starts its own copy, with its own ports (``0`` in the
  config's ``ports``) and its own API: no worker sees another's processes.
- A failed test's report gets a section "pymanager logs": the last lines of each
  process's output (ini option ``pymanager_log_lines``, default 20).
- A start-up failure is a set-up error of the tests that need the environment, and its
  message is the manager's failure report.

Each environment runs in its config file's directory.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, Iterator, List, Literal

import pytest

from ._environment import Environment, Process
from ._errors import PymanagerError, StartupError

MARKER = "pymanager"
SECTION = "pymanager logs"
_DEFAULT_CONFIG = "pymanager.json"


class _State:
    """The environments of marked modules and classes, by the node carrying the mark."""

    def __init__(self) -> None:
        self.envs: Dict[str, Environment] = {}
        self.failures: Dict[str, str] = {}

    def marked_env(self, holder: Any) -> Environment:
        key: str = holder.nodeid
        if key in self.failures:
            pytest.fail(self.failures[key], pytrace=False)
        env = self.envs.get(key)
        if env is None:
            mark = next(m for m in holder.own_markers if m.name == MARKER)
            base = os.path.dirname(str(holder.path))
            try:
                env = _start(os.path.join(base, _marker_config(mark, holder.nodeid)))
            except pytest.fail.Exception as e:
                self.failures[key] = str(e.msg)
                raise
            self.envs[key] = env
            holder.addfinalizer(lambda: self._stop(key))
        return env

    def _stop(self, key: str) -> None:
        env = self.envs.pop(key, None)
        if env is not None:
            env.stop()


_STATE = pytest.StashKey[_State]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pymanager", "pymanager environments")
    group.addoption(
        "--pymanager-config",
        metavar="FILE",
        default=None,
        help="the pymanager.json of the session's environment (fixture pymanager_env); "
        "default: the ini option pymanager_config, else pymanager.json in the rootdir",
    )
    parser.addini(
        "pymanager_config",
        "the pymanager.json of the session's environment (relative to the ini file)",
        default=None,
    )
    parser.addini(
        "pymanager_log_lines",
        "lines of each process's output in a failed test's 'pymanager logs' section "
        "(default 20; 0 leaves the section out)",
        default="20",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "pymanager(config): the module or class gets an environment of its own from this "
        "pymanager.json (relative to the test file), as the fixture pymanager_env",
    )
    config.stash[_STATE] = _State()


@pytest.fixture(scope="session")
def _pymanager_session_env(request: pytest.FixtureRequest) -> Iterator[Environment]:
    env = _start(_session_config(request.config))
    try:
        yield env
    finally:
        env.stop()


@pytest.fixture(scope="session")
def pymanager_env(_pymanager_session_env: Environment) -> Environment:
    """The session's pymanager environment (``--pymanager-config`` or ini
    ``pymanager_config``), or the one of the module's or class's ``pymanager`` mark."""
    return _pymanager_session_env


def pytest_collectstart(collector: pytest.Collector) -> None:
    """Gives a module whose tests carry a ``pymanager`` mark (on the module or on a class)
    a ``pymanager_env`` of its own, which overrides the session one for its tests. It has
    to be in the module before pytest reads the module's fixtures, which is right after
    this hook."""
    if not isinstance(collector, pytest.Module):
        return
    try:
        module = collector.obj
    except Exception:
        return  # pytest reports the import error when it collects the module
    marked_classes = any(
        isinstance(v, type) and _has_mark(v) for v in list(vars(module).values())
    )
    if marked_classes:
        setattr(module, "_pymanager_marked_env", _marked_fixture("class"))
    elif _has_mark(module):
        setattr(module, "_pymanager_marked_env", _marked_fixture("module"))


def pytest_collection_modifyitems(items: List[pytest.Item]) -> None:
    for item in items:
        if any(m.name == MARKER for m in item.own_markers):
            raise pytest.UsageError(
                f"{item.nodeid}: @pytest.mark.{MARKER} goes on a module (pytestmark = "
                f"pytest.mark.{MARKER}(config=...)) or a class, not on a test function"
            )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    try:
        lines = int(item.config.getini("pymanager_log_lines"))
    except ValueError:
        lines = 20
    if lines <= 0:
        return
    seen: List[Environment] = []
    for value in getattr(item, "funcargs", {}).values():
        if isinstance(value, Environment) and not any(value is s for s in seen):
            seen.append(value)
    if seen:
        report.sections.append((SECTION, "\n".join(_logs(env, lines) for env in seen)))


def _marked_fixture(scope: Literal["module", "class"]) -> Callable[..., Environment]:
    @pytest.fixture(scope=scope, name="pymanager_env")
    def pymanager_env(request: pytest.FixtureRequest) -> Environment:
        holder = _holder(request.node)
        if holder is None:
            env: Environment = request.getfixturevalue("_pymanager_session_env")
            return env
        return request.config.stash[_STATE].marked_env(holder)

    return pymanager_env


def _holder(node: Any) -> Any:
    """The nearest module or class, from ``node`` up, that carries the mark itself."""
    for n in reversed(node.listchain()):
        if isinstance(n, (pytest.Module, pytest.Class)) and any(
            m.name == MARKER for m in n.own_markers
        ):
            return n
    return None


def _has_mark(obj: object) -> bool:
    marks = getattr(obj, "pytestmark", [])
    if not isinstance(marks, list):
        marks = [marks]
    return any(getattr(m, "mark", m).name == MARKER for m in marks)


def _marker_config(mark: pytest.Mark, where: str) -> str:
    config = mark.kwargs.get("config", mark.args[0] if mark.args else None)
    if not isinstance(config, (str, os.PathLike)):
        raise pytest.UsageError(
            f"{where}: @pytest.mark.{MARKER} needs config=\"<path of a pymanager.json>\""
        )
    return os.fspath(config)


def _session_config(config: pytest.Config) -> str:
    option = config.getoption("pymanager_config")
    if option:
        return os.path.join(str(config.invocation_params.dir), option)
    ini = config.getini("pymanager_config")
    if ini:
        base = config.inipath.parent if config.inipath else config.rootpath
        return os.path.join(str(base), str(ini))
    return os.path.join(str(config.rootpath), _DEFAULT_CONFIG)


def _start(path: str) -> Environment:
    """A started environment, or a ``pytest.fail`` whose message is the failure report."""
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        pytest.fail(
            f"pymanager: no config file {path} (name one with --pymanager-config FILE, the "
            f"ini option pymanager_config, or @pytest.mark.{MARKER}(config=...))",
            pytrace=False,
        )
    env = Environment(path, cwd=os.path.dirname(path))
    try:
        env.start()
    except StartupError as e:
        report = e.report
    else:
        return env
    # Outside the `except`: the report alone, without "During handling of the above…".
    pytest.fail(f"pymanager could not start {path}:\n{report}", pytrace=False)


def _logs(env: Environment, lines: int) -> str:
    """The last ``lines`` lines of each of the environment's processes."""
    out = []
    try:
        for p in env.processes():
            name = p.get("name", "?")
            where = f"pid {p['pid']}" if p.get("pid") else _ending(p)
            out.append(f"--- {name} [{p.get('lifecycle', '?')}, {where}], last {lines} lines:")
            text = env.logs(name, lines).rstrip("\n")
            out.append(text if text else "(no output)")
    except PymanagerError as e:
        out.append(f"(no logs of {env.config}: {e})")
    return "\n".join(out)


def _ending(p: Process) -> str:
    if p.get("exit_code") is not None:
        return f"exit code {p['exit_code']}"
    if p.get("signal") is not None:
        return f"signal {p['signal']}"
    return "not running"


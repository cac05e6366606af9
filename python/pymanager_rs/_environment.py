"""``Environment``: a pymanager environment started in the background for a test suite or a
script, controlled through its REST API, and stopped when the block ends.

How it drives the binary: ``pymanager -d -f CONFIG --http-port 0 --write-env FILE
--exit-with <this pid>`` returns 0 once every process is verified (``FILE`` then holds
``PYMANAGER_URL``, ``PYMANAGER_TOKEN``, ``PYMANAGER_PID`` and a ``PYMANAGER_PORT_<P>_<N>``
for every port), or 5 with the failure report on stderr. ``--exit-with`` makes the manager
shut down when this Python process ends, however it ends (``kill -9`` included), so no
service outlives the interpreter. Stopping is a SIGTERM to ``PYMANAGER_PID`` through a pidfd
(no race with a reused pid), then a wait on that pidfd until the manager is gone.
"""

from __future__ import annotations

import os
import secrets
import select
import shutil
import signal
import subprocess
import tempfile
import warnings
from typing import Any, Dict, List, Mapping, Optional, Sequence, TypedDict, Union, overload

from ._binary import find_pymanager_bin
from ._errors import PymanagerError, StartupError
from ._http import ApiClient, quote

StrPath = Union[str, "os.PathLike[str]"]

#: Lines of the manager's output kept in a time-out report.
_REPORT_LINES = 20


class PymanagerWarning(UserWarning):
    """A warning the manager printed while starting (an unknown config key, say)."""


class Process(TypedDict, total=False):
    """One process as the API describes it (``GET /api/v1/processes/{name}``; every field
    is in ``docs/api.md``)."""

    id: int
    name: str
    command: str
    state: str
    lifecycle: str
    pid: Optional[int]
    exit_code: Optional[int]
    signal: Optional[int]
    status: str
    restarts: int
    started_at: Optional[str]
    ports: Dict[str, int]
    verifier: Optional[Dict[str, Any]]
    error: Optional[str]
    waiting_for: Optional[Dict[str, str]]
    last_exit: Optional[Dict[str, Any]]
    next_attempt: Optional[str]
    liveness: Optional[Dict[str, Any]]


class Status(TypedDict, total=False):
    """The manager's state (``GET /api/v1/status``)."""

    status: str
    shutting_down: bool
    total: int
    running: int
    lifecycle: Dict[str, int]
    startup_failure: Optional[str]


class Environment:
    """The processes of a ``pymanager.json``, started in the background.

    ::

        with Environment("pymanager.json") as env:
            requests.get(env.url("api", path="/health"))
            env.restart("worker")

    Entering the block starts every process and returns once all are verified; a failure
    raises :class:`StartupError`, whose message is the manager's failure report. Leaving the
    block stops everything. Without a ``with``, call :meth:`start` and :meth:`stop`.

    Options (all keyword-only):

    - ``env``: environment variables for the manager, over this process's own; its
      processes inherit them (``${env.NAME}`` in the config reads them).
    - ``cwd``: the directory the manager runs in (default: this process's); a relative
      ``config`` is relative to it.
    - ``binary``: the ``pymanager`` binary (default: the one installed with this package,
      or ``PYMANAGER_BIN``).
    - ``startup_timeout``: seconds the start-up may take (default: as long as the
      verifiers take); past it, everything is stopped and :class:`StartupError` raised,
      naming what was not ready.
    - ``stop_timeout``: seconds to wait for a graceful shutdown before the manager is
      killed (its processes then die with it); default 60.
    - ``log_file``: where the manager and its processes write their output (default: a
      temporary file, removed by :meth:`stop`). :meth:`logs` reads any process's last lines.
    - ``args``: more command-line arguments for ``pymanager`` (``["-v"]``).
    """

    def __init__(
        self,
        config: StrPath = "pymanager.json",
        *,
        env: Optional[Mapping[str, str]] = None,
        cwd: Optional[StrPath] = None,
        binary: Optional[StrPath] = None,
        startup_timeout: Optional[float] = None,
        stop_timeout: float = 60.0,
        log_file: Optional[StrPath] = None,
        args: Sequence[str] = (),
    ) -> None:
        self._cwd = os.path.abspath(os.fspath(cwd)) if cwd is not None else None
        self.config = os.path.join(self._cwd or os.getcwd(), os.fspath(config))
        """The config file, as an absolute path."""
        self._env = dict(env or {})
        self._binary = os.fspath(binary) if binary is not None else None
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self._user_log_file = os.fspath(log_file) if log_file is not None else None
        self._args = list(args)
        self._tmp: Optional[str] = None
        self._pidfd: Optional[int] = None
        self._api: Optional[ApiClient] = None
        self._ports: Optional[Dict[str, Dict[str, int]]] = None
        self.environ: Dict[str, str] = {}
        """What the manager wrote once ready: ``PYMANAGER_URL``, ``PYMANAGER_TOKEN`` (if
        any), ``PYMANAGER_PID`` and ``PYMANAGER_PORT_<PROCESS>_<NAME>`` for every port. Pass
        it to a subprocess that needs to reach the environment
        (``env={**os.environ, **environment.environ}``)."""
        self.log_file: Optional[str] = None
        """The file the manager's and its processes' output goes to, while running."""

    # -- the whole environment --------------------------------------------------------

    def __enter__(self) -> "Environment":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Environment {self.config!r} {state}>"

    @property
    def running(self) -> bool:
        """Whether the manager is up (started here, and not ended since)."""
        return self._pidfd is not None and not _readable(self._pidfd, 0)

    @property
    def url_base(self) -> str:
        """The manager's REST API address (``http://127.0.0.1:PORT``)."""
        return self._client().base_url

    @overload
    def start(self) -> None: ...

    @overload
    def start(self, process: str) -> Process: ...

    def start(self, process: Optional[str] = None) -> Optional[Process]:
        """Without a name: starts the environment and returns once every process is
        verified (else :class:`StartupError`). With a name: starts that process again
        after a :meth:`stop`, and returns it once verified."""
        if process is not None:
            return self._command(process, "start")
        if self._pidfd is not None:
            raise PymanagerError(f"{self.config}: this environment is already started")
        self._launch()
        return None

    @overload
    def stop(self) -> None: ...

    @overload
    def stop(self, process: str) -> Process: ...

    def stop(self, process: Optional[str] = None) -> Optional[Process]:
        """Without a name: stops every process and the manager, and returns once they are
        all gone (a no-op when not running). With a name: stops that process (it stays
        stopped until :meth:`start`) and returns it.

        A config without ``"keep-alive": true`` ends the manager once its last process has
        ended, a stopped one included."""
        if process is not None:
            return self._command(process, "stop")
        pidfd, self._pidfd = self._pidfd, None
        try:
            if pidfd is not None:
                _terminate(pidfd, self._stop_timeout)
        finally:
            if pidfd is not None:
                os.close(pidfd)
            self._api = None
            self._ports = None
            self._cleanup()
        return None

    # -- one process ----------------------------------------------------------------------

    def restart(self, process: str) -> Process:
        """Restarts a process and returns it once it is verified again."""
        return self._command(process, "restart")

    def process(self, process: str) -> Process:
        """A process's state, as the API gives it."""
        result: Process = self._client().get_json(f"/api/v1/processes/{quote(process)}")
        return result

    def processes(self) -> List[Process]:
        """Every process's state, in config order."""
        return list(self._client().get_json("/api/v1/processes")["processes"])

    def status(self) -> Status:
        """The manager's phase (``status``: ``starting``, ``running``, ``shutdown``…), the
        count of processes in each lifecycle state, and why the start-up failed, if it did."""
        result: Status = self._client().get_json("/api/v1/status")
        return result

    def logs(self, process: str, lines: int = 50) -> str:
        """The last ``lines`` lines of a process's output (the manager keeps 1000)."""
        return self._client().get_text(
            f"/api/v1/processes/{quote(process)}/logs?lines={int(lines)}"
        )

    def port(self, process: str, name: Optional[str] = None) -> int:
        """The number of a process's port ``name`` (its ``"ports"`` in the config; a port
        given as 0 there is the free one chosen at start). Without ``name``: its first port,
        the one it gets as ``PORT``."""
        ports = self.ports(process)
        if name is None:
            if not ports:
                raise PymanagerError(f"process '{process}' has no ports in {self.config}")
            return next(iter(ports.values()))
        try:
            return ports[name]
        except KeyError:
            have = ", ".join(ports) or "none"
            raise PymanagerError(
                f"process '{process}' has no port '{name}' (its ports: {have})"
            ) from None

    def ports(self, process: str) -> Dict[str, int]:
        """A process's ports by name, in config order. They are kept across restarts."""
        if self._ports is None:
            self._ports = {p["name"]: dict(p.get("ports") or {}) for p in self.processes()}
        try:
            return self._ports[process]
        except KeyError:
            have = ", ".join(self._ports) or "none"
            raise PymanagerError(
                f"no process '{process}' in {self.config} (its processes: {have})"
            ) from None

    def url(self, process: str, name: Optional[str] = "http", path: str = "/") -> str:
        """``http://127.0.0.1:<port><path>`` for a process's port ``name`` (``None``: its
        first port)."""
        if not path.startswith("/"):
            path = "/" + path
        return f"http://127.0.0.1:{self.port(process, name)}{path}"

    # -- internals ------------------------------------------------------------------------

    def _command(self, process: str, verb: str) -> Process:
        answer = self._client().post_json(f"/api/v1/processes/{quote(process)}/{verb}")
        result: Process = answer["process"]
        return result

    def _client(self) -> ApiClient:
        if self._api is None or self._pidfd is None:
            raise PymanagerError(f"{self.config}: this environment is not started")
        if _readable(self._pidfd, 0):
            raise PymanagerError(
                f"{self.config}: the manager has ended (without \"keep-alive\": true it ends "
                f"when its last process ends; its output: {self.log_file})"
            )
        return self._api

    def _launch(self) -> None:
        binary = self._binary or find_pymanager_bin()
        self._tmp = tempfile.mkdtemp(prefix="pymanager-")
        env_file = os.path.join(self._tmp, "env")
        pid_file = os.path.join(self._tmp, "pid")
        self.log_file = self._user_log_file or os.path.join(self._tmp, "output.log")
        cmd = [
            binary, "-d", "-f", self.config,
            "--http-port", "0",
            "--write-env", env_file,
            "--exit-with", str(os.getpid()),
            "--pidfile", pid_file,
            "--logfile", self.log_file,
        ]  # fmt: skip
        # The manager bounds its own start-up (its report then names what was not ready);
        # the wait here is a safety net, longer by the time its shutdown may take.
        wait: Optional[float] = None
        if self._startup_timeout is not None:
            cmd += ["--timeout", f"{self._startup_timeout:g}"]
            wait = self._startup_timeout + self._stop_timeout + 30
        cmd += self._args
        environ = dict(os.environ)
        environ.update(self._env)
        # A token of our own, unless the config sets one: nobody else on this machine can
        # drive the API. The manager takes it out of its environment before spawning.
        environ.setdefault("PYMANAGER_TOKEN", secrets.token_hex(32))
        stderr_path = os.path.join(self._tmp, "stderr")
        try:
            with open(stderr_path, "w+b") as stderr:
                launcher = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                    cwd=self._cwd,
                    env=environ,
                )
                try:
                    code = launcher.wait(timeout=wait)
                except BaseException as e:
                    self._abort(launcher, pid_file)
                    if isinstance(e, subprocess.TimeoutExpired):
                        raise StartupError(
                            f"{self.config}: pymanager did not report within {wait:g} s; "
                            f"stopped.\n{self._output_tail()}".rstrip(),
                            config=self.config,
                            returncode=None,
                        ) from None
                    raise
                stderr.seek(0)
                said = stderr.read().decode("utf-8", "replace").strip()
            if code != 0:
                # The daemon reported the failure and is stopping what it started: wait
                # for it, so that nothing is left when the error reaches the caller.
                self._await_end(_open_pid_file(pid_file))
                raise StartupError(
                    said or f"pymanager exited with code {code} during start-up",
                    config=self.config,
                    returncode=code,
                )
            for line in said.splitlines():
                warnings.warn(f"pymanager: {line}", PymanagerWarning, stacklevel=3)
            try:
                self._ready(env_file)
            except BaseException:
                self._await_end(_open_pid_file(pid_file), signal.SIGTERM)
                raise
        except BaseException:
            self._cleanup()
            raise

    def _ready(self, env_file: str) -> None:
        try:
            with open(env_file, encoding="utf-8") as f:
                self.environ = _parse_env(f.read())
            pid = int(self.environ["PYMANAGER_PID"])
            url = self.environ["PYMANAGER_URL"]
        except (OSError, KeyError, ValueError) as e:
            raise StartupError(
                f"{self.config}: pymanager said it was ready but its --write-env file is "
                f"missing or incomplete ({e!r}); is {self._binary or find_pymanager_bin()} "
                "the binary of this pymanager_rs?",
                config=self.config,
                returncode=0,
            ) from None
        api = ApiClient(url, self.environ.get("PYMANAGER_TOKEN"))
        try:
            self._pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            raise StartupError(
                f"{self.config}: the manager ended right after its start-up (without "
                "\"keep-alive\": true it ends when its last process ends)",
                config=self.config,
                returncode=0,
            ) from None
        self._api = api

    def _abort(self, launcher: "subprocess.Popen[bytes]", pid_file: str) -> None:
        """Stops a start-up cut short (time-out, Ctrl-C): the daemon, found through its pid
        file, gets SIGTERM and is waited for; the launcher then ends by itself."""
        pidfd = _open_pid_file(pid_file)
        if pidfd is None:
            # Not detached yet: the launcher is the whole of it.
            launcher.kill()
        self._await_end(pidfd, signal.SIGTERM)
        try:
            launcher.wait(timeout=self._stop_timeout)
        except subprocess.TimeoutExpired:
            launcher.kill()
            launcher.wait()

    def _await_end(self, pidfd: Optional[int], sig: Optional[int] = None) -> None:
        """Sends ``sig`` (if any) to the process of ``pidfd`` and waits until it has ended;
        after ``stop_timeout`` seconds, kills it. Closes the pidfd."""
        if pidfd is None:
            return
        try:
            _terminate(pidfd, self._stop_timeout, sig)
        finally:
            os.close(pidfd)

    def _output_tail(self) -> str:
        """The last lines the manager and its processes printed (for a time-out report)."""
        try:
            with open(self.log_file or "", "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 64 * 1024))
                lines = f.read().decode("utf-8", "replace").splitlines()[-_REPORT_LINES:]
        except OSError:
            return ""
        return "\n".join(["last output:", *("  " + line for line in lines)])

    def _cleanup(self) -> None:
        tmp, self._tmp = self._tmp, None
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _parse_env(text: str) -> Dict[str, str]:
    """``KEY=VALUE`` lines (what ``--write-env`` writes)."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip():
            out[key.strip()] = value
    return out


def _readable(fd: int, timeout: Optional[float]) -> bool:
    """Whether the pidfd says its process has ended, waiting up to ``timeout`` seconds
    (``None``: for ever)."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    ms = None if timeout is None else max(0, int(timeout * 1000))
    while True:
        try:
            return bool(poller.poll(ms))
        except InterruptedError:  # pragma: no cover - retried by Python since 3.5
            continue


def _terminate(pidfd: int, grace: float, sig: Optional[int] = signal.SIGTERM) -> None:
    """``sig`` to the manager (SIGTERM: it stops its processes gracefully; ``None``: it is
    stopping already), then a wait until it is gone; past ``grace`` seconds, SIGKILL (its
    processes die with it: parent-death signal)."""
    try:
        if sig is not None:
            signal.pidfd_send_signal(pidfd, sig)
    except ProcessLookupError:
        return
    if _readable(pidfd, grace):
        return
    try:
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except ProcessLookupError:
        return
    _readable(pidfd, None)


def _open_pid_file(path: str) -> Optional[int]:
    """A pidfd for the pid in ``path``, or ``None`` (no file yet, or the process is gone).
    The file is in this environment's private temporary directory, just written by the
    manager: its pid is not a stale one."""
    try:
        with open(path, encoding="ascii") as f:
            return os.pidfd_open(int(f.read().strip()))
    except (OSError, ValueError):
        return None

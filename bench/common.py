"""Shared pieces of the benchmark harness: the three managers behind one interface,
/proc readers, free ports, and cleanup that never leaves a process behind.

Every manager runs in a session of its own (start_new_session), so that whatever it
leaves behind can be found by session id and killed after a measurement. That cleanup is
the harness's safety net, never part of what is measured.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import xmlrpc.client
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
# PYMANAGER_BIN runs the scenarios against another build (a debug one, for a smoke run).
OURS = Path(os.environ.get("PYMANAGER_BIN") or ROOT / "target" / "release" / "pymanager")
# Another build of ours to run side by side with it (`run.py --vs BIN`, `bench/vs.sh`): an
# older commit's release binary, so that a regression shows the day it lands.
OURS_VS = Path(os.environ["PYMANAGER_VS_BIN"]) if os.environ.get("PYMANAGER_VS_BIN") else None
VENV = BENCH / ".venv"
# The original tool: bench/.venv's unless PYMANAGER_ORIGINAL names another installation of
# pymanager 0.2.6.1 (with bottle and requests), e.g. /work/orig/bin/pymanager.
ORIGINAL = Path(os.environ.get("PYMANAGER_ORIGINAL") or VENV / "bin" / "pymanager")
SUPERVISORD = VENV / "bin" / "supervisord"
# The interpreter the services run on: the real one, never a pyenv shim (a shim is a bash
# script that would add tens of milliseconds to every start).
PYTHON = os.path.realpath(sys.executable)
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


class Skip(Exception):
    """A measurement that cannot be made on this build; the message says why."""


# ---------------------------------------------------------------- ports, HTTP


# Ports the harness hands out come from below the kernel's ephemeral range
# (/proc/sys/net/ipv4/ip_local_port_range, 32768-60999 by default): a port picked there and
# released could be taken by any outgoing connection (a verifier's, the harness's own
# polling) before the service binds it, and its start then fails with "Address already in
# use". Below the range only a listener takes a port, and each is handed out once per run.
_NEXT_PORT = [20000 + (os.getpid() % 5000)]


def free_port() -> int:
    low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    if low <= 11000:  # no room below the range: the kernel's pick, as before
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    while True:
        port = _NEXT_PORT[0]
        _NEXT_PORT[0] = port + 1 if port + 1 < low else 10000
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def http_get(url: str, timeout: float = 1.0) -> tuple[int, bytes]:
    m = re.match(r"http://([^/:]+):(\d+)(/.*)?$", url)
    host, port, path = m.group(1), int(m.group(2)), m.group(3) or "/"
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def answers(url: str, timeout: float = 1.0) -> bool:
    try:
        return 200 <= http_get(url, timeout)[0] < 300
    except OSError:
        return False


# ---------------------------------------------------------------- /proc


def proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (index 0 is the state)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()


def start_time(pid: int) -> int | None:
    f = proc_stat(pid)
    return int(f[19]) if f else None


def alive(pid: int, started: int | None = None) -> bool:
    """Running (not a zombie) and, if `started` is given, still the same process."""
    f = proc_stat(pid)
    if not f or f[0] in ("Z", "X"):
        return False
    return started is None or int(f[19]) == started


def cpu_seconds(pid: int) -> float:
    f = proc_stat(pid)
    return (int(f[11]) + int(f[12])) / CLK_TCK if f else 0.0


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def memory_kib(pid: int) -> dict[str, int]:
    """Pss, Rss and their anonymous and file-backed parts (/proc/<pid>/smaps_rollup), in KiB.
    RSS counts every page mapped, so the pages of one binary mapped by two processes (our
    guardian and manager) are counted twice; PSS shares each page among its mappers."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] in ("Rss:", "Pss:", "Pss_Anon:", "Pss_File:", "Anonymous:"):
                out[parts[0].rstrip(":")] = int(parts[1])
    except OSError:
        pass
    return out


def threads(pid: int) -> int:
    f = proc_stat(pid)
    return int(f[17]) if f else 0


def fd_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def children_of(pid: int) -> list[int]:
    out = []
    for p in all_pids():
        f = proc_stat(p)
        if f and int(f[1]) == pid:
            out.append(p)
    return out


def session_members(sid: int) -> list[int]:
    out = []
    for p in all_pids():
        f = proc_stat(p)
        if f and int(f[3]) == sid and f[0] not in ("Z", "X"):
            out.append(p)
    return out


def kill_session(sid: int) -> int:
    """SIGKILLs every process of a session until none is left; returns how many it found."""
    found = set()
    for _ in range(50):
        members = session_members(sid)
        if not members:
            break
        for p in members:
            found.add(p)
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.02)
    return len(found)


# ---------------------------------------------------------------- processes


@dataclass
class Proc:
    """One process for a manager to run. `verify_url` asks for an HTTP verifier."""

    name: str
    argv: list[str]
    verify_url: str | None = None
    # More keys of its entry in a pymanager.json (ours only: `depends_on`, `graceful_time`).
    options: dict = field(default_factory=dict)


class Lines:
    """Reads a stream in a thread, keeping every line with the wall-clock time it arrived."""

    def __init__(self, stream):
        self.lines: list[tuple[float, str]] = []
        self.cond = threading.Condition()
        self.closed = False
        self.thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self.thread.start()

    def _pump(self, stream):
        for raw in iter(stream.readline, b""):
            t = time.time()
            with self.cond:
                self.lines.append((t, raw.decode(errors="replace").rstrip("\n")))
                self.cond.notify_all()
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def wait_for(self, pattern: str, timeout: float) -> tuple[float, str] | None:
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self.cond:
            while True:
                for t, line in self.lines[seen:]:
                    if rx.search(line):
                        return t, line
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if self.closed or left <= 0:
                    return None
                self.cond.wait(left)

    def tail(self, n: int = 5) -> str:
        with self.cond:
            return " | ".join(l for _, l in self.lines[-n:])


@dataclass
class Running:
    """A manager started by the harness."""

    kind: str
    popen: subprocess.Popen
    out: Lines
    err: Lines
    status_url: str | None
    t_launch: float  # time.monotonic() at launch
    t_launch_wall: float  # time.time() at launch
    exited_at: float | None = None  # time.time() when it exited
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        def waiter():
            self.popen.wait()
            self.exited_at = time.time()

        threading.Thread(target=waiter, daemon=True).start()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def manager_pids(self) -> list[int]:
        """The processes that make up the manager itself (for footprints)."""
        if self.kind == "ours":
            # The pid we started is the guardian; the manager is its child of the same name.
            kids = [
                p
                for p in children_of(self.pid)
                if Path(f"/proc/{p}/comm").read_text().strip() == "pymanager"
            ]
            return [self.pid] + kids
        return [self.pid]

    def status(self) -> str | None:
        if self.kind == "supervisord":
            try:
                infos = self.extra["rpc"]().supervisor.getAllProcessInfo()
            except (OSError, xmlrpc.client.Error, http.client.HTTPException):
                return None
            want = self.extra["count"]
            if len(infos) == want and all(i["statename"] == "RUNNING" for i in infos):
                return "running"
            return "starting"
        try:
            code, body = http_get(self.status_url + "/status", timeout=2.0)
            return json.loads(body).get("status") if code == 200 else None
        except (OSError, ValueError, http.client.HTTPException):
            return None

    def wait_running(self, timeout: float, poll: float = 0.02) -> float:
        """Polls until the manager reports running; returns seconds since launch."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(
                    f"{self.kind} exited with {self.popen.returncode} before running: "
                    f"{self.err.tail(3) or self.out.tail(3)}"
                )
            if self.status() == "running":
                return time.monotonic() - self.t_launch
            time.sleep(poll)
        raise TimeoutError(f"{self.kind} not running after {timeout} s")

    def stop(self, grace: float = 30.0) -> None:
        """Ends the manager and anything left in its session (harness cleanup)."""
        if self.popen.poll() is None:
            try:
                os.kill(self.pid, signal.SIGINT)
                self.popen.wait(grace)
            except (OSError, subprocess.TimeoutExpired):
                pass
        kill_session(self.pid)
        try:
            self.popen.wait(5)
        except subprocess.TimeoutExpired:
            pass


def _spawn(kind: str, argv: list[str], cwd: Path, env: dict | None = None) -> Running:
    e = dict(os.environ)
    e.update(env or {})
    t, tw = time.monotonic(), time.time()
    p = subprocess.Popen(
        argv,
        cwd=cwd,
        env=e,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    return Running(kind, p, Lines(p.stdout), Lines(p.stderr), None, t, tw)


# ---------------------------------------------------------------- configs


def pymanager_config(
    procs: list[Proc],
    *,
    port: int | None,
    keep_alive: bool = False,
    graceful_time: int | None = None,
    messages: list[str] | None = None,
    verifier_extra: dict | None = None,
    top: dict | None = None,
) -> dict:
    """A pymanager.json both implementations accept (no `timeout`: the original crashes on it)."""
    cfg: dict = {}
    if any(p.verify_url for p in procs):
        cfg["modules"] = {"pymutils.http_verifier": {"verifiers": ["HttpOkVerifier"]}}
    if port is not None:
        cfg["http"] = {"enabled": True, "port": port}
    if keep_alive:
        cfg["keep_alive"] = True
    if graceful_time is not None:
        cfg["graceful_time"] = graceful_time
    if messages:
        cfg["messages"] = messages
    cfg.update(top or {})
    cfg["processes"] = {}
    for p in procs:
        d: dict = {"executable": p.argv[0], "arguments": p.argv[1:]}
        if p.verify_url:
            d["verifier"] = {
                "type": "pymutils.http_verifier.HttpOkVerifier",
                "arguments": {"url": p.verify_url, **(verifier_extra or {})},
            }
        d.update(p.options)
        cfg["processes"][p.name] = d
    return cfg


def start_ours(procs: list[Proc], work: Path, *, http: bool = True, binary: Path | None = None,
               **kw) -> Running:
    cfg = work / "pymanager.json"
    cfg.write_text(json.dumps(pymanager_config(procs, port=0 if http else None, **kw), indent=1))
    r = _spawn("ours", [str(binary or OURS), "-f", str(cfg)], work)
    if http:
        hit = r.out.wait_for(r"REST API listening on (http://\S+)", 60)
        if hit is None:
            r.stop()
            msg = r.err.tail(3) or r.out.tail(3)
            if r.popen.returncode == 5 and "verifier" in msg:
                raise Skip(f"ours refuses the config: {msg}")
            raise RuntimeError(f"ours did not announce its REST address: {msg}")
        r.status_url = re.search(r"(http://\S+)", hit[1]).group(1).rstrip("/")
    return r


def start_original(procs: list[Proc], work: Path, *, http: bool = True, **kw) -> Running:
    cfg = work / "pymanager.json"
    port = free_port() if http else None
    cfg.write_text(json.dumps(pymanager_config(procs, port=port, **kw), indent=1))
    # Unbuffered, so that a line it prints is seen when it prints it.
    r = _spawn("original", [str(ORIGINAL), "-f", str(cfg)], work, {"PYTHONUNBUFFERED": "1"})
    if http:
        # It binds "localhost", which is 127.0.0.1 here.
        r.status_url = f"http://127.0.0.1:{port}"
    return r


def start_supervisord(
    procs: list[Proc],
    work: Path,
    *,
    startsecs: int = 1,
    stopwaitsecs: int = 10,
    autorestart: bool = False,
) -> Running:
    """supervisord with its best settings for our questions: whole-group stop and kill."""
    port = free_port()
    lines = [
        "[supervisord]",
        "nodaemon=true",
        "logfile=/dev/stdout",
        "logfile_maxbytes=0",
        "loglevel=info",
        f"pidfile={work}/supervisord.pid",
        f"childlogdir={work}",
        "minfds=1024",
        "minprocs=200",
        "",
        "[inet_http_server]",
        f"port=127.0.0.1:{port}",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
    ]
    for p in procs:
        cmd = " ".join(_sv_quote(a) for a in p.argv)
        lines += [
            f"[program:{p.name}]",
            f"command={cmd}",
            f"directory={work}",
            f"startsecs={startsecs}",
            "startretries=0",
            f"autorestart={'true' if autorestart else 'false'}",
            "stopsignal=TERM",
            f"stopwaitsecs={stopwaitsecs}",
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            "stdout_logfile=NONE",
            "",
        ]
    # One group: supervisord stops the programs of a group together, but separate groups
    # one after another (20 programs that ignore SIGTERM took 20 × stopwaitsecs).
    lines += ["[group:all]", "programs=" + ",".join(p.name for p in procs), ""]
    conf = work / "supervisord.conf"
    conf.write_text("\n".join(lines))
    r = _spawn("supervisord", [str(SUPERVISORD), "-c", str(conf)], work)
    url = f"http://127.0.0.1:{port}"
    r.status_url = url
    r.extra["count"] = len(procs)
    r.extra["rpc"] = lambda: xmlrpc.client.ServerProxy(url + "/RPC2")
    return r


def _sv_quote(a: str) -> str:
    # supervisord splits `command` with shlex; '%' must be doubled (it expands %(here)s).
    import shlex

    return shlex.quote(a).replace("%", "%%")


def start_ours_fast(procs: list[Proc], work: Path, **kw) -> Running:
    """Ours with the verifier's `interval` at 50 ms instead of the default 1 s."""
    r = start_ours(procs, work, verifier_extra={"interval": 0.05}, **kw)
    r.kind = "ours"
    return r


def start_ours_parallel(procs: list[Proc], work: Path, **kw) -> Running:
    """Ours with `"startup": "parallel"` (nothing depends on anything: all start at once)
    and the verifier's `interval` at 50 ms."""
    r = start_ours(procs, work, verifier_extra={"interval": 0.05}, top={"startup": "parallel"}, **kw)
    r.kind = "ours"
    return r


def start_ours_vs(procs: list[Proc], work: Path, **kw) -> Running:
    """The other build of ours (`PYMANAGER_VS_BIN`), started exactly as ours is."""
    if OURS_VS is None:
        raise Skip("no other build given (run.py --vs BIN)")
    return start_ours(procs, work, binary=OURS_VS, **kw)


STARTERS = {"ours-vs": start_ours_vs, "ours-par": start_ours_parallel, "ours-i50ms": start_ours_fast, "ours": start_ours, "original": start_original, "supervisord": start_supervisord}


# ---------------------------------------------------------------- statistics


def median(xs: list[float]) -> float:
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def machine() -> dict:
    mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "mem_gib": round(int(mem) / 1024 / 1024, 1),
        "kernel": os.uname().release,
        "python": sys.version.split()[0],
    }

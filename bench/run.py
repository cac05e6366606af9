#!/usr/bin/env python3
"""Benchmarks: our pymanager, the original pymanager 0.2.6.1, and supervisord, side by side.

Each scenario runs every manager once per repetition, interleaved (ours, original,
supervisord, ours, original, …), so that a slow minute of the machine hits all of them.
Results: bench/results/<stamp>/results.json (every sample) and summary.md (medians,
min–max, ratio to ours). See BENCHMARKS.md at the repo root for the method.

    bench/run.sh                 # everything, 5 repetitions
    bench/run.sh --quick         # a smoke run: fewer sizes, 2 repetitions
    bench/run.sh --only ready,exit --reps 3
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from common import (  # noqa: E402
    BENCH,
    ORIGINAL,
    OURS,
    PYTHON,
    SUPERVISORD,
    ROOT,
    STARTERS,
    Proc,
    Skip,
    alive,
    answers,
    cpu_seconds,
    kill_session,
    machine,
    median,
    memory_kib,
    rss_kib,
    start_time,
    threads,
    free_port,
)

MANAGERS = ["ours", "original", "supervisord"]


class Results:
    def __init__(self, out: Path):
        self.out = out
        self.samples: list[dict] = []
        self.skips: dict[tuple, str] = {}
        self.notes: list[str] = []

    def add(self, scenario, case, metric, manager, value, unit, rep):
        self.samples.append(
            dict(scenario=scenario, case=case, metric=metric, manager=manager,
                 value=value, unit=unit, rep=rep)
        )
        print(f"  {scenario:<9} {case:<14} {metric:<18} {manager:<12} {value:10.4g} {unit}", flush=True)

    def skip(self, scenario, case, manager, why):
        key = (scenario, case, manager)
        if key not in self.skips:
            print(f"  {scenario:<9} {case:<14} {manager:<12} skipped: {why}", flush=True)
        self.skips[key] = why

    def skipped(self, scenario, case, manager) -> bool:
        return (scenario, case, manager) in self.skips

    def save(self, args):
        data = dict(machine=machine(), args=vars(args), samples=self.samples,
                    skips=[dict(scenario=s, case=c, manager=m, why=w) for (s, c, m), w in self.skips.items()],
                    notes=self.notes)
        (self.out / "results.json").write_text(json.dumps(data, indent=1))
        (self.out / "summary.md").write_text(summarize(data))


def summarize(data: dict) -> str:
    rows: dict[tuple, dict[str, list[float]]] = {}
    units = {}
    for s in data["samples"]:
        key = (s["scenario"], s["case"], s["metric"])
        rows.setdefault(key, {}).setdefault(s["manager"], []).append(s["value"])
        units[key] = s["unit"]
    cols = ["ours", "ours-vs", "ours-par", "ours-i50ms", "original", "supervisord", "floor-seq", "floor-par",
            "bash", "c-vfork", "c-fork", "c-http", "harness-GET"]
    present = [c for c in cols if any(c in v for v in rows.values())]
    # The other build, bash and the C floors get a ratio column only when they were run.
    others = ["original", "supervisord"] + [c for c in ("ours-vs", "bash", "c-vfork", "c-fork", "c-http")
                                            if c in present]
    out = ["| scenario | case | metric | " + " | ".join(present) + " | "
           + " | ".join(f"ratio {o}/ours" for o in others) + " |",
           "|" + "---|" * (len(present) + 3 + len(others))]
    for key, per in rows.items():
        cells = []
        for c in present:
            xs = per.get(c)
            if not xs:
                why = next((sk["why"] for sk in data["skips"]
                            if (sk["scenario"], sk["case"], sk["manager"]) == (key[0], key[1], c)), None)
                cells.append("skipped" if why else "—")
                continue
            m = median(xs)
            cells.append(f"**{fmt(m)}** ({fmt(min(xs))}–{fmt(max(xs))}, n={len(xs)})")
        ratios = []
        for other in others:
            a, b = per.get("ours") or per.get("ours-par"), per.get(other)
            if a and b and median(a) != 0:
                ratios.append(f"{median(b) / median(a):.3g}×")
            else:
                ratios.append("—")
        out.append(f"| {key[0]} | {key[1]} | {key[2]} ({units[key]}) | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    if data["skips"]:
        out += ["", "Skipped:", ""]
        for sk in data["skips"]:
            out.append(f"- {sk['scenario']} {sk['case']} {sk['manager']}: {sk['why']}")
    if data.get("notes"):
        out += ["", "Notes:", ""] + [f"- {n}" for n in data["notes"]]
    return "\n".join(out) + "\n"


def fmt(x: float) -> str:
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def floor_program(name: str, flags: tuple[str, ...] = (), out: Path | None = None) -> Path:
    """bench/floor/<name>.c, built with `cc -O2` (and `flags`) into bench/.floor, or `out`
    (again when the source is newer): the C floors the scale and rest scenarios measure
    beside the managers."""
    src = BENCH / "floor" / f"{name}.c"
    out = out or BENCH / ".floor" / name
    if out.exists() and out.stat().st_mtime >= src.stat().st_mtime:
        return out
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise Skip("no C compiler (cc) to build the floor programs of bench/floor/")
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([cc, "-O2", "-pthread", *flags, "-o", str(out), str(src)], check=True)
    return out


def workdir(tag: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"pm-bench-{tag}-"))


def run_one(res: Results, scenario: str, case: str, manager: str, fn, rep: int):
    """Runs one measurement; a Skip is remembered so that later repetitions skip at once."""
    if res.skipped(scenario, case, manager):
        return
    try:
        fn()
    except Skip as e:
        res.skip(scenario, case, manager, str(e))
    except Exception as e:  # a failed sample is reported, never hidden, and the run goes on
        res.notes.append(f"{scenario} {case} {manager} rep {rep}: failed: {e}")
        print(f"  {scenario} {case} {manager} rep {rep}: FAILED: {e}", flush=True)
        traceback.print_exc()


# ================================================================ 1. time to ready


def http_services(n: int, work: Path) -> list[Proc]:
    procs = []
    for i in range(n):
        port = free_port()
        procs.append(Proc(f"web{i:03d}", [PYTHON, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
                          f"http://127.0.0.1:{port}/"))
    return procs


def check_answering(procs: list[Proc]) -> int:
    return sum(answers(p.verify_url, timeout=1.0) for p in procs)


def ready_manager(res: Results, manager: str, n: int, rep: int):
    work = workdir("ready")
    procs = http_services(n, work)
    case = f"N={n}"
    r = STARTERS[manager](procs, work, **({} if manager == "supervisord" else {"graceful_time": 2}))
    r.kind = manager if manager != "ours-i50ms" else "ours"
    try:
        t = r.wait_running(timeout=60 + 3 * n, poll=0.02)
        ok = check_answering(procs)
        res.add("ready", case, "time to running", manager, t, "s", rep)
        res.add("ready", case, "answering at running", manager, ok / n * 100, "%", rep)
    finally:
        r.stop()
        shutil.rmtree(work, ignore_errors=True)


def floor(res: Results, n: int, rep: int, parallel: bool, scenario: str = "ready"):
    """The same services started by the harness itself: the least any manager can take."""
    work = workdir("floor")
    procs = http_services(n, work)
    started = []
    t0 = time.monotonic()
    try:
        if parallel:
            for p in procs:
                started.append(subprocess.Popen(p.argv, cwd=work, stdout=subprocess.DEVNULL,
                                                stderr=subprocess.DEVNULL, start_new_session=True))
            pending = list(procs)
            while pending:
                pending = [p for p in pending if not answers(p.verify_url, 0.5)]
                if pending:
                    time.sleep(0.005)
        else:
            for p in procs:
                started.append(subprocess.Popen(p.argv, cwd=work, stdout=subprocess.DEVNULL,
                                                stderr=subprocess.DEVNULL, start_new_session=True))
                while not answers(p.verify_url, 0.5):
                    time.sleep(0.005)
        t = time.monotonic() - t0
        res.add(scenario, f"N={n}", "time to running", "floor-par" if parallel else "floor-seq", t, "s", rep)
    finally:
        for s in started:
            kill_session(s.pid)
            s.wait()
        shutil.rmtree(work, ignore_errors=True)


def scenario_ready(res: Results, args):
    sizes = [5, 20] if args.quick else [5, 20, 100]
    for n in sizes:
        print(f"[ready] N={n}", flush=True)
        for rep in range(args.reps):
            for m in MANAGERS + (["ours-i50ms"] if "ours" in MANAGERS else []):
                run_one(res, "ready", f"N={n}", m, lambda: ready_manager(res, m, n, rep), rep)
            for par in (False, True):
                name = "floor-par" if par else "floor-seq"
                run_one(res, "ready", f"N={n}", name, lambda: floor(res, n, rep, par), rep)


def scenario_parallel(res: Results, args):
    """Time to ready of independent services with `"startup": "parallel"`, against the
    parallel floor (all started at once, polled until all answer) and the original."""
    sizes = [5, 20] if args.quick else [20, 100]
    managers = (["ours-par"] if "ours" in MANAGERS else []) + (["original"] if "original" in MANAGERS else [])
    for n in sizes:
        print(f"[parallel] N={n}", flush=True)
        for rep in range(args.reps):
            for m in managers:
                run_one(res, "parallel", f"N={n}", m, lambda: parallel_manager(res, m, n, rep), rep)
            run_one(res, "parallel", f"N={n}", "floor-par", lambda: floor(res, n, rep, True, "parallel"), rep)


def parallel_manager(res: Results, manager: str, n: int, rep: int):
    work = workdir("parallel")
    procs = http_services(n, work)
    r = STARTERS[manager](procs, work, graceful_time=2)
    try:
        t = r.wait_running(timeout=60 + 3 * n, poll=0.02)
        ok = check_answering(procs)
        res.add("parallel", f"N={n}", "time to running", manager, t, "s", rep)
        res.add("parallel", f"N={n}", "answering at running", manager, ok / n * 100, "%", rep)
    finally:
        r.stop()
        shutil.rmtree(work, ignore_errors=True)


# ================================================================ 2. exit noticed


def exit_manager(res: Results, manager: str, rep: int):
    work = workdir("exit")
    marker = work / "exited"
    # The process writes the wall-clock time (fine-grained) just before it exits. A file's
    # mtime would not do: it comes from the kernel's coarse clock, one tick (4 ms here)
    # behind at worst, which would be part of every figure.
    quit_code = (f"import os, time; time.sleep(1); fd = os.open({str(marker)!r}, os.O_WRONLY | os.O_CREAT); "
                 "os.write(fd, repr(time.time()).encode()); os._exit(3)")
    procs = [Proc("quitter", [PYTHON, "-c", quit_code])]
    if manager == "supervisord":
        r = STARTERS[manager](procs, work, startsecs=0)
        pattern = r"exited: quitter \(exit status 3"
    else:
        r = STARTERS[manager](procs, work, http=False, messages=["process.exit"])
        pattern = r"exited with code 3"
    try:
        hit = r.out.wait_for(pattern, 30)
        if hit is None:
            raise RuntimeError(f"no exit line; output: {r.out.tail(4)} {r.err.tail(2)}")
        t_exit = float(marker.read_text())
        res.add("exit", "1 process", "exit reported after", manager, hit[0] - t_exit, "s", rep)
        if manager != "supervisord":
            r.popen.wait(30)
            while r.exited_at is None:
                time.sleep(0.001)
            res.add("exit", "1 process", "manager exit after", manager, r.exited_at - t_exit, "s", rep)
            res.add("exit", "1 process", "manager exit code", manager, r.popen.returncode, "", rep)
    finally:
        r.stop()
        shutil.rmtree(work, ignore_errors=True)


def scenario_exit(res: Results, args):
    print("[exit]", flush=True)
    res.notes.append("exit: supervisord keeps running when its programs end (by design); "
                     "only its log line is timed.")
    for rep in range(args.reps):
        for m in MANAGERS:
            run_one(res, "exit", "1 process", m, lambda: exit_manager(res, m, rep), rep)


# ================================================================ 3. shutdown


def shutdown_manager(res: Results, manager: str, rep: int, n_each: int, grace: int):
    work = workdir("shutdown")
    procs = []
    for i in range(n_each):
        # The trap makes sh ignore SIGTERM, and the background sleep inherits the ignore.
        procs.append(Proc(f"deaf{i:02d}", ["sh", "-c",
                     f"trap '' TERM; sleep 1000 & echo \"$$ $!\" > {work}/deaf{i:02d}.pids; wait"]))
        procs.append(Proc(f"obey{i:02d}", ["sh", "-c",
                     f"sleep 1000 & echo \"$$ $!\" > {work}/obey{i:02d}.pids; wait"]))
    case = f"{n_each}+{n_each}, grace {grace}s"
    if manager == "supervisord":
        r = STARTERS[manager](procs, work, startsecs=0, stopwaitsecs=grace)
    else:
        r = STARTERS[manager](procs, work, http=False, graceful_time=grace)
    try:
        deadline = time.monotonic() + 60
        files = [work / f"{p.name}.pids" for p in procs]
        while not all(f.exists() and f.read_text().endswith("\n") for f in files):
            if time.monotonic() > deadline or r.popen.poll() is not None:
                raise RuntimeError(f"processes did not start: {r.out.tail(3)} {r.err.tail(3)}")
            time.sleep(0.02)
        time.sleep(0.3)  # let the manager finish its start-up
        managed, descendants = {}, {}
        for f in files:
            sh, sleep = (int(x) for x in f.read_text().split())
            managed[sh] = start_time(sh)
            descendants[sleep] = start_time(sleep)
        # Check the set-up: every sleep exists, and the deaf ones really ignore SIGTERM.
        assert all(alive(p, s) for p, s in descendants.items()), "a sleep is missing"
        t0 = time.monotonic()
        os.kill(r.pid, signal.SIGINT)
        t_managed = t_all = None
        end = t0 + 150
        while time.monotonic() < end:
            now = time.monotonic()
            if t_managed is None and not any(alive(p, s) for p, s in managed.items()):
                t_managed = now - t0
            if t_all is None and t_managed is not None and not any(alive(p, s) for p, s in descendants.items()):
                t_all = now - t0
            if r.popen.poll() is not None and (t_all is not None or
                                               (r.exited_at and time.time() - r.exited_at > 1.0)):
                break
            time.sleep(0.01)
        exit_after = (r.exited_at - r.t_launch_wall) - (t0 - r.t_launch) if r.exited_at else None
        left = sum(alive(p, s) for p, s in descendants.items()) + sum(alive(p, s) for p, s in managed.items())
        if t_managed is not None:
            res.add("shutdown", case, "managed gone after", manager, t_managed, "s", rep)
        if t_all is not None:
            res.add("shutdown", case, "all gone after", manager, t_all, "s", rep)
        if exit_after is not None:
            res.add("shutdown", case, "manager exit after", manager, exit_after, "s", rep)
        res.add("shutdown", case, "left running", manager, left, "procs", rep)
    finally:
        r.stop()
        shutil.rmtree(work, ignore_errors=True)


def shutdown_chain_manager(res: Results, manager: str, rep: int, grace: int):
    """Two processes that ignore SIGTERM in a dependency chain (`"startup": "parallel"`, b
    needs a), each with its own graceful_time: the shutdown stops b first, and a gets only
    what is left of the largest grace, so the manager exits after one grace, not two."""
    work = workdir("shutdown-chain")
    deaf = lambda name: ["sh", "-c", f"trap '' TERM; echo $$ > {work}/{name}.pid; while :; do sleep 1 & wait; done"]
    procs = [Proc("a", deaf("a"), options={"graceful_time": grace}),
             Proc("b", deaf("b"), options={"graceful_time": grace, "depends_on": ["a"]})]
    case = f"chain of 2 ignoring TERM, grace {grace}s each"
    r = STARTERS[manager](procs, work, http=False, top={"startup": "parallel"})
    try:
        files = [work / f"{p.name}.pid" for p in procs]
        deadline = time.monotonic() + 60
        while not all(f.exists() and f.read_text().endswith("\n") for f in files):
            if time.monotonic() > deadline or r.popen.poll() is not None:
                raise RuntimeError(f"processes did not start: {r.out.tail(3)} {r.err.tail(3)}")
            time.sleep(0.02)
        time.sleep(0.3)  # let the shells set their traps
        t0 = time.monotonic()
        os.kill(r.pid, signal.SIGINT)
        r.popen.wait(60)
        res.add("shutdown", case, "manager exit after", manager, time.monotonic() - t0, "s", rep)
    finally:
        r.stop()
        shutil.rmtree(work, ignore_errors=True)


def scenario_shutdown(res: Results, args):
    n_each = 20
    print("[shutdown]", flush=True)
    res.notes.append("shutdown: 'left running' counts the managed sh processes and their sleep "
                     "children still alive 1 s after the manager exited (found by recorded pid and start time).")
    for rep in range(args.reps):
        for m in MANAGERS:
            run_one(res, "shutdown", f"{n_each}+{n_each}, grace 2s", m,
                    lambda: shutdown_manager(res, m, rep, n_each, 2), rep)
        # Dependencies are ours alone (and another build of ours).
        for m in [m for m in MANAGERS if m.startswith("ours")]:
            run_one(res, "shutdown", "chain of 2 ignoring TERM, grace 2s each", m,
                    lambda: shutdown_chain_manager(res, m, rep, 2), rep)


# ================================================================ 4. footprint


def footprint_manager(res: Results, manager: str, n: int, rep: int, idle: float):
    work = workdir("foot")
    procs = [Proc(f"s{i:03d}", ["sleep", "1000"]) for i in range(n)]
    case = f"{n} sleeps"
    r = STARTERS[manager](procs, work, **({} if manager == "supervisord" else {"graceful_time": 1}))
    try:
        r.wait_running(timeout=120, poll=0.05)
        time.sleep(1.0)
        pids = r.manager_pids()
        cpu0 = sum(cpu_seconds(p) for p in pids)
        time.sleep(idle)
        cpu1 = sum(cpu_seconds(p) for p in pids)
        res.add("footprint", case, "RSS", manager, sum(rss_kib(p) for p in pids) / 1024, "MiB", rep)
        mem = [memory_kib(p) for p in pids]
        res.add("footprint", case, "PSS", manager, sum(m.get("Pss", 0) for m in mem) / 1024, "MiB", rep)
        res.add("footprint", case, "anonymous (private) RSS", manager,
                sum(m.get("Anonymous", 0) for m in mem) / 1024, "MiB", rep)
        res.add("footprint", case, "CPU while idle", manager, (cpu1 - cpu0) * 1000 / idle * 10, "ms/10s", rep)
        res.add("footprint", case, "CPU to start", manager, cpu0 * 1000, "ms", rep)
        res.add("footprint", case, "threads", manager, sum(threads(p) for p in pids), "", rep)
    finally:
        r.stop()
        shutil.rmtree(work, ignore_errors=True)


def scenario_footprint(res: Results, args):
    sizes = [20] if args.quick else [20, 500]
    idle = 10.0
    res.notes.append("footprint: ours is guardian + manager; CPU while idle is measured over 10 s, "
                     "starting 1 s after the manager reports running; /proc tick resolution is 10 ms.")
    for n in sizes:
        print(f"[footprint] {n}", flush=True)
        for rep in range(args.reps):
            for m in MANAGERS:
                run_one(res, "footprint", f"{n} sleeps", m, lambda: footprint_manager(res, m, n, rep, idle), rep)


# ================================================================ 5. REST


def parse_wrk(out: str) -> dict:
    def dur(s: str) -> float:
        m = re.match(r"([\d.]+)(us|ms|s|m)", s)
        v, u = float(m.group(1)), m.group(2)
        return v * {"us": 1e-3, "ms": 1, "s": 1e3, "m": 6e4}[u]

    d = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}
    for q in ("50", "99"):
        m = re.search(rf"^\s+{q}%\s+(\S+)", out, re.M)
        d[f"p{q}"] = dur(m.group(1)) if m else float("nan")
    errs = 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errs += int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errs += sum(int(x) for x in m.groups()) if m else 0
    d["errors"] = errs
    return d


def wrk_path() -> str:
    """`wrk`, or a Skip before anything is started for nothing."""
    wrk = shutil.which("wrk")
    if not wrk:
        raise Skip("wrk is not installed (bench/setup.sh installs it with apt-get)")
    return wrk


def wrk_get(res: Results, manager: str, rep: int, duration: int, url: str, case: str):
    """`wrk` on `url`, as every manager of the rest scenario is measured."""
    out = subprocess.run([wrk_path(), "-t2", "-c16", f"-d{duration}s", "--latency", url],
                         capture_output=True, text=True, timeout=duration + 60).stdout
    d = parse_wrk(out)
    res.add("rest", case, "requests/s", manager, d["rps"], "req/s", rep)
    res.add("rest", case, "p50 latency", manager, d["p50"], "ms", rep)
    res.add("rest", case, "p99 latency", manager, d["p99"], "ms", rep)
    res.add("rest", case, "errors", manager, d["errors"], "", rep)


def rest_manager(res: Results, manager: str, rep: int, duration: int, n: int = 20, path: str = "/"):
    wrk_path()
    work = workdir("rest")
    procs = [Proc(f"s{i:04d}", ["sleep", "1000"]) for i in range(n)]
    kw = {} if manager == "supervisord" else {"graceful_time": 1}
    if manager.startswith("ours") and n > 100:
        kw["top"] = {"startup": "parallel"}
    r = STARTERS[manager](procs, work, **kw)
    try:
        r.wait_running(timeout=60 + n / 10, poll=0.05)
        wrk_get(res, manager, rep, duration, r.status_url + path, f"GET {path}, {n} procs")
    finally:
        r.stop()
        shutil.rmtree(work, ignore_errors=True)


def legacy_list_response(n: int) -> bytes:
    """What ours answers to `GET /` with `n` running `sleep 1000` processes, byte for byte in
    length: the body of the original's list, and ours's headers."""
    rows = ", ".join(f'{{"id": {i + 1}, "command": "sleep 1000", "status": "running", "pid": {100000 + i}}}'
                     for i in range(n))
    body = f'{{"count": {n}, "processes": [{rows}]}}'.encode()
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())
    head = ("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-content-type-options: nosniff\r\n"
            f"content-length: {len(body)}\r\ndate: {date}\r\n\r\n")
    return head.encode() + body


def rest_floor(res: Results, rep: int, duration: int, n: int):
    """The floor: bench/floor/http.c (two threads) answering every request with the bytes
    of ours's answer, measured by the same `wrk`."""
    wrk_path()
    prog = floor_program("http")
    work = workdir("rest-floor")
    answer = work / "answer"
    answer.write_bytes(legacy_list_response(n))
    port = free_port()
    p = subprocess.Popen([str(prog), str(port), "2", str(answer)], stdout=subprocess.PIPE, text=True)
    try:
        if p.stdout.readline().strip() != "ready":
            raise RuntimeError("bench/floor/http did not start")
        wrk_get(res, "c-http", rep, duration, f"http://127.0.0.1:{port}/", f"GET /, {n} procs")
    finally:
        p.kill()
        p.wait()
        shutil.rmtree(work, ignore_errors=True)


def scenario_rest(res: Results, args):
    duration = 3 if args.quick else 10
    sizes = [20] if args.quick else [20, 1000]
    print("[rest]", flush=True)
    res.notes.append(f"rest: wrk -t2 -c16 -d{duration}s --latency on the same 2 cores as the server. "
                     "supervisord has no JSON list; its GET / is the HTML status page of its web UI. "
                     "With 1000 processes: ours only (ours-vs too), started in parallel. "
                     "c-http: bench/floor/http.c, 2 threads, answering every request with the "
                     "bytes of ours's answer (the floor of the kernel's TCP path and wrk). "
                     "GET /api/v1/processes (what the dashboard and the Python API read): ours only, "
                     "at the larger size.")
    for n in sizes:
        managers = MANAGERS if n <= 100 else [m for m in MANAGERS if m.startswith("ours")]
        for rep in range(args.reps):
            for m in managers:
                run_one(res, "rest", f"GET /, {n} procs", m,
                        lambda: rest_manager(res, m, rep, duration, n), rep)
            run_one(res, "rest", f"GET /, {n} procs", "c-http",
                    lambda: rest_floor(res, rep, duration, n), rep)
    # What the dashboard and the Python API read: the /api/v1/ list, ours only.
    n = sizes[-1]
    for rep in range(args.reps):
        for m in [m for m in MANAGERS if m.startswith("ours")]:
            run_one(res, "rest", f"GET /api/v1/processes, {n} procs", m,
                    lambda: rest_manager(res, m, rep, duration, n, "/api/v1/processes"), rep)


# ================================================================ 5b. start-up at scale


def scale_manager(res: Results, manager: str, n: int, rep: int):
    """Launch of the manager until `GET /status` says running, with `n` `sleep` processes
    started in parallel and nothing to verify: the cost of spawning itself."""
    work = workdir("scale")
    procs = [Proc(f"s{i:04d}", ["sleep", "100000"]) for i in range(n)]
    r = STARTERS[manager](procs, work, graceful_time=1, top={"startup": "parallel"})
    try:
        t = r.wait_running(timeout=60 + n / 10, poll=0.005)
        res.add("scale", f"N={n}", "time to running", manager, t, "s", rep)
    finally:
        r.stop()
        shutil.rmtree(work, ignore_errors=True)


def scale_bash(res: Results, n: int, rep: int):
    """The floor: bash starting the same `n` sleeps in the background, timed until bash has
    forked the last one and exited."""
    script = f"for i in $(seq {n}); do sleep 100000 & done"
    t0 = time.monotonic()
    p = subprocess.Popen(["bash", "-c", script], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        p.wait(60 + n / 10)
        res.add("scale", f"N={n}", "time to running", "bash", time.monotonic() - t0, "s", rep)
    finally:
        kill_session(p.pid)


def scale_floor(res: Results, n: int, rep: int, mode: str):
    """The floor: bench/floor/spawn.c starting the same `n` sleeps (`vfork`: each start
    waits for its child's execve, as ours does; `fork`: none waits, each execve confirmed
    later), timed from its launch until it says every child has called execve."""
    prog = floor_program("spawn")
    t0 = time.monotonic()
    p = subprocess.Popen([str(prog), str(n), mode], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        if p.stdout.readline().strip() != "ready":
            raise RuntimeError("bench/floor/spawn did not start its children")
        res.add("scale", f"N={n}", "time to running", f"c-{mode}", time.monotonic() - t0, "s", rep)
        p.wait(60 + n / 10)
    finally:
        kill_session(p.pid)


def static_child_path() -> str:
    """A directory holding bench/floor/pause.c built as `sleep`, to put first in PATH."""
    out = BENCH / ".floor" / "static-child" / "sleep"
    try:
        floor_program("pause", ("-static", "-nostdlib"), out)
    except subprocess.CalledProcessError as e:
        raise SystemExit(f"--scale-child static: cannot build bench/floor/pause.c: {e}")
    return str(out.parent)


def scenario_scale(res: Results, args):
    n = 200 if args.quick else 1000
    print(f"[scale] N={n}", flush=True)
    if args.scale_child == "static":
        old_path = os.environ.get("PATH", "")
        os.environ["PATH"] = static_child_path() + os.pathsep + old_path
        try:
            res.notes.append("scale: with --scale-child static, `sleep` is bench/floor/pause.c, "
                             "a static child without the C library that only waits (first in PATH "
                             "for ours, bash and the C floor alike).")
            scale_runs(res, args, n)
        finally:
            os.environ["PATH"] = old_path
    else:
        scale_runs(res, args, n)


def scale_runs(res: Results, args, n: int):
    res.notes.append(f"scale: {n} `sleep` processes, `\"startup\": \"parallel\"`, no verifier, REST on; "
                     "time from the manager's launch until GET /status says running (polled every 5 ms). "
                     "bash: `for i in $(seq N); do sleep 100000 & done`, from its launch until it exits. "
                     "c-vfork, c-fork: bench/floor/spawn.c (posix_spawn, each waiting for its child's "
                     "execve; fork, the execve confirmed later), from its launch until every child has "
                     "called execve.")
    managers = [m for m in MANAGERS if m.startswith("ours")]
    for rep in range(args.reps):
        for m in managers:
            run_one(res, "scale", f"N={n}", m, lambda: scale_manager(res, m, n, rep), rep)
        run_one(res, "scale", f"N={n}", "bash", lambda: scale_bash(res, n, rep), rep)
        for mode in ("vfork", "fork"):
            run_one(res, "scale", f"N={n}", f"c-{mode}", lambda: scale_floor(res, n, rep, mode), rep)


# ================================================================ 6. verifier cost


def verify_cost(res: Results, manager: str, n: int, rep: int, url: str):
    """N `sleep` processes verified by one GET each on one shared server, against the same
    N without verifiers: the difference over N is what one verification costs end to end."""
    times = {}
    for with_v in (True, False):
        work = workdir("vcost")
        procs = [Proc(f"s{i:03d}", ["sleep", "1000"], url if with_v else None) for i in range(n)]
        r = STARTERS[manager](procs, work, graceful_time=1)
        try:
            times[with_v] = r.wait_running(timeout=120, poll=0.01)
        finally:
            r.stop()
            shutil.rmtree(work, ignore_errors=True)
    case = f"{n} procs, 1 GET each"
    res.add("verifier", case, "running, verified", manager, times[True], "s", rep)
    res.add("verifier", case, "running, no verifier", manager, times[False], "s", rep)
    res.add("verifier", case, "cost per verification", manager, (times[True] - times[False]) / n * 1000, "ms", rep)


def harness_get(res: Results, url: str, rep: int):
    """The same GET made by the harness itself (Python http.client, a new connection each)."""
    ts = []
    for _ in range(200):
        t = time.perf_counter()
        answers(url)
        ts.append(time.perf_counter() - t)
    res.add("verifier", "50 procs, 1 GET each", "cost per verification", "harness-GET", median(ts) * 1000, "ms", rep)


def scenario_verifier(res: Results, args):
    """End to end: what a verification adds per process; and the WASM runtime's own
    micro-benchmark, when the runtime is on this branch."""
    print("[verifier]", flush=True)
    work = workdir("vserver")
    port = free_port()
    server = subprocess.Popen([PYTHON, "-m", "http.server", "--bind", "127.0.0.1", str(port)], cwd=work,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        while not answers(url):
            time.sleep(0.01)
        for rep in range(args.reps):
            for m in [m for m in MANAGERS if m != "supervisord"]:
                run_one(res, "verifier", "50 procs, 1 GET each", m, lambda: verify_cost(res, m, 50, rep, url), rep)
            harness_get(res, url, rep)
    finally:
        kill_session(server.pid)
        server.wait()
        shutil.rmtree(work, ignore_errors=True)
    bench = ROOT / "host" / "benches" / "runtime.rs"
    if not bench.exists():
        res.skip("verifier", "runtime micro-bench", "ours",
                 "no verifier runtime on this branch yet (host/benches/runtime.rs missing); "
                 "re-run after merging main")
        return
    cmd = ["cargo", "bench", "-p", "pymanager", "--bench", "runtime"]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=3600)
    (res.out / "verifier-bench.txt").write_text(p.stdout + "\n--- stderr ---\n" + p.stderr)
    if p.returncode != 0:
        res.skip("verifier", "runtime micro-bench", "ours", f"`{' '.join(cmd)}` failed; see verifier-bench.txt")
        return
    res.notes.append("verifier: output of `cargo bench -p pymanager --bench runtime` is in verifier-bench.txt")
    for line in p.stdout.splitlines():
        if line.strip():
            res.notes.append(f"verifier: runtime bench: {line.strip()}")


# ================================================================ 7. spawn cost vs manager size

BALLAST = ("import sys, time\n"
           "line = 'x' * 65000 + '\\n'\n"
           "for _ in range(1000):\n"
           "    sys.stdout.write(line)\n"
           "print('ballast done', flush=True)\n"
           "time.sleep(100000)\n")


def spawn_cost(res: Results, ballast: int, n: int, rep: int):
    """CPU the manager spends per process started, once it has grown: `ballast` processes
    each fill their output history (1000 lines of 64 KB, ~64 MB each, output suppressed)
    before `n` `sleep` processes start. A `fork` copies the manager's page tables, so its
    cost grows with the manager's size; a spawn that does not copy them stays flat."""
    work = workdir("spawn")
    procs: dict = {}
    for i in range(ballast):
        procs[f"b{i}"] = {"executable": PYTHON, "arguments": ["-c", BALLAST],
                          "options": {"suppress_output": True},
                          "verifier": {"type": "output", "arguments": {"pattern": "ballast done", "timeout": 120}}}
    for i in range(n):
        procs[f"s{i:03d}"] = {"executable": "sleep", "arguments": ["100000"]}
    cfg = work / "pymanager.json"
    cfg.write_text(json.dumps({"http": {"enabled": True, "port": 0}, "graceful_time": 1,
                               "processes": procs}))
    from common import _spawn
    r = _spawn("ours", [str(OURS), "-v", "-f", str(cfg)], work)
    case = f"{n} spawns, {ballast} x 64 MB ballast"
    try:
        hit = r.out.wait_for(r"REST API listening on (http://\S+)", 60)
        if hit is None:
            raise RuntimeError(f"ours did not start: {r.err.tail(3)}")
        r.status_url = re.search(r"(http://\S+)", hit[1]).group(1).rstrip("/")
        if ballast and r.err.wait_for(rf"process b{ballast - 1} verified", 300) is None:
            raise RuntimeError(f"ballast not verified: {r.err.tail(3)}")
        pids = r.manager_pids()
        cpu0 = sum(cpu_seconds(p) for p in pids)
        rss0 = sum(rss_kib(p) for p in pids) / 1024
        r.wait_running(timeout=300, poll=0.05)
        cpu1 = sum(cpu_seconds(p) for p in pids)
        res.add("spawn", case, "manager RSS before", "ours", rss0, "MiB", rep)
        res.add("spawn", case, "CPU per spawn", "ours", (cpu1 - cpu0) / n * 1e6, "µs", rep)
    finally:
        r.stop()
        shutil.rmtree(work, ignore_errors=True)


def scenario_spawn(res: Results, args):
    n = 100 if args.quick else 300
    print("[spawn]", flush=True)
    res.notes.append("spawn: CPU (guardian + manager, /proc ticks of 10 ms) from the moment the last "
                     "ballast process is verified until all sleeps run, divided by their number.")
    for rep in range(args.reps):
        for ballast in (0, 3):
            run_one(res, "spawn", f"{n} spawns, {ballast} x 64 MB ballast", "ours",
                    lambda: spawn_cost(res, ballast, n, rep), rep)


# ================================================================ 8. waiting verifiers


def scenario_waiting(res: Results, args):
    """Memory and CPU of 1000 verifiers waiting at once, and CPU of 200 verifiers retrying a
    closed port: the runtime bench's `waiting` part (ours only: the original's verifiers are
    Python threads of the manager, not comparable one by one)."""
    print("[waiting]", flush=True)
    closed_s = 10 if args.quick else 30
    cmd = ["cargo", "bench", "--quiet", "-p", "pymanager", "--bench", "runtime", "--", "waiting"]
    env = dict(os.environ, PYMANAGER_BENCH_CLOSED_S=str(closed_s))
    res.notes.append(f"waiting: `PYMANAGER_BENCH_CLOSED_S={closed_s} {' '.join(cmd)}`, output in waiting-bench.txt")
    num = r"([-+]?[\d.]+)"
    rows = [
        (rf"verifiers waiting at once .*?: RSS {num} MiB", "1000 verifiers", "extra RSS", "MiB"),
        (rf"verifiers waiting at once .*?\({num} KiB each\)", "1000 verifiers", "extra RSS each", "KiB"),
        (rf"per waiting verifier: private \(anonymous\) {num} KiB", "1000 verifiers", "private memory each", "KiB"),
        (rf"CPU while they wait: {num} ms over", "1000 verifiers", "CPU while waiting 3 s", "ms"),
        (rf"all \d+ passed {num} ms after the exit", "1000 verifiers", "all passed after exit", "ms"),
        (rf"on a closed loopback port for \d+ s: CPU {num} ms", f"200 on a closed port, {closed_s} s", "CPU", "ms"),
    ]
    log = []
    for rep in range(args.reps):
        p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
        log.append(f"=== rep {rep}: exit {p.returncode}\n{p.stdout}\n--- stderr ---\n{p.stderr[-4000:]}")
        (res.out / "waiting-bench.txt").write_text("\n".join(log))
        if p.returncode != 0:
            res.notes.append(f"waiting rep {rep}: failed (exit {p.returncode}); see waiting-bench.txt")
            print(f"  waiting rep {rep}: FAILED; see {res.out / 'waiting-bench.txt'}", flush=True)
            continue
        for pattern, case, metric, unit in rows:
            m = re.search(pattern, p.stdout)
            if m:
                res.add("waiting", case, metric, "ours", float(m.group(1)), unit, rep)


# ================================================================ pymanager run


def run_overhead(res: Results, binary: Path, manager: str, n: int, rep: int):
    """`pymanager run -- date +%s%N` beside n plain processes: from the "ready" line to the
    command's first instruction, and from the command's end to run's exit. The command
    is `date` (one exec of a small program, ~1 ms on its own, counted in both figures)."""
    work = workdir("run")
    cfg = {"processes": {f"p{i:03d}": {"executable": "sleep", "arguments": ["600"]} for i in range(n)}}
    (work / "pymanager.json").write_text(json.dumps(cfg))
    # -w: its "[DEBUG] ready at <epoch seconds>" line says when the start-up was done, on
    # the clock the command's `date` reads (a read of the "ready" line by this harness
    # would come late on a busy machine).
    p = subprocess.Popen([str(binary), "run", "-w", "-f", str(work / "pymanager.json"), "--", "date", "+%s%N"],
                         cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True, text=True)
    ready_at = None
    try:
        for line in p.stderr:
            m = re.match(r"\[DEBUG\] ready at ([0-9.]+)", line)
            if m:
                ready_at = float(m.group(1))
                break
        if ready_at is None:
            raise RuntimeError(f"no ready line (exit {p.wait(30)})")
        stamp = p.stdout.readline().strip()
        if not stamp:
            raise RuntimeError("the command printed nothing")
        # wait() without a timeout blocks in waitpid; with one, Python polls (sleeps of up
        # to 50 ms) and the figure would be the poll's.
        p.wait()
        exited_at = time.time()
        t_cmd = int(stamp) / 1e9
        res.add("run", f"{n} processes", "ready -> command starts", manager, t_cmd - ready_at, "s", rep)
        res.add("run", f"{n} processes", "command ends -> run exits", manager, exited_at - t_cmd, "s", rep)
        res.add("run", f"{n} processes", "run exit code", manager, p.returncode, "", rep)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        shutil.rmtree(work, ignore_errors=True)


def scenario_run(res: Results, args):
    print("[run]", flush=True)
    res.notes.append("run: `pymanager run -- date +%s%N` beside 20 `sleep` processes; the "
                     "ready time is run's own (its -w \"ready at\" line), the command's "
                     "start and end are date's own clock (its exec, ~1 ms, is in both figures); "
                     "the exit is when wait() returns. Goals: <= 5 ms and <= 50 ms.")
    builds = [("ours", OURS)] + ([("ours-vs", common.OURS_VS)] if "ours-vs" in MANAGERS and common.OURS_VS else [])
    for rep in range(args.reps):
        for m, binary in builds:
            if m in MANAGERS:
                run_one(res, "run", "20 processes", m, lambda: run_overhead(res, binary, m, 20, rep), rep)


SCENARIOS = {
    "ready": scenario_ready,
    "parallel": scenario_parallel,
    "exit": scenario_exit,
    "shutdown": scenario_shutdown,
    "footprint": scenario_footprint,
    "rest": scenario_rest,
    "scale": scenario_scale,
    "verifier": scenario_verifier,
    "spawn": scenario_spawn,
    "waiting": scenario_waiting,
    "run": scenario_run,
}


def combine(dirs: list[Path]):
    """One summary from several runs (e.g. scenarios re-run after a change): the samples
    of one manager in one scenario are taken from the last run that has them, never mixed
    across runs. A run of ours alone (`--managers ours`) thus replaces ours' cells and
    keeps the other managers' from the earlier run; the notes say which run is which."""
    merged = {"samples": [], "skips": [], "notes": [], "machine": None}
    have: set[tuple[str, str]] = set()
    for d in reversed(dirs):
        data = json.loads((d / "results.json").read_text())
        merged["machine"] = merged["machine"] or data["machine"]
        pairs = {(s["scenario"], s["manager"]) for s in data["samples"] + data["skips"]}
        new = pairs - have
        merged["samples"] += [s for s in data["samples"] if (s["scenario"], s["manager"]) in new]
        merged["skips"] += [s for s in data["skips"] if (s["scenario"], s["manager"]) in new]
        fresh = {scenario for scenario, _ in new}
        merged["notes"] += [f"[{d.name}] {n}" for n in data["notes"]
                            if any(n.startswith(x) or f"before {x}" in n for x in fresh)]
        have |= pairs
    order = list(SCENARIOS)
    merged["samples"].sort(key=lambda s: order.index(s["scenario"]))
    out = dirs[-1] / "summary-combined.md"
    out.write_text(summarize(merged))
    print(out.read_text())
    print(f"written to {out}")


def main():
    global MANAGERS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=None, help="repetitions per scenario (default 5, 2 with --quick)")
    ap.add_argument("--quick", action="store_true", help="fewer sizes, shorter runs")
    ap.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated: " + ",".join(SCENARIOS))
    ap.add_argument("--managers", default=",".join(MANAGERS), help="comma-separated subset of " + ",".join(MANAGERS))
    ap.add_argument("--vs", metavar="BIN",
                    help="another build of ours (an older commit's target/release/pymanager) to run "
                         "side by side as manager ours-vs, added to --managers")
    ap.add_argument("--scale-child", choices=["sleep", "static"], default="sleep",
                    help="what the scale scenario starts 1000 of: `sleep`, or a static child "
                         "that costs nothing to start (bench/floor/pause.c), to time the "
                         "starting itself")
    ap.add_argument("--combine", nargs="+", metavar="DIR",
                    help="only write one summary.md from the results.json of these result directories")
    args = ap.parse_args()
    if args.combine:
        combine([Path(d) for d in args.combine])
        return
    if args.reps is None:
        args.reps = 2 if args.quick else 5
    MANAGERS = [m for m in args.managers.split(",") if m]
    if args.vs:
        os.environ["PYMANAGER_VS_BIN"] = str(Path(args.vs).resolve())
        common.OURS_VS = Path(args.vs).resolve()
        if "ours-vs" not in MANAGERS:
            MANAGERS.append("ours-vs")
    need = {"ours": OURS, "original": ORIGINAL, "supervisord": SUPERVISORD, "ours-vs": common.OURS_VS}
    for m in MANAGERS:
        if m in need and not (need[m] and need[m].exists()):
            sys.exit(f"{need[m]} is missing: run bench/setup.sh (or bench/run.sh) first")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = BENCH / "results" / stamp
    out.mkdir(parents=True, exist_ok=True)
    res = Results(out)
    print(f"machine: {machine()}\nresults: {out}", flush=True)
    try:
        for name in args.only.split(","):
            load = Path("/proc/loadavg").read_text().split()[:3]
            res.notes.append(f"load average (1, 5, 15 min) before {name}: {' '.join(load)}")
            SCENARIOS[name](res, args)
            res.save(args)
    finally:
        res.save(args)
    print("\n" + (out / "summary.md").read_text())


if __name__ == "__main__":
    main()

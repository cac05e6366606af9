#!/usr/bin/env python3
"""Soak test: thousands of restarts through the REST API (POST /restart/<id>), watching the
manager for leaks: open file descriptors, RSS, threads, zombies and stray processes.

Run on demand, not in CI (`just soak`, or `python3 bench/soak.py --restarts 5000`). Needs a
release build (`cargo build --release`). Standard library only. The figures go to stdout and
to bench/results/soak-<stamp>.md; the last ones are kept in bench/SOAK.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    BENCH,
    OURS,
    PYTHON,
    Proc,
    Skip,
    children_of,
    fd_count,
    free_port,
    machine,
    median,
    proc_stat,
    rss_kib,
    session_members,
    start_ours,
    threads,
)


def request(url: str, method: str, path: str, timeout: float = 30.0) -> tuple[int, dict]:
    host, port = url.removeprefix("http://").split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        c.request(method, path)
        r = c.getresponse()
        body = r.read()
        try:
            return r.status, json.loads(body)
        except ValueError:
            return r.status, {"raw": body[:200].decode(errors="replace")}
    finally:
        c.close()


def sample(pid: int) -> dict:
    return {"fds": fd_count(pid), "rss_kib": rss_kib(pid), "threads": threads(pid)}


def zombies_of(pid: int) -> int:
    return sum(1 for c in children_of(pid) if (proc_stat(c) or ["?"])[0] == "Z")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--restarts", type=int, default=3000)
    ap.add_argument("--verifier", action="store_true",
                    help="also restart an http.server with an HTTP verifier (needs the verifier runtime)")
    ap.add_argument("--every", type=int, default=500, help="print a sample every N restarts")
    args = ap.parse_args()
    if not OURS.exists():
        sys.exit(f"{OURS} is missing: cargo build --release")

    work = Path(tempfile.mkdtemp(prefix="pm-soak-"))
    procs = [Proc(f"sleep{i}", ["sleep", "1000"]) for i in range(3)]
    # A shell with a child of its own: each restart must take the grandchild too.
    procs.append(Proc("shell", ["sh", "-c", "sleep 1000 & wait"]))
    # Output on every start, so the output pumps are exercised.
    procs.append(Proc("chatty", ["sh", "-c", "echo started; exec sleep 1000"]))
    if args.verifier:
        port = free_port()
        procs.append(Proc("web", [PYTHON, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
                          f"http://127.0.0.1:{port}/"))
    try:
        r = start_ours(procs, work, keep_alive=True, graceful_time=2)
    except Skip as e:
        sys.exit(f"skipped: {e}")
    lines = []

    def say(s: str = ""):
        print(s, flush=True)
        lines.append(s)

    try:
        r.wait_running(60)
        pids = r.manager_pids()
        manager = pids[-1]
        time.sleep(1.0)
        first = sample(manager)
        guardian_first = sample(r.pid)
        say(f"# Soak: {args.restarts} restarts through POST /restart/<id>")
        say()
        say(f"machine: {machine()}; processes: {len(procs)} "
            f"({', '.join(p.name for p in procs)}); manager pid {manager}, guardian pid {r.pid}")
        say()
        say("| restarts | fds | RSS (KiB) | threads | zombies | processes in session | restart p50 (ms) | restart p99 (ms) |")
        say("|---|---|---|---|---|---|---|---|")
        say(f"| 0 | {first['fds']} | {first['rss_kib']} | {first['threads']} | {zombies_of(manager)} "
            f"| {len(session_members(r.pid))} | | |")
        lat: list[float] = []
        window: list[float] = []
        t_start = time.monotonic()
        ids = list(range(1, len(procs) + 1))
        last_pid = {}
        failures = 0
        for i in range(1, args.restarts + 1):
            pid_id = ids[i % len(ids)]
            t0 = time.monotonic()
            code, body = request(r.status_url, "POST", f"/restart/{pid_id}")
            dt = (time.monotonic() - t0) * 1000
            if i == 1 and not (code == 200 and isinstance(body, dict) and body.get("success") is True):
                sys.exit(f"POST /restart/{pid_id} answered {code} {body}: this build has no restart "
                         "endpoint yet (the placeholder REST server); merge main once the warp API lands")
            if code != 200 or not body.get("success"):
                failures += 1
                print(f"restart {i} of {pid_id}: {code} {body}", file=sys.stderr)
                continue
            new_pid = body.get("process", {}).get("pid")
            if new_pid is not None and last_pid.get(pid_id) == new_pid:
                failures += 1
                print(f"restart {i} of {pid_id}: pid {new_pid} unchanged", file=sys.stderr)
            last_pid[pid_id] = new_pid
            lat.append(dt)
            window.append(dt)
            if i % args.every == 0 or i == args.restarts:
                s = sample(manager)
                w = sorted(window)
                say(f"| {i} | {s['fds']} | {s['rss_kib']} | {s['threads']} | {zombies_of(manager)} "
                    f"| {len(session_members(r.pid))} | {median(w):.1f} | {w[int(len(w) * 0.99) - 1]:.1f} |")
                window = []
        elapsed = time.monotonic() - t_start
        time.sleep(2.0)  # let anything transient (closing sockets, reaped runs) settle
        last = sample(manager)
        guardian_last = sample(r.pid)
        status, listing = request(r.status_url, "GET", "/")
        running = sum(1 for p in listing.get("processes", []) if p.get("status") == "running")
        say()
        say(f"{len(lat)} restarts in {elapsed:.1f} s ({len(lat) / elapsed:.0f}/s), {failures} failed; "
            f"restart latency median {median(lat):.1f} ms, max {max(lat):.1f} ms.")
        say(f"Manager after settling: fds {first['fds']} → {last['fds']}, RSS {first['rss_kib']} → "
            f"{last['rss_kib']} KiB, threads {first['threads']} → {last['threads']}, "
            f"zombies {zombies_of(manager)}; guardian fds {guardian_first['fds']} → {guardian_last['fds']}, "
            f"RSS {guardian_first['rss_kib']} → {guardian_last['rss_kib']} KiB.")
        expected = len(procs) + 1  # every process, plus the shell's sleep
        in_session = len(session_members(r.pid)) - len(pids)
        say(f"Processes: {running}/{len(procs)} running per GET /; {in_session} managed processes in the "
            f"session (expected {expected}: one sleep under the shell).")
    finally:
        r.stop()
        shutil.rmtree(work, ignore_errors=True)
    out = BENCH / "results"
    out.mkdir(exist_ok=True)
    f = out / f"soak-{time.strftime('%Y%m%d-%H%M%S')}.md"
    f.write_text("\n".join(lines) + "\n")
    print(f"\nwritten to {f}")


if __name__ == "__main__":
    main()

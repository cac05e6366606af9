#!/usr/bin/env python3
"""Instructions per `GET /` (and `GET /status`) in the manager, counted by callgrind: a
figure that load on the machine does not change, for comparing builds when the machine is
shared (wall-clock figures need a quiet one).

    bench/rest_ir.py BIN [BIN ...] [--requests 4000] [--procs 20] [--path /]

Each binary runs under `valgrind --tool=callgrind` on a config of `--procs` `sleep`
processes; a keep-alive client sends `--requests` and then 5 × `--requests` requests; the
difference of the manager's instruction totals between the two runs, divided by
4 × `--requests`, is the cost of one request (start-up and shutdown cancel out). Standard
library only; needs valgrind (apt-get install valgrind).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(binary: str, procs: int, requests: int, path: str) -> int:
    """The manager's total instructions over a run that serves `requests` requests."""
    work = Path(tempfile.mkdtemp(prefix="pm-rest-ir-"))
    try:
        cfg = work / "pymanager.json"
        cfg.write_text(json.dumps({
            "http": {"enabled": True, "port": 0}, "keep-alive": True, "graceful_time": 1,
            **({"startup": "parallel"} if procs > 100 else {}),
            "processes": {f"s{i:04d}": {"executable": "sleep", "arguments": ["100000"]}
                          for i in range(procs)},
        }))
        out = work / "cg.%p"
        p = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--trace-children=yes", "--trace-children-skip=*/sleep",
             f"--callgrind-out-file={out}", binary, "-f", str(cfg)],
            # valgrind cannot follow a child that shares the descriptor table.
            env=dict(os.environ, PYMANAGER_SPAWN_COPIES_TABLE="1"),
            cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            start_new_session=True)
        try:
            url = None
            for raw in p.stdout:
                m = re.search(rb"REST API listening on http://([\d.]+):(\d+)", raw)
                if m:
                    url = (m.group(1).decode(), int(m.group(2)))
                    break
            if url is None:
                raise RuntimeError(f"{binary} did not announce its address")
            conn = http.client.HTTPConnection(*url, timeout=60)
            deadline = time.monotonic() + 600
            while True:
                conn.request("GET", "/status")
                if b'"running"' in conn.getresponse().read():
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("not running")
                time.sleep(0.2)
            for _ in range(requests):
                conn.request("GET", path)
                r = conn.getresponse()
                r.read()
                if r.status != 200:
                    raise RuntimeError(f"{path}: {r.status}")
            conn.close()
        finally:
            os.kill(p.pid, signal.SIGINT)
            p.wait(300)
            os.killpg(p.pid, signal.SIGKILL) if p.poll() is None else None
        totals = []
        for f in work.glob("cg.*"):
            text = f.read_text(errors="replace")
            cmd = re.search(r"^cmd: (.*)$", text, re.M)
            total = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
            if cmd and total and "valgrind" not in cmd.group(1):
                totals.append(int(total.group(1)))
        # The guardian runs next to nothing; the manager is the largest of the two.
        return max(totals)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binaries", nargs="+")
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--procs", type=int, default=20)
    ap.add_argument("--path", default="/")
    args = ap.parse_args()
    if not shutil.which("valgrind"):
        sys.exit("valgrind is missing: apt-get install valgrind")
    for b in args.binaries:
        low = run(b, args.procs, args.requests, args.path)
        high = run(b, args.procs, 5 * args.requests, args.path)
        per = (high - low) / (4 * args.requests)
        print(f"{b}: {per:,.0f} instructions per GET {args.path} with {args.procs} processes", flush=True)


if __name__ == "__main__":
    main()

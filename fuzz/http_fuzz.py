#!/usr/bin/env python3
"""Random and malformed HTTP requests, over real sockets, against the real pymanager binary.

The libFuzzer `rest` target drives the routes through warp's test client; this one goes
through everything in front of them as well (the accept loop, hyper's parser, the
connection cap, the header-read timeout, the Origin/Host checks) with requests no
well-behaved client sends: random methods and paths, escapes, lying Content-Length, broken
chunked bodies, foreign Origin/Host/Sec-Fetch-Site, bytes flipped or cut in a valid request.

Oracle, for every answer: an HTTP/1.1 status line; never a 5xx other than 503 (a cap);
every JSON error body is {"success": false, "error": {"message": <one line>}}; and after each
batch the manager is alive, `GET /status` answers and its processes still run.

    cargo build -p pymanager
    python3 fuzz/http_fuzz.py --seconds 300 [--binary target/debug/pymanager] [--seed N]

Prints the number of requests, the answers by status, and every violation (with the
request, repr'd) ; exits 1 if there was one.
"""

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter

ROUTES = [
    "/", "/status", "/restart/1", "/restart/2", "/restart/0", "/restart/99", "/restart/x",
    "/api/v1/processes", "/api/v1/processes/web", "/api/v1/processes/1",
    "/api/v1/processes/web/restart", "/api/v1/processes/web/stop",
    "/api/v1/processes/web/start", "/api/v1/processes/web/logs",
    "/api/v1/processes/web/logs?lines=5", "/api/v1/processes/web/logs?lines=-1",
    "/api/v1/processes/web/logs?lines=99999999999999999999", "/api/v1/status",
    "/api/v1/openapi.json", "/ui/", "/ui/app.js", "/api/v1/", "/api/v1/processes/",
]
# Shutting down ends the run; those routes are left out on purpose.
METHODS = ["GET", "POST", "PUT", "PATCH", "HEAD", "OPTIONS", "TRACE", "CONNECT", "FOO", "get"]
TAILS = ["", "/", "//", "/..", "/%2e%2e", "%00", "%", "%zz", "?", "?a=%", "#x", "/\u00e9",
         "?lines=" + "9" * 40, "/" + "a" * 5000, ";x", "\\..\\"]
ORIGINS = ["http://evil.example", "null", "http://127.0.0.1:1", "https://127.0.0.1", "", "\x7f"]
HOSTS = ["evil.example", "127.0.0.1", "localhost", "[::1]", "127.0.0.1:1", "", "a" * 300,
         "evil.example:80, 127.0.0.1"]
SITES = ["cross-site", "same-site", "same-origin", "none", "weird"]
CTYPES = ["text/plain", "application/json", "multipart/form-data; boundary=x", "\x01"]

ALLOWED = {200, 202, 204, 400, 401, 403, 404, 405, 408, 411, 413, 414, 415, 422, 431, 501, 503, 505}


def request(rng):
    method = rng.choice(METHODS)
    path = rng.choice(ROUTES) + rng.choice(TAILS)
    if rng.random() < 0.1:
        path = "".join(chr(rng.randrange(33, 127)) for _ in range(rng.randrange(1, 40)))
    headers = []
    if rng.random() < 0.9:
        headers.append(("Host", rng.choice(HOSTS) if rng.random() < 0.3 else "127.0.0.1"))
    if rng.random() < 0.3:
        headers.append(("Origin", rng.choice(ORIGINS)))
    if rng.random() < 0.3:
        headers.append(("Sec-Fetch-Site", rng.choice(SITES)))
    if rng.random() < 0.3:
        headers.append(("Content-Type", rng.choice(CTYPES)))
    if rng.random() < 0.2:
        headers.append(("Authorization", rng.choice(["Bearer x", "Bearer", "Basic eA==", "bearer  y"])))
    if rng.random() < 0.1:
        headers.append((rng.choice(["X", "x-\x00", "Accept", "Connection"]), "v" * rng.randrange(0, 9000)))
    body = bytes(rng.randrange(256) for _ in range(rng.choice([0, 0, 1, 10, 100, 70000])))
    chunked = rng.random() < 0.1
    if chunked:
        headers.append(("Transfer-Encoding", "chunked"))
        body = rng.choice([b"5\r\nhello\r\n0\r\n\r\n", b"zz\r\n", b"ffffffffffffffff\r\nx", b"0\r\n\r\n"])
    elif body or rng.random() < 0.2:
        length = len(body) if rng.random() < 0.8 else rng.choice([0, len(body) + 10, -1, 2**64])
        headers.append(("Content-Length", str(length)))
    headers.append(("Connection", "close"))
    raw = f"{method} {path} HTTP/1.1\r\n".encode("utf-8", "surrogateescape")
    for k, v in headers:
        raw += f"{k}: {v}\r\n".encode("utf-8", "surrogateescape")
    raw += b"\r\n" + body
    if rng.random() < 0.15:
        b = bytearray(raw)
        for _ in range(rng.randrange(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        raw = bytes(b)
    if rng.random() < 0.05:
        raw = raw[: rng.randrange(len(raw))]
    return raw


def exchange(addr, raw, timeout=1.0):
    """The answer's bytes (b"" if closed without one, None on a time-out)."""
    with socket.create_connection(addr, timeout=timeout) as s:
        # The write side stays open: hyper takes a half-close for a client gone (and so
        # does the server's stream accounting), so a half-closing client may get no answer.
        try:
            s.sendall(raw)
        except OSError:
            pass
        out = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return out
                out += chunk
                if len(out) > 8 << 20:
                    return out
        except socket.timeout:
            return out or None
        except ConnectionResetError:
            return out


def check(answer, method):
    """A violation, or None."""
    head, _, body = answer.partition(b"\r\n\r\n")
    first = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = first.split(" ", 2)
    if len(parts) < 2 or parts[0] not in ("HTTP/1.1", "HTTP/1.0") or not parts[1].isdigit():
        return f"not a status line: {first!r}"
    code = int(parts[1])
    if code not in ALLOWED:
        return f"status {code}"
    lower = head.lower()
    # Garbage after a request is read as the next request: its answer follows this one.
    for line in lower.split(b"\r\n")[1:]:
        if line.startswith(b"content-length:"):
            try:
                body = body[: int(line.split(b":", 1)[1])]
            except ValueError:
                return f"a bad Content-Length in the answer: {line!r}"
    # A HEAD answer has the headers of the GET answer and no body.
    if method != b"HEAD" and code >= 400 and b"content-type: application/json" in lower and b"transfer-encoding" not in lower:
        try:
            v = json.loads(body)
        except ValueError:
            return f"{code} with a JSON type and a body that is not JSON: {body[:200]!r}"
        if not (isinstance(v, dict) and v.get("success") is False
                and isinstance(v.get("error"), dict)
                and isinstance(v["error"].get("message"), str)
                and "\n" not in v["error"]["message"]):
            return f"{code} with a malformed error body: {body[:200]!r}"
    return None


def status_ok(addr, slowest):
    """True if `GET /status` answers 200 within 10 s; `slowest` keeps the longest wait."""
    raw = b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    t = time.time()
    a = exchange(addr, raw, timeout=10.0)
    slowest[0] = max(slowest[0], time.time() - t)
    return bool(a) and a.startswith(b"HTTP/1.1 200")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--binary", default="target/debug/pymanager")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    args = ap.parse_args()
    rng = random.Random(args.seed)
    work = tempfile.mkdtemp(prefix="pym-http-fuzz-")
    cfg = {
        "http": {"enabled": True, "port": 0},
        "keep-alive": True,
        "processes": {
            "web": {"executable": "sh", "arguments": ["-c", "while :; do echo tick; sleep 0.2; done"]},
            "db": {"executable": "sh", "arguments": ["-c", "exec sleep 100000"]},
        },
    }
    with open(os.path.join(work, "pymanager.json"), "w") as f:
        json.dump(cfg, f)
    log = open(os.path.join(work, "out.log"), "wb")
    proc = subprocess.Popen([os.path.abspath(args.binary), "-f", "pymanager.json"], cwd=work,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    addr_file = os.path.join(work, ".pymanager", "pymanager.json.addr")
    deadline = time.time() + 60
    while time.time() < deadline and not (os.path.exists(addr_file) and os.path.getsize(addr_file)):
        time.sleep(0.05)
    url = open(addr_file).read().strip()
    host, port = url.rsplit("//", 1)[1].rsplit(":", 1)
    addr = (host, int(port))

    seen = Counter()
    violations = []
    slowest = [0.0]
    n = 0
    end = time.time() + args.seconds
    try:
        while time.time() < end:
            raw = request(rng)
            n += 1
            try:
                answer = exchange(addr, raw)
            except OSError as e:
                seen[f"connect error {e.__class__.__name__}"] += 1
                continue
            if answer is None:
                seen["no answer within 1 s (incomplete request)"] += 1
            elif answer == b"":
                seen["closed without an answer"] += 1
            else:
                code = answer[9:12].decode("latin-1")
                seen[code] += 1
                why = check(answer, raw.split(b" ", 1)[0])
                if why:
                    violations.append((why, raw[:300]))
            if n % 200 == 0:
                if proc.poll() is not None:
                    violations.append(("the manager exited", raw[:300]))
                    break
                if not status_ok(addr, slowest):
                    violations.append(("GET /status did not answer", raw[:300]))
    finally:
        alive = proc.poll() is None
        if alive and not status_ok(addr, slowest):
            violations.append(("GET /status did not answer at the end", b""))
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
        panicked = b"panicked" in open(os.path.join(work, "out.log"), "rb").read()
        if panicked:
            violations.append(("a panic in the manager's output", b""))
    print(f"seed {args.seed}: {n} requests in {args.seconds:.0f} s; slowest GET /status "
          f"{slowest[0]:.2f} s")
    for k, v in sorted(seen.items(), key=lambda kv: -kv[1]):
        print(f"  {v:7d}  {k}")
    for why, raw in violations[:20]:
        print(f"VIOLATION: {why}\n  request: {raw!r}")
    if not violations:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"manager output kept in {work}/out.log")
    sys.exit(1 if violations else 0)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Runs the commands the READMEs and docs show, from a directory outside the checkout.

Every command of a ```sh block in the docs below is either run here — as written, with
only what stands for the reader's own things replaced (a free port for 8080, `true` for
`run-tests`, the checkout's path before `examples/`) — or skipped with the reason written
beside it. A command the docs gain that this script neither runs nor skips fails the run,
so the docs cannot drift from what works.

    scripts/doc-commands.py [--bin target/debug/pymanager] [--keep] [--only TEXT] [--check]

Needs what `cargo test` needs (scripts/test-deps.sh), and the binary (`cargo build`).
Exit 0 when every command ran as the docs say; 1 otherwise, each failure named.
"""

import argparse
import contextlib
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
# Every page a reader follows: the READMEs (the checkout's, each example's, each crate's)
# and docs/.
DOC_GLOBS = ["*.md", "docs/*.md", "examples/*/README.md", "*/README.md", "bench/*.md"]
# Every wait ends on its event; this only bounds a hang (a compile of an 18 MB component on
# a loaded machine takes minutes).
WAIT = 20 * 60

BENCH = "a benchmark: it needs a release build and a quiet machine (BENCHMARKS.md)"
FUZZ = "fuzzing runs for minutes to hours under cargo-fuzz (fuzz/README.md)"
PYPI = ("installs the published package; scripts/python-tests.sh (run by CI) installs the "
        "wheel built here the same way, extras included")
WHEEL = ("the wheel and examples/pytest: scripts/python-tests.sh (run by CI) builds the wheel "
         "and runs examples/pytest with it, with two xdist workers too")
SKIP = {
    "scripts/test-deps.sh && cargo test": "what CI runs before this script",
    "bench/run.sh": BENCH,
    "bench/run.sh --quick": BENCH,
    "bench/run.sh --only ready,exit --reps 3 --managers ours,original": BENCH,
    "PYMANAGER_ORIGINAL=/path/to/venv/bin/pymanager bench/run.sh --reps 5": BENCH,
    "bench/run.sh --reps 5 --only footprint": BENCH,
    "bench/run.sh --reps 5 --only footprint,spawn,rest,exit --managers ours": BENCH,
    "bench/run.sh --reps 5 --only waiting --managers ours": BENCH,
    "bench/run.sh --only scale,rest --reps 5 --managers ours": BENCH,
    "PYMANAGER_BIN=<this build> bench/run.py --only scale --reps 7 --managers ours "
    "--vs <before> [--scale-child static]": BENCH,
    "bench/.venv/bin/python bench/run.py --combine bench/results/<first> "
    "bench/results/<second> bench/results/<third>": BENCH,
    "cargo bench -p pymanager --bench runtime": BENCH,
    "PYMANAGER_BENCH_PYTHON_WASM=examples/python-verifier/verifier.wasm "
    "cargo bench -p pymanager --bench runtime": BENCH,
    "PYMANAGER_BENCH_PYTHON_WASM=examples/js-verifier/verifier.wasm "
    "cargo bench -p pymanager --bench runtime": BENCH,
    "pymanager verify --module mine.wasm --verifier DbReady --allow-host 127.0.0.1:5432 "
    "--args '{}'": "mine.wasm and DbReady stand for a module of the reader's; the same flags "
    "run below with the examples' modules",
    "pymanager verify exited --pid 4242 --args '{\"expect_code\": 0}'": "4242 stands for a "
    "process of the reader's",
    "cargo install cargo-fuzz --locked": FUZZ,
    "cd fuzz": FUZZ,
    "export RUSTC_BOOTSTRAP=1": FUZZ,
    "mkdir -p corpus/config && cp seeds/config/* corpus/config/": FUZZ,
    "cargo +stable fuzz run -s none config corpus/config -- -dict=config.dict "
    "-max_total_time=600": FUZZ,
    "cargo +stable fuzz run -s none config_structured -- -max_total_time=600": FUZZ,
    "cargo +stable fuzz run -s none rest -- -max_total_time=600": FUZZ,
    "cargo build -p pymanager": FUZZ,
    "python3 fuzz/http_fuzz.py --seconds 300 --seed 1": FUZZ,
    "maturin build --release --out target/wheels-release": BENCH,
    "bench/vs.sh cc555e4": BENCH,
    "bench/vs.sh /path/to/old/pymanager --only rest,scale --reps 5": BENCH,
    "bench/rest_ir.py /path/to/old/pymanager target/release/pymanager": BENCH,
    "python3 -m venv /tmp/v && time /tmp/v/bin/pip install -q --no-index --no-deps "
    "target/wheels-release/*.whl": BENCH,
    "pip install pymanager-rs": PYPI,
    "pipx install pymanager-rs": PYPI,
    "pip install \"pymanager-rs[python]\"": PYPI,
    "pip install pymanager-rs pytest pytest-xdist": PYPI,
    "pip install -r python/requirements-build.txt": WHEEL,
    "maturin build --release --compatibility manylinux_2_34 --auditwheel check": WHEEL,
    "cd examples/pytest && pytest": WHEEL,
    "pytest": WHEEL,
    "pytest -n 2": WHEEL,
}


def normal(cmd):
    """A command with its white space collapsed: how the docs and this script match."""
    return " ".join(cmd.split())


def doc_commands():
    """(doc, command) for every command of every ```sh block, continuation lines joined
    and trailing comments dropped."""
    found = []
    docs = sorted({p for g in DOC_GLOBS for p in CHECKOUT.glob(g)})
    for path in docs:
        if any(part in ("target", "node_modules", ".venv") for part in path.parts):
            continue
        doc = str(path.relative_to(CHECKOUT))
        text = path.read_text()
        for block in re.findall(r"^ *```(?:sh|bash|shell)\n(.*?)^ *```", text, re.S | re.M):
            pending = ""
            for line in block.splitlines():
                line = line.strip()
                if pending:
                    line = pending + " " + line
                    pending = ""
                if line.endswith("\\"):
                    pending = line[:-1]
                    continue
                line = re.sub(r"\s+#\s.*$", "", line)
                if line and not line.startswith("#"):
                    found.append((doc, normal(line)))
    return found


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Failed(Exception):
    """A command did not do what the docs say."""


class Env:
    """The directory outside the checkout the commands run in, `pymanager` on PATH, and
    every process started here (each in a session of its own, all stopped at the end)."""

    def __init__(self, binary, work):
        self.work = work
        bindir = work / "bin"
        bindir.mkdir()
        (bindir / "pymanager").symlink_to(binary)
        self.env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}", NO_COLOR="1")
        self.env.pop("PYMANAGER_TOKEN", None)
        self.started = []

    def run(self, cmd, expect=0, cwd=None, contains=None, timeout=WAIT):
        """Runs `cmd` with bash; its output, once it exited with `expect`. The output goes
        to a file, not a pipe: a daemon keeps its caller's stdout open (as the original
        did), and the command is over when it exits, not when its stdout closes."""
        with tempfile.TemporaryFile("w+") as out:
            p = subprocess.run(
                ["bash", "-c", cmd],
                cwd=cwd or self.work,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
            )
            out.seek(0)
            text = out.read()
        if text.strip():
            print(textwrap.indent(text.rstrip(), "      | "), flush=True)
        if p.returncode != expect:
            raise Failed(f"`{cmd}` exited {p.returncode}, expected {expect}")
        if contains and contains not in text:
            raise Failed(f"`{cmd}` did not print {contains!r}")
        return text

    def start(self, cmd, cwd=None):
        """Starts `cmd` in the background; its output goes to a file beside the work."""
        log = open(self.work / f"bg-{len(self.started)}.log", "w+")
        p = subprocess.Popen(
            ["bash", "-c", f"exec {cmd}"],
            cwd=cwd or self.work,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        p.log = log
        self.started.append(p)
        return p

    @staticmethod
    def output(p):
        p.log.flush()
        p.log.seek(0)
        return p.log.read()

    def wait_output(self, p, needle):
        """Waits until `p` printed `needle`; fails if it exits first."""
        end = time.monotonic() + WAIT
        while needle not in self.output(p):
            if p.poll() is not None or time.monotonic() > end:
                raise Failed(f"never printed {needle!r}:\n{self.output(p)}")
            time.sleep(0.05)

    def interrupt(self, p, expect=0):
        """Ctrl-C: SIGINT to `p`, which must exit with `expect`."""
        p.send_signal(signal.SIGINT)
        try:
            code = p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            raise Failed(f"did not stop on SIGINT:\n{self.output(p)}")
        if code != expect:
            raise Failed(f"exited {code} on SIGINT, expected {expect}:\n{self.output(p)}")

    def stop_all(self):
        for p in self.started:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def service_config():
    """A config for the docs' `env.json` and `pymanager.json`: one web server on a port
    picked at start-up (so that copies of it run at once, as docs/ci.md does), verified."""
    return {
        "http": {"enabled": True, "port": 0},
        "processes": {
            "web": {
                "executable": "python3",
                "arguments": ["-u", "-m", "http.server", "${ports.web.http}", "--bind",
                              "127.0.0.1"],
                "ports": {"http": 0},
                "verifier": {
                    "type": "http",
                    "arguments": {"url": "http://127.0.0.1:${ports.web.http}/", "interval": 0.1},
                },
            }
        },
    }


# What `pytest -x tests/` and `make test` stand for: tests that reach the service through
# the address `pymanager run` gives them.
TESTS = ("python3 -c 'import os, urllib.request; urllib.request.urlopen("
         "\"http://127.0.0.1:%s/\" % os.environ[\"PYMANAGER_PORT_WEB_HTTP\"])'")


def ex(cmd):
    """`cmd` with the checkout's path before `examples/`, to run it from elsewhere."""
    return re.sub(r"(^|\s)examples/", rf"\g<1>{CHECKOUT}/examples/", cmd)


def runners(e, dry=False):
    """What each command the docs show is run as, keyed by the command as written; `dry`:
    only the keys matter (nothing is started)."""
    w = e.work
    cfg = lambda name: (w / name).write_text(json.dumps(service_config()))
    cfg("env.json")
    cfg("pymanager.json")
    www = w / "www"
    www.mkdir()
    (www / "health").write_text("ok\n")
    port = free_port()
    if not dry:
        e.start(f"python3 -m http.server {port} --bind 127.0.0.1 --directory {www}")
        # The server answers once it listens.
        e.run(f"for i in $(seq 200); do python3 -c 'import urllib.request as u; "
              f"u.urlopen(\"http://127.0.0.1:{port}/health\")' 2>/dev/null && exit 0; "
              f"sleep 0.1; done; exit 1")

    def seed_example():
        e.run("rustup target add wasm32-wasip2")
        # `cargo run --release --` is this binary, built by CI in debug.
        p = e.start("pymanager -f examples/pymanager.json", cwd=CHECKOUT)
        e.run(f"pymanager ctl -f {CHECKOUT}/examples/pymanager.json wait --timeout 600")
        e.interrupt(p)

    def foreground():
        p = e.start("pymanager")
        e.run("pymanager ctl wait --timeout 600")
        e.interrupt(p)

    def daemon_env():
        e.run("pymanager -f env.json -d")
        e.run("pymanager ctl -f env.json wait --timeout 60")
        e.run("pymanager ctl -f env.json stop")
        gone("-f env.json")

    def gone(config=""):
        """Waits until the manager of `config` no longer answers (`ctl` exits 2)."""
        e.run(f"until pymanager ctl {config} status >/dev/null 2>&1; [ $? -eq 2 ]; do "
              "sleep 0.1; done", timeout=120)

    def ctl_session():
        # `run-tests` stands for the reader's tests.
        e.run("pymanager -d && pymanager ctl status; pymanager ctl stop",
              contains="running (1 of 1 processes running)")
        gone()
        e.run("pymanager -d")
        e.run("pymanager ctl list", contains="web")
        e.run("pymanager ctl restart web")
        follow = e.start("pymanager ctl logs web -n 50 -f")
        e.wait_output(follow, "Serving HTTP")
        e.run("pymanager ctl stop")
        if follow.wait(timeout=60) != 0:
            raise Failed(f"`ctl logs -f` did not end with the manager:\n{e.output(follow)}")
        gone()

    def verify_log():
        (w / "app.log").write_text("starting\nlistening on 127.0.0.1:8080\n")
        e.run(f"pymanager verify output --log {w}/app.log "
              "--args '{\"pattern\": \"^listening on\"}'")

    def example(name, port, verifier):
        """An example's README: build from anywhere, run its config from anywhere, and
        verify its server with the module from the command line meanwhile."""
        def run():
            e.run(ex(f"examples/{name}/build.sh"))
            p = e.start(ex(f"pymanager -v -f examples/{name}/pymanager.json"))
            e.wait_output(p, "[INFO] all processes are running")
            e.run(ex(
                f"pymanager verify --module examples/{name}/verifier.wasm --verifier {verifier} "
                f"--allow-host 127.0.0.1:{port} --args '{{\"url\": \"http://127.0.0.1:{port}/health\", "
                f"\"field\": \"status\", \"equals\": \"ok\"}}'"))
            e.interrupt(p)
        return run

    def moving_on():
        """docs/moving-on.md's block, in its order: each export, then each import of what
        the exports wrote (`/etc/systemd/system` becomes a directory of the work's)."""
        d = w / "moving"
        d.mkdir()
        (d / "env.json").write_text((w / "env.json").read_text())
        (d / "systemd").mkdir()
        for cmd in [
            "pymanager export compose -f env.json --image registry.example/env:1 -o docker-compose.yml",
            "pymanager export k8s -f env.json --image registry.example/env:1 --namespace ci -o env.yaml",
            "pymanager export systemd -f env.json --unit-prefix env- -o systemd",
            "pymanager export process-compose -f env.json -o process-compose.yaml",
            "pymanager export procfile -f env.json -o Procfile",
            "pymanager import procfile Procfile > pymanager.json",
            "pymanager check -f pymanager.json",
            "pymanager import process-compose process-compose.yaml > pymanager.json",
            "pymanager check -f pymanager.json",
        ]:
            e.run(cmd, cwd=d)

    def readme_export():
        d = w / "readme-export"
        d.mkdir()
        (d / "pymanager.json").write_text((w / "pymanager.json").read_text())
        e.run("pymanager export compose --image registry.example/env:1 -o docker-compose.yml",
              cwd=d)
        e.run("pymanager export process-compose -o process-compose.yaml", cwd=d)
        e.run("pymanager import process-compose process-compose.yaml > pymanager.json", cwd=d)
        e.run("pymanager check", cwd=d)

    def ci_plain():
        """docs/ci.md's plain shell: the tests' exit code is run's (0, and 3 for tests that
        fail with 3)."""
        e.run(f'pymanager run -- {TESTS}\necho "exit: $?"', contains="exit: 0")
        e.run('pymanager run -- sh -c "exit 3"\necho "exit: $?"', contains="exit: 3")

    def ci_copies():
        e.run(f"pymanager run -- {TESTS} & a=$!\npymanager run -- {TESTS} & b=$!\n"
              "wait $a && wait $b")

    def sdk_module():
        e.run("rustup target add wasm32-wasip2")
        build_sdk_example(e)

    py = example("python-verifier", 8765, "JsonFieldVerifier")
    js = example("js-verifier", 8766, "JsonField")
    run = lambda cmd, **kw: (lambda: e.run(cmd, **kw))
    return {
        "rustup target add wasm32-wasip2 && cargo run --release -- -f examples/pymanager.json":
            seed_example,
        "pymanager": foreground,
        "pymanager -f env.json -d": daemon_env,
        "pymanager ctl -f env.json wait --timeout 60": daemon_env,
        "pymanager -d && run-tests; pymanager ctl stop": ctl_session,
        "pymanager ctl list": ctl_session,
        "pymanager ctl restart web": ctl_session,
        "pymanager ctl logs web -n 50 -f": ctl_session,
        "pymanager ctl stop": ctl_session,
        "pymanager check -f env.json": run("pymanager check -f env.json"),
        "pymanager prepare -f env.json": run("pymanager prepare -f env.json"),
        "pymanager verify http --args '{\"url\": \"http://127.0.0.1:8080/\"}'":
            run(f"pymanager verify http --args '{{\"url\": \"http://127.0.0.1:{port}/\"}}'"),
        "pymanager verify http --args '{\"url\": \"http://127.0.0.1:8080/health\", "
        "\"timeout\": 5}'":
            run(f"pymanager verify http --args '{{\"url\": \"http://127.0.0.1:{port}/health\", "
                f"\"timeout\": 5}}'"),
        "pymanager verify tcp --args @probe.json":
            lambda: ((w / "probe.json").write_text(json.dumps({"port": port})),
                     e.run("pymanager verify tcp --args @probe.json")),
        "pymanager verify output --log /var/log/app.log --args '{\"pattern\": \"^listening on\"}'":
            verify_log,
        "time examples/python-verifier/build.sh; time examples/js-verifier/build.sh":
            run(ex("time examples/python-verifier/build.sh; time examples/js-verifier/build.sh")),
        "examples/python-verifier/build.sh": py,
        "pymanager -f examples/python-verifier/pymanager.json": py,
        "pymanager verify --module examples/python-verifier/verifier.wasm --verifier "
        "JsonFieldVerifier --allow-host 127.0.0.1:8765 --args '{\"url\": "
        "\"http://127.0.0.1:8765/health\", \"field\": \"status\", \"equals\": \"ok\"}'": py,
        "examples/js-verifier/build.sh": js,
        "pymanager -f examples/js-verifier/pymanager.json": js,
        "pymanager verify --module examples/js-verifier/verifier.wasm --verifier JsonField "
        "--allow-host 127.0.0.1:8766 --args '{\"url\": \"http://127.0.0.1:8766/health\", "
        "\"field\": \"status\", \"equals\": \"ok\"}'": js,
        "rustup target add wasm32-wasip2": sdk_module,
        "pymanager run -- pytest -x tests/": ci_plain,
        "echo \"exit: $?\"": ci_plain,
        "pymanager run -- make test": run(f"pymanager run -- {TESTS}"),
        "pymanager run --timeout 120 --abort-on-exit -- pytest -x tests/":
            run(f"pymanager run --timeout 120 --abort-on-exit -- {TESTS}"),
        "pymanager run -- pytest -x tests/unit &": ci_copies,
        "pymanager run -- pytest -x tests/integration &": ci_copies,
        "wait": ci_copies,
        "pymanager export compose --image registry.example/env:1 -o docker-compose.yml":
            readme_export,
        "pymanager import process-compose process-compose.yaml > pymanager.json":
            readme_export,
        "pymanager export compose -f env.json --image registry.example/env:1 -o "
        "docker-compose.yml": moving_on,
        "pymanager export k8s -f env.json --image registry.example/env:1 --namespace ci "
        "-o env.yaml": moving_on,
        "pymanager export systemd -f env.json --unit-prefix env- -o /etc/systemd/system":
            moving_on,
        "pymanager export process-compose -f env.json -o process-compose.yaml": moving_on,
        "pymanager export procfile -f env.json -o Procfile": moving_on,
        "pymanager import procfile Procfile > pymanager.json": moving_on,
        # pg_isready stands for the reader's own check.
        "pymanager verify exec --args '{\"command\": [\"pg_isready\", \"-q\"], \"timeout\": 5}'":
            run("pymanager verify exec --args '{\"command\": [\"true\"], \"timeout\": 5}'"),
        "uptime": run("uptime"),
    }


def build_sdk_example(e):
    """guest-sdk/README.md's module, built as the README says: a crate outside the checkout
    with its Cargo.toml lines, `cargo build --target wasm32-wasip2 --release`, and its
    `pymanager.json` lines around the result, checked by `pymanager check`."""
    readme = (CHECKOUT / "guest-sdk/README.md").read_text()
    toml = re.search(r"```toml\n(.*?)```", readme, re.S).group(1)
    code = re.search(r"```rust\n(.*?)```", readme, re.S).group(1)
    modules = re.search(r"```json\n(.*?)```", readme, re.S).group(1)
    crate = e.work / "mine"
    (crate / "src").mkdir(parents=True)
    toml = toml.replace('path = "../pymanager/guest-sdk"', f'path = "{CHECKOUT}/guest-sdk"')
    (crate / "Cargo.toml").write_text(
        '[package]\nname = "mine"\nversion = "0.1.0"\nedition = "2024"\n\n'
        + toml + "\n[workspace]\n")
    (crate / "src/lib.rs").write_text(code)
    env = {k: v for k, v in e.env.items()
           if not (k.startswith("CARGO_") and k != "CARGO_HOME") and "RUSTFLAGS" not in k}
    saved, e.env = e.env, env
    try:
        e.run("cargo build --target wasm32-wasip2 --release", cwd=crate)
    finally:
        e.env = saved
    wasm = crate / "target/wasm32-wasip2/release/mine.wasm"
    print(f"      guest-sdk/README.md's module: {wasm.stat().st_size / 1024:.0f} KiB")
    # `"executable": "..."` stands for the reader's program.
    modules = modules.replace('"executable": "..."', '"executable": "true"')
    (crate / "pymanager.json").write_text("{" + modules + "}")
    e.run("pymanager check -f mine/pymanager.json")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=str(CHECKOUT / "target/debug/pymanager"),
                    help="the pymanager binary (default: target/debug/pymanager)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--only", metavar="TEXT",
                    help="run only the commands (and their pages) that contain TEXT")
    ap.add_argument("--check", action="store_true",
                    help="run nothing: only fail on a command neither run nor skipped")
    args = ap.parse_args()
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            known = set(SKIP) | set(runners(Env(Path(sys.executable), Path(tmp)), dry=True))
        unknown = [(d, c) for d, c in doc_commands() if c not in known]
        for doc, cmd in unknown:
            print(f"{doc}: `{cmd}` is neither run nor skipped by scripts/doc-commands.py: "
                  "add it to one of them")
        sys.exit(1 if unknown else 0)
    binary = Path(args.bin).resolve()
    if not binary.exists():
        sys.exit(f"{binary} does not exist: run `cargo build` first (or give --bin)")

    work = Path(tempfile.mkdtemp(prefix="pymanager-doc-commands-"))
    e = Env(binary, work)
    failures, unknown, done = [], [], {}
    try:
        table = runners(e)
        for doc, cmd in doc_commands():
            if args.only and args.only not in f"{doc}: {cmd}":
                continue
            if cmd in SKIP:
                print(f"skip  {doc}: {cmd}\n      ({SKIP[cmd]})")
                continue
            runner = table.get(cmd)
            if runner is None:
                unknown.append((doc, cmd))
                continue
            if id(runner) in done:
                print(f"{done[id(runner)]}  {doc}: {cmd} (with the above)")
                continue
            print(f"run   {doc}: {cmd}", flush=True)
            try:
                runner()
                done[id(runner)] = "ok  "
                print("      ok", flush=True)
            except (Failed, subprocess.TimeoutExpired) as err:
                done[id(runner)] = "FAIL"
                failures.append((doc, cmd, str(err)))
                print(f"FAIL  {err}")
    finally:
        e.stop_all()
        if args.keep:
            print(f"work directory kept: {work}")
        else:
            subprocess.run(["rm", "-rf", str(work)])
    for doc, cmd in unknown:
        print(f"{doc}: `{cmd}` is neither run nor skipped by scripts/doc-commands.py: "
              "add it to one of them")
    for doc, cmd, err in failures:
        print(f"{doc}: `{cmd}` failed: {err.splitlines()[0]}")
    if failures or unknown:
        sys.exit(1)
    print("every command the docs show ran as they say (or is skipped above, with why)")


if __name__ == "__main__":
    main()

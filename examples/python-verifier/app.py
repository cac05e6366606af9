"""A pymanager verifier written in Python, compiled to a WebAssembly component with
componentize-py (see build.sh). It provides one verifier:

JsonFieldVerifier -- GETs `url` until its JSON body has `field` equal to `equals`.
    url      (required) an http:// URL
    field    (required) a key of the top-level JSON object, e.g. "status"
    equals   (required) the value it must have, e.g. "ok"
    timeout  seconds, default 30
    interval seconds, default 1

Like the built-in verifiers it gives up as soon as the process has ended, and when
pymanager shuts down. Everything it reaches goes through the `host` interface (wit/).
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import host, types

NAME = "JsonFieldVerifier"
DEFAULTS = {"timeout": 30, "interval": 1}
REQUIRED = ("url", "field", "equals")


def parse(args: str) -> dict:
    try:
        a = json.loads(args or "{}")
    except ValueError as e:
        raise Err(f"arguments are not valid JSON: {e}")
    if not isinstance(a, dict):
        raise Err("arguments: expected an object")
    for key in a:
        if key not in REQUIRED and key not in DEFAULTS:
            raise Err(f"{key}: unknown argument (expected one of {', '.join(REQUIRED + tuple(DEFAULTS))})")
    for key in REQUIRED:
        if key not in a:
            raise Err(f"{key}: missing field")
    for key in ("url", "field"):
        if not isinstance(a[key], str):
            raise Err(f"{key}: expected a string")
    for key, default in DEFAULTS.items():
        a.setdefault(key, default)
        if isinstance(a[key], bool) or not isinstance(a[key], (int, float)) or a[key] < 0:
            raise Err(f"{key}: expected a number of seconds, 0 or more")
    if not a["url"].startswith("http://"):
        raise Err("url: expected an http:// URL")
    return a


def ended(state) -> str | None:
    if isinstance(state, types.ProcState_Exited):
        return f"exited with code {state.value}"
    if isinstance(state, types.ProcState_Signaled):
        return f"killed by signal {state.value}"
    return None


def attempt(a: dict, timeout_ms: int) -> str | None:
    """None when the field has the value, else why not."""
    request = types.Request("GET", a["url"], [("accept", "application/json")], b"", timeout_ms)
    try:
        response = host.http_request(request)
    except Err as e:
        return e.value
    if response.status != 200:
        return f"{a['url']} answered {response.status}"
    try:
        body = json.loads(bytes(response.body))
    except ValueError:
        return f"{a['url']} did not answer JSON"
    got = body.get(a["field"]) if isinstance(body, dict) else None
    if got == a["equals"]:
        return None
    return f"{a['field']} is {json.dumps(got)}, expected {json.dumps(a['equals'])}"


class Verifier(exports.Verifier):
    def names(self) -> list[str]:
        return [NAME]

    def validate(self, name: str, args: str) -> None:
        if name != NAME:
            raise Err(f"this module has no verifier '{name}' (it provides: {NAME})")
        parse(args)

    def verify(self, name: str, args: str) -> None:
        a = parse(args)
        timeout_ms = int(a["timeout"] * 1000)
        while True:
            left = max(timeout_ms - host.elapsed_ms(), 100)
            why = attempt(a, min(left, 5000))
            if why is None:
                return
            host.log(types.Level.DEBUG, why)
            state = ended(host.process_state())
            if state:
                raise Err(f"process {state} before {a['field']} was {json.dumps(a['equals'])} (last attempt: {why})")
            if host.elapsed_ms() >= timeout_ms:
                raise Err(f"{why} (gave up after {a['timeout']} s)")
            if not host.sleep(int(a["interval"] * 1000)):
                raise Err(f"{why} (pymanager is shutting down)")

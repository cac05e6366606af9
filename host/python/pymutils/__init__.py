"""The original pymanager's verifier API, inside pymanager's WebAssembly sandbox.

pymanager builds a Python verifier module written for the original tool into a component
with this package bundled: `Verifier`, `proc.wait`, `proc.code`, `proc.pid`, `log_fail`,
`log_verbose`, `requests.get` and `time.sleep` behave as they did, but every one of them
goes through pymanager's host interface, to what the module is granted, and nothing else.
"""

from . import _host
from .verifier import Verifier
from .exited_verifier import ExitedVerifier
from .http_verifier import HttpOkVerifier

_host.install()

__all__ = ["exited_verifier", "http_verifier", "verifier", "Verifier", "ExitedVerifier", "HttpOkVerifier"]

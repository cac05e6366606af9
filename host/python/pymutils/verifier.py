"""The base class of every verifier: subclass it and implement `run(self, proc)`."""

from . import _host


class Verifier:
    """A verifier: `run(proc)` returns True when the process reached its state.

    `log_fail` lines are shown under the `verifier.fail` message setting, `log_verbose`
    lines under `verifier.verbose`. The last `log_fail` message is the reason pymanager
    reports when `run` returns False.
    """

    def run(self, proc):
        return True

    def log_fail(self, message):
        self._pymanager_last_fail = str(message)
        _host.log(_host.WARN, message)

    def log_verbose(self, message):
        _host.log(_host.INFO, message)

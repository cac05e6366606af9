"""`ExitedVerifier`: passes when the process exits with `expect_code` within `timeout` s."""

import subprocess

from .verifier import Verifier


class ExitedVerifier(Verifier):
    def __init__(self, **kwargs):
        self.timeout = kwargs.get("timeout", 30)
        self.expect_code = kwargs.get("expect_code", 0)

    def run(self, proc):
        try:
            code = proc.wait(self.timeout)
        except subprocess.TimeoutExpired:
            self.log_fail("Process did not exit in given timeframe {0}s".format(self.timeout))
            return False
        if code != self.expect_code:
            self.log_fail("Expected exit code {0}, got {1}".format(self.expect_code, code))
        return code == self.expect_code

"""The process a verifier looks at: the original's `Process` methods that observe it.

Methods that would act on it (`signal`, `terminate`, `kill`, `write`) are not available
in the sandbox: a verifier observes, pymanager acts.
"""

import subprocess

from wit_world.imports import host, types


class UninitializedException(Exception):
    def __init__(self, process):
        self.commandLine = process.commandLine

    def __str__(self):
        return "Process is not initialized.\nCommand line for process: {0}".format(self.commandLine)


class TerminatedException(Exception):
    def __init__(self, process):
        self.commandLine = process.commandLine
        self.code = process.poll()

    def __str__(self):
        return "Process is terminated.\nCommand line for process: {0}\nExit code: {1}".format(
            self.commandLine, self.code
        )


def _code(state):
    """The original's return code: the exit code, or minus the signal; None while running."""
    if isinstance(state, types.ProcState_Exited):
        return state.value
    if isinstance(state, types.ProcState_Signaled):
        return -state.value
    return None


class _Pid(int):
    """The pid, usable both as `proc.pid` and as the original's `proc.pid()`."""

    def __call__(self):
        return int(self)


class Process:
    """The supervised process, as the original's verifiers saw it."""

    def __init__(self, command=""):
        self.commandLine = command
        self.cmdString = command
        self.internalId = 0

    @property
    def pid(self):
        state = host.process_state()
        if isinstance(state, types.ProcState_Running):
            return _Pid(state.value)
        if _code(state) is not None:
            raise TerminatedException(self)
        raise UninitializedException(self)

    def poll(self):
        return _code(host.process_state())

    def wait(self, timeout=None):
        """The exit code once the process ends; `subprocess.TimeoutExpired` after `timeout` s."""
        code = self.poll()
        if code is not None:
            return code
        ms = 2**32 - 1 if timeout is None else max(0, min(int(float(timeout) * 1000), 2**32 - 1))
        while True:
            state = host.wait_exit(ms)
            if state is not None:
                return _code(state)
            if timeout is not None:
                raise subprocess.TimeoutExpired(self.cmdString, timeout)

    def code(self, blocking=True, timeout=None):
        code = self.poll()
        if code is None and blocking:
            try:
                return self.wait(timeout)
            except subprocess.TimeoutExpired:
                return None
        return code

    def status_string(self):
        return "running" if self.poll() is None else "terminated"

    def get_data(self):
        data = {"id": self.internalId, "command": self.cmdString, "status": self.status_string()}
        if data["status"] == "running":
            data["pid"] = int(self.pid)
        else:
            data["code"] = self.poll()
        return data

    def _refused(self, *args, **kwargs):
        raise PermissionError(
            "a verifier cannot act on its process in pymanager's sandbox (signal, terminate, "
            "kill and write are not available; it observes, pymanager acts)"
        )

    signal = terminate = kill = force_terminate = write = restart = _refused

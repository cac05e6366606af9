"""The exceptions of ``pymanager_rs``: one base class, and the start-up failure."""

from __future__ import annotations

from typing import Optional


class PymanagerError(Exception):
    """Something the manager refused or could not do; the message says what and why.

    ``status`` is the HTTP status of the API's answer when there was one (404: no such
    process, 409: another command on that process is under way, 500: it did not come up).
    """

    def __init__(self, message: str, *, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.status = status


class StartupError(PymanagerError):
    """The environment could not be started. Its message is the manager's failure report:
    the process that failed, why, its last output lines and who waited on it.

    ``returncode`` is the ``pymanager`` command's exit code (5: a process could not be set up
    or verified; 1-4: the config could not be read, as the CLI documents), or ``None`` when
    the start-up was cut short here (time-out, interrupt).
    """

    def __init__(self, report: str, *, config: str, returncode: Optional[int]) -> None:
        super().__init__(report)
        self.report = report
        self.config = config
        self.returncode = returncode

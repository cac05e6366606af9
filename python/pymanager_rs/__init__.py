"""pymanager for Python: the ``pymanager`` binary (installed beside this package), an API
to start a ``pymanager.json`` environment from Python and drive it, and a pytest plugin
(``pymanager_rs.pytest_plugin``, loaded by pytest on its own).

::

    from pymanager_rs import Environment

    with Environment("pymanager.json") as env:
        url = env.url("web")          # http://127.0.0.1:<its port>/
        print(env.logs("web", lines=20))

Standard library only; the manager is the binary, reached over its REST API.
"""

from ._binary import find_pymanager_bin
from ._environment import Environment, Process, PymanagerWarning, Status
from ._errors import PymanagerError, StartupError

__all__ = [
    "Environment",
    "Process",
    "PymanagerError",
    "PymanagerWarning",
    "StartupError",
    "Status",
    "find_pymanager_bin",
]

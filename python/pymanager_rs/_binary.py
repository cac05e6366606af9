"""Finding the ``pymanager`` binary that was installed with this package.

The wheel puts the binary in the installation's scripts directory (``bin/`` of a venv, of
``--user``, or of a ``pip install --target`` folder), beside this package's site-packages.
It is looked up there, not on ``PATH``: another ``pymanager`` on ``PATH`` (the original
Python tool installs a command of the same name) must not be picked up by mistake.
"""

from __future__ import annotations

import os
import sys
import sysconfig

#: Names the binary to use instead of the installed one (a development build, say).
BINARY_ENV = "PYMANAGER_BIN"

_EXE = "pymanager" + (sysconfig.get_config_var("EXE") or "")


def find_pymanager_bin() -> str:
    """The path of the ``pymanager`` binary installed with this package.

    ``PYMANAGER_BIN`` in the environment wins; then the scripts directory of the
    installation this package was loaded from, of the running interpreter, and of the
    user scheme; then ``bin/`` beside the package's root (``pip install --target``).
    Raises :class:`FileNotFoundError` naming every place looked at.
    """
    explicit = os.environ.get(BINARY_ENV)
    if explicit:
        if os.path.isfile(explicit) and os.access(explicit, os.X_OK):
            return explicit
        raise FileNotFoundError(
            f"{BINARY_ENV}={explicit} is not an executable file: point it at a pymanager "
            f"binary, or unset it to use the installed one"
        )
    looked = []
    for directory in _candidate_dirs():
        path = os.path.join(directory, _EXE)
        if path in looked:
            continue
        looked.append(path)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise FileNotFoundError(
        "the pymanager binary is not installed beside the pymanager_rs package (looked at "
        + ", ".join(looked)
        + "): reinstall it with 'pip install --force-reinstall pymanager-rs', or name a "
        f"binary in {BINARY_ENV}"
    )


def _candidate_dirs() -> list[str]:
    """Where an installation's scripts may be, most specific first."""
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    dirs = [sysconfig.get_path("scripts")]
    user_scheme = _user_scheme()
    if user_scheme is not None:
        dirs.append(sysconfig.get_path("scripts", scheme=user_scheme))
    # An installation's prefix, when the package is imported from <prefix>/lib/pythonX.Y/
    # site-packages by another interpreter (PYTHONPATH, `pip install --prefix`).
    lib, site = os.path.split(package_root)
    if site in ("site-packages", "dist-packages"):
        dirs.append(os.path.join(os.path.dirname(os.path.dirname(lib)), "bin"))
    # `pip install --target DIR` puts the package in DIR and the binary in DIR/bin.
    dirs.append(os.path.join(package_root, "bin"))
    # The interpreter's own directory (a venv's python is in its bin/).
    dirs.append(os.path.dirname(sys.executable))
    return dirs


def _user_scheme() -> str | None:
    if sys.version_info >= (3, 10):
        return sysconfig.get_preferred_scheme("user")
    if os.name == "nt":  # pragma: no cover - Linux only
        return "nt_user"
    return "posix_user"

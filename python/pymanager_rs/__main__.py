"""``python -m pymanager_rs ARGS`` runs the installed ``pymanager`` binary with ARGS, for
an environment whose scripts directory is not on ``PATH``."""

import os
import sys

from ._binary import find_pymanager_bin


def main() -> None:
    """Replaces this process with the binary."""
    try:
        binary = find_pymanager_bin()
    except FileNotFoundError as e:
        sys.exit(f"pymanager_rs: {e}")
    os.execv(binary, [binary, *sys.argv[1:]])


if __name__ == "__main__":
    main()

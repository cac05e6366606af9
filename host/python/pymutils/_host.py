"""pymanager's host calls, for the rest of the bundle."""

import time as _time

from wit_world.imports import host, types

from .global_storage import Globals

_real_sleep = _time.sleep


def sleep(seconds):
    """`time.sleep`, cut short (and `Globals.shutdown` set) when pymanager shuts down."""
    try:
        ms = max(0, int(float(seconds) * 1000))
    except (TypeError, ValueError):
        raise TypeError(f"sleep() argument must be a number, not {type(seconds).__name__}")
    if not host.sleep(min(ms, 2**32 - 1)):
        Globals.shutdown = True


def install():
    """Routes `time.sleep` through the host, before the verifier module is imported."""
    _time.sleep = sleep


def log(level, message):
    host.log(level, str(message))


WARN = types.Level.WARN
INFO = types.Level.INFO
DEBUG = types.Level.DEBUG

"""The component's `verifier` export for a verifier module written for the original
pymanager: its `Verifier` subclasses, found by name, constructed with the config's
arguments as keyword arguments, and `run` against the supervised process.

`pymanager_target.MODULE` (written by pymanager next to this file) names the module. It is
imported when the component is built, so its top-level code runs then, not per call.
"""

import importlib
import json
import sys

import pymutils  # installs the host's time.sleep before the module is imported
from componentize_py_types import Err
from pymutils.process import Process
from pymutils.verifier import Verifier as _Base
from wit_world import exports

import pymanager_target

_SANDBOX = (
    "pymanager's sandbox gives a verifier no files, no environment and no sockets of its "
    "own: reach services with requests.get (to the hosts in allow.hosts) and the process "
    "through proc"
)


def _load():
    module = importlib.import_module(pymanager_target.MODULE)
    # The original looked classes up on the top-level package (`__import__` returns it),
    # then people also wrote them in the module itself: accept both.
    top = sys.modules[pymanager_target.MODULE.split(".")[0]]
    found = {}
    for where in (module, top):
        for name, value in vars(where).items():
            if isinstance(value, type) and issubclass(value, _Base) and value is not _Base:
                found.setdefault(name, value)
    return found


_CLASSES = _load()


def _find(name):
    cls = _CLASSES.get(name)
    if cls is None:
        raise Err(
            "module {0} has no Verifier subclass {1} (it has: {2})".format(
                pymanager_target.MODULE, name, ", ".join(sorted(_CLASSES)) or "none"
            )
        )
    return cls


def _arguments(args):
    try:
        value = json.loads(args) if args and args.strip() else {}
    except ValueError as e:
        raise Err("arguments are not valid JSON: {0}".format(e))
    if not isinstance(value, dict):
        raise Err("arguments: expected an object")
    return value


def _describe(e):
    text = "{0}: {1}".format(type(e).__name__, e) if str(e) else type(e).__name__
    text = " ".join(text.split())
    if isinstance(e, OSError) and not isinstance(e, (ConnectionError, TimeoutError)):
        return "{0} ({1})".format(text, _SANDBOX)
    return text


def _construct(cls, args):
    try:
        return cls(**args)
    except Err:
        raise
    except Exception as e:
        raise Err("{0}({1}): {2}".format(cls.__name__, ", ".join(args), _describe(e)))


class Verifier(exports.Verifier):
    def names(self):
        return sorted(_CLASSES)

    def validate(self, name, args):
        _construct(_find(name), _arguments(args))

    def verify(self, name, args):
        verifier = _construct(_find(name), _arguments(args))
        try:
            passed = verifier.run(Process(name))
        except Err:
            raise
        except Exception as e:
            raise Err("{0}.run raised {1}".format(name, _describe(e)))
        if not passed:
            why = getattr(verifier, "_pymanager_last_fail", None)
            raise Err(why or "{0}.run returned {1!r}".format(name, passed))

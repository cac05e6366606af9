"""`requests`, as much of it as verifiers use, over pymanager's `http-request` host call.

Plain `http://` to the hosts granted to the module (`allow.hosts`); redirects are followed
by the host; a response body is cut at 1 MiB. A refused grant or an unreachable host
raises `requests.exceptions.ConnectionError` with the host's reason.
"""

import json as _json
from urllib.parse import urlencode

from componentize_py_types import Err
from wit_world.imports import host, types

from . import exceptions
from .exceptions import ConnectionError, HTTPError, RequestException, Timeout

__all__ = ["get", "head", "post", "put", "delete", "request", "Response", "exceptions"]


class Response:
    def __init__(self, url, status, headers, body):
        self.url = url
        self.status_code = status
        self.headers = _Headers(headers)
        self.content = bytes(body)
        self.encoding = "utf-8"

    @property
    def ok(self):
        return self.status_code < 400

    @property
    def text(self):
        return self.content.decode(self.encoding or "utf-8", errors="replace")

    def json(self, **kwargs):
        return _json.loads(self.content, **kwargs)

    def raise_for_status(self):
        if self.status_code >= 400:
            raise HTTPError("{0} for url: {1}".format(self.status_code, self.url), response=self)

    def __repr__(self):
        return "<Response [{0}]>".format(self.status_code)


class _Headers(dict):
    """Header names compare case-insensitively, as in `requests`."""

    def __init__(self, pairs):
        super().__init__((k.lower(), v) for k, v in pairs)

    def __getitem__(self, key):
        return super().__getitem__(key.lower())

    def get(self, key, default=None):
        return super().get(key.lower(), default)

    def __contains__(self, key):
        return super().__contains__(key.lower())


def _timeout_ms(timeout):
    if timeout is None:
        return 30_000
    if isinstance(timeout, tuple):
        timeout = sum(t for t in timeout if t is not None)
    return max(1, min(int(float(timeout) * 1000), 2**32 - 1))


def request(method, url, params=None, data=None, headers=None, json=None, timeout=None, **_ignored):
    if params:
        url = url + ("&" if "?" in url else "?") + urlencode(params, doseq=True)
    body = b""
    pairs = list((headers or {}).items())
    if json is not None:
        body = _json.dumps(json).encode()
        pairs.append(("content-type", "application/json"))
    elif isinstance(data, dict):
        body = urlencode(data, doseq=True).encode()
        pairs.append(("content-type", "application/x-www-form-urlencoded"))
    elif isinstance(data, str):
        body = data.encode()
    elif data is not None:
        body = bytes(data)
    req = types.Request(method.upper(), url, [(str(k), str(v)) for k, v in pairs], body, _timeout_ms(timeout))
    try:
        r = host.http_request(req)
    except Err as e:
        reason = str(e.value)
        if "no answer within" in reason:
            raise Timeout(reason)
        raise ConnectionError(reason)
    return Response(url, r.status, r.headers, r.body)


def get(url, params=None, **kwargs):
    return request("GET", url, params=params, **kwargs)


def head(url, **kwargs):
    return request("HEAD", url, **kwargs)


def post(url, data=None, json=None, **kwargs):
    return request("POST", url, data=data, json=json, **kwargs)


def put(url, data=None, **kwargs):
    return request("PUT", url, data=data, **kwargs)


def delete(url, **kwargs):
    return request("DELETE", url, **kwargs)

"""A small client of the manager's REST API (``/api/v1/``), on ``http.client`` alone.

No proxy is ever used (the API is on loopback, and ``HTTP_PROXY`` in a CI environment must
not reroute it), a connection is made per request (so that an ``Environment`` may be used
from several threads), and every error body the API sends (``{"success": false, "error":
{"message": ...}}``) becomes one :class:`PymanagerError` with that message.
"""

from __future__ import annotations

import http.client
import json
import urllib.parse
from typing import Any, Optional

from ._errors import PymanagerError


class ApiClient:
    """Requests to one manager's API at ``base_url`` (``http://127.0.0.1:PORT``)."""

    def __init__(self, base_url: str, token: Optional[str]) -> None:
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise PymanagerError(f"the manager's API address is not an http:// URL: {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._host = parts.hostname
        self._port = parts.port or 80
        self._token = token

    def get_json(self, path: str, timeout: Optional[float] = 60.0) -> Any:
        """The JSON answer of ``GET path``."""
        return json.loads(self.request("GET", path, timeout=timeout))

    def post_json(self, path: str, timeout: Optional[float] = None) -> Any:
        """The JSON answer of ``POST path`` (no body). Without a timeout: a restart or a
        start answers once the process is verified, which its verifier bounds."""
        return json.loads(self.request("POST", path, timeout=timeout))

    def get_text(self, path: str, timeout: Optional[float] = 60.0) -> str:
        """The text answer of ``GET path``."""
        return self.request("GET", path, timeout=timeout)

    def request(self, method: str, path: str, timeout: Optional[float]) -> str:
        """The body of a successful answer, as text; else a :class:`PymanagerError`."""
        headers = {"Accept": "application/json, text/plain"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        conn = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
        try:
            try:
                conn.request(method, path, headers=headers)
                response = conn.getresponse()
                body = response.read().decode("utf-8", "replace")
            except OSError as e:
                raise PymanagerError(
                    f"{method} {self.base_url}{path}: the manager does not answer ({e})"
                ) from e
        finally:
            conn.close()
        if 200 <= response.status < 300:
            return body
        raise PymanagerError(
            f"{method} {path}: {response.status} {_error_message(body) or response.reason}",
            status=response.status,
        )


def quote(name: str) -> str:
    """A process name as one path segment."""
    return urllib.parse.quote(name, safe="")


def _error_message(body: str) -> Optional[str]:
    try:
        message = json.loads(body)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return body.strip() or None
    return str(message)

import http.client
import urllib.parse

import pytest


class Client:
    """A tiny HTTP client for one service (standard library only)."""

    def __init__(self, base_url):
        parts = urllib.parse.urlsplit(base_url)
        self.host, self.port = parts.hostname, parts.port

    def get(self, path):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read().decode()
        finally:
            conn.close()


@pytest.fixture
def api(pymanager_env):
    """A client of the api service of the test's environment: the session's (pymanager.json),
    or that of the test's module or class when it carries a pymanager mark."""
    return Client(pymanager_env.url("api"))

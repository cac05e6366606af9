"""`HttpOkVerifier`: passes when `url` answers 2xx within `timeout` s."""

import time

import requests
from requests import exceptions as reqexcept

from .global_storage import Globals
from .verifier import Verifier


class HttpOkVerifier(Verifier):
    def __init__(self, **kwargs):
        self.url = kwargs.get("url", "")
        self.timeout = kwargs.get("timeout", 30)
        self.interval = kwargs.get("interval", 1)
        self.headers = kwargs.get("headers", {})

    def run(self, proc):
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline and not Globals.shutdown:
            try:
                self.log_verbose("Attempting connection to {0}".format(self.url))
                resp = requests.get(self.url, headers=self.headers, timeout=self.interval)
                if 200 <= resp.status_code < 300:
                    return True
                self.log_fail("Got status {0} from server.".format(resp.status_code))
            except reqexcept.RequestException as e:
                self.log_fail("Connection error: {0}".format(e))
            if proc.poll() is not None:
                return False
            time.sleep(self.interval)
        return False

"""A class that needs a fresh environment of its own: the mark starts one copy of the
config for the class (with its own ports), and stops it after the class's last test."""

import pytest


@pytest.mark.pymanager(config="../pymanager.json")
class TestFreshStore:
    def test_first_visit_in_a_fresh_store(self, api):
        assert api.get("/hello/ada") == (200, "Hello, ada (visit 1)")

    def test_a_stopped_store_fails_the_api_until_started_again(self, api, pymanager_env):
        pymanager_env.stop("store")
        assert api.get("/hello/ada") == (503, "the store is unavailable")
        pymanager_env.start("store")
        assert api.get("/hello/ada") == (200, "Hello, ada (visit 1)")

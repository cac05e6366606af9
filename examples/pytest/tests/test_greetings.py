"""Tests against the services of pymanager.json, started once for the session."""


def test_hello_counts_visits(api):
    assert api.get("/hello/ada") == (200, "Hello, ada (visit 1)")
    assert api.get("/hello/ada") == (200, "Hello, ada (visit 2)")


def test_each_service_has_its_own_port(pymanager_env):
    ports = {pymanager_env.port("store", "http"), pymanager_env.port("api", "http")}
    assert len(ports) == 2


def test_the_logs_of_a_service(api, pymanager_env):
    api.get("/hello/grace")
    assert "GET /hello/grace" in pymanager_env.logs("api", lines=20)


def test_a_restarted_store_has_forgotten_everything(api, pymanager_env):
    api.get("/hello/linus")
    process = pymanager_env.restart("store")
    assert process["lifecycle"] == "ready"
    assert api.get("/hello/linus") == (200, "Hello, linus (visit 1)")

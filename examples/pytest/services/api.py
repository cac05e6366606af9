"""The application under test: a greeting service that keeps visitors in the store.
GET /hello/<name> counts the visit in the store and answers "Hello, <name> (visit N)".
Listens on 127.0.0.1:$PORT; finds the store through PYMANAGER_PORT_STORE_HTTP, which
pymanager sets for the processes a process depends on."""

import http.client
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STORE_PORT = int(os.environ["PYMANAGER_PORT_STORE_HTTP"])


def store(method, key, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", STORE_PORT, timeout=10)
    try:
        conn.request(method, "/" + key, body=body)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            return self.answer(200, "ok")
        if not self.path.startswith("/hello/"):
            return self.answer(404, "try /hello/<name>")
        name = self.path[len("/hello/"):]
        try:
            status, body = store("GET", "visits-" + name)
            visits = int(body) + 1 if status == 200 else 1
            store("PUT", "visits-" + name, str(visits).encode())
        except OSError as e:
            print(f"api: the store is unavailable: {e}", flush=True)
            return self.answer(503, "the store is unavailable")
        self.answer(200, f"Hello, {name} (visit {visits})")

    def answer(self, status, text):
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        print("api:", fmt % args, flush=True)


if __name__ == "__main__":
    port = int(os.environ["PORT"])
    print(f"api listening on 127.0.0.1:{port}, store on port {STORE_PORT}", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()

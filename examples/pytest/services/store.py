"""A key-value store over HTTP, standing in for a database: PUT /<key> stores the body,
GET /<key> returns it (404 if unknown). Listens on 127.0.0.1:$PORT."""

import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DATA = {}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            return self.answer(200, b"ok")
        value = DATA.get(self.path)
        self.answer(200, value) if value is not None else self.answer(404, b"no such key")

    def do_PUT(self):
        DATA[self.path] = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.answer(204, b"")

    def answer(self, status, body):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        print("store:", fmt % args, flush=True)


if __name__ == "__main__":
    port = int(os.environ["PORT"])
    print(f"store listening on 127.0.0.1:{port}", flush=True)
    sys.stdout.flush()
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()

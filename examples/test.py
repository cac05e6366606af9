"""The service of the seed example: answers HTTP 200 on 127.0.0.1:8765.

-v logs each request; -t adds a timestamp to each log line. Run it through
pymanager from the repository root: pymanager -f examples/pymanager.json
"""
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

VERBOSE = "-v" in sys.argv
TIMESTAMPS = "-t" in sys.argv


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hello from the pymanager example\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        if VERBOSE:
            stamp = time.strftime("%H:%M:%S ") if TIMESTAMPS else ""
            print(stamp + fmt % args, flush=True)


if __name__ == "__main__":
    server = HTTPServer(("127.0.0.1", 8765), Handler)
    print("example service listening on http://127.0.0.1:8765/", flush=True)
    server.serve_forever()

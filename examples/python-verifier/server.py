"""A tiny service for the example: /health says "starting" twice, then "ok"."""
import http.server
import json
import sys

calls = {"n": 0}


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        calls["n"] += 1
        body = json.dumps({"status": "ok" if calls["n"] > 2 else "starting"}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Health).serve_forever()

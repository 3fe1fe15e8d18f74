"""A tiny Tracking API stand-in: answers 200 {"success": true} and appends each
request (path, headers, raw body) as one JSON line to the file named on the
command line. Stops on SIGTERM."""

import base64
import gzip
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Recorder(BaseHTTPRequestHandler):
    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        with open(self.server.log_path, "a", encoding="utf-8") as log:
            record = {
                "path": self.path,
                "headers": dict(self.headers.items()),
                "body_base64": base64.b64encode(raw).decode("ascii"),
            }
            log.write(json.dumps(record) + "\n")
        body = b'{"success": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), Recorder)
    server.log_path = sys.argv[1]
    server.serve_forever()

#!/usr/bin/python3
"""A local stand-in for the demo's `api` service, run by `lpk-proxy connect ... --`.

It shows what the local process gets from lpk: the container's configMap file under
$LPK_FILES_ROOT, the secret-backed REDIS_PASSWORD in its environment, and redis reachable by
its short name (lpk's stub DNS and tunnel). Its answers say they come from here.
Usage: local_api.py PORT"""

import http.server
import json
import os
import signal
import socket
import sys

PORT = int(sys.argv[1])
FILES = os.environ["LPK_FILES_ROOT"]
GREETING = open(FILES + os.environ.get("GREETING_FILE", "/etc/demo/greeting")).read().strip()


def redis(*command):
    """One command after AUTH, on a fresh connection to `redis` (short name, as in the pod)."""
    with socket.create_connection(("redis", 6379), timeout=10) as s:
        reader = s.makefile("rb")
        line = b""
        for cmd in (("AUTH", os.environ["REDIS_PASSWORD"]), command):
            s.sendall(b"*%d\r\n" % len(cmd) +
                      b"".join(b"$%d\r\n%s\r\n" % (len(a), a.encode()) for a in cmd))
            line = reader.readline().strip()
        return line.decode()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"served_by": "lpk-local-process", "path": self.path,
                           "greeting": GREETING, "hits": redis("INCR", "local-hits")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body + b"\n")

    def log_message(self, *args):
        pass


signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()

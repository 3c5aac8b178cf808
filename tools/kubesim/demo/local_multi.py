#!/usr/bin/python3
"""A local stand-in for the demo's `api` or `worker`, run by `lpk-proxy connect --run SERVICE=...`.

GET /work answers as worker: its role and greeting from ITS environment and files (ROLE,
GREETING_FILE under $LPK_FILES_ROOT). GET /api/work answers as api: it calls the cluster
name `worker` on port 8080 (through lpk's stub DNS and tunnel, so a worker replaced by the same
session answers from this machine) and wraps that answer with its own greeting and role.
Each request is logged on stdout, which lpk-proxy prefixes with the service name.
Usage: local_multi.py PORT"""

import http.server
import json
import os
import signal
import sys
import urllib.request

PORT = int(sys.argv[1])
FILES = os.environ["LPK_FILES_ROOT"]


def greeting():
    with open(FILES + os.environ.get("GREETING_FILE", "/etc/demo/greeting")) as f:
        return f.read().strip()


def own():
    return {"served_by": "lpk-local-process", "role": os.environ.get("ROLE"),
            "greeting": greeting(), "pid": os.getpid()}


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/api/work"):
            host = os.environ.get("WORKER_HOST", "worker")
            with urllib.request.urlopen(f"http://{host}:8080/work", timeout=20) as r:
                answer = dict(own(), worker=json.load(r))
        elif self.path.startswith("/work"):
            answer = own()
        else:
            self.send_error(404)
            return
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body + b"\n")
        print(f"served {self.path}", flush=True)

    def log_message(self, *args):
        pass


signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
print(f"listening on 127.0.0.1:{PORT}", flush=True)
http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()

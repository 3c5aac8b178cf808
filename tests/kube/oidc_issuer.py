#!/usr/bin/python3
"""A small OIDC issuer for tests/kube/oidc_test.cpp: HTTPS on 127.0.0.1:0 with a self-signed
certificate made here (openssl), serving discovery and a token endpoint that accepts one
refresh_token grant.

Usage: oidc_issuer.py DIR REFRESH_TOKEN NEW_ID_TOKEN
Prints "issuer https://127.0.0.1:PORT DIR/issuer.pem", then one line per request it saw; exits
after answering the token endpoint once, after a client refused its certificate, or after 60 s."""

import base64
import http.server
import json
import signal
import ssl
import subprocess
import sys
import urllib.parse

folder, refresh_token, new_id_token = sys.argv[1:4]
cert, key = f"{folder}/issuer.pem", f"{folder}/issuer.key"
subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                "-keyout", key, "-out", cert], check=True, capture_output=True)
signal.alarm(60)
done = False


class Issuer(http.server.BaseHTTPRequestHandler):
    def answer(self, code, doc):
        body = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        print("GET", self.path, flush=True)
        if self.path != "/.well-known/openid-configuration":
            return self.answer(404, {})
        base = f"https://127.0.0.1:{self.server.server_port}"
        self.answer(200, {"issuer": base, "token_endpoint": base + "/token"})

    def do_POST(self):
        global done
        form = urllib.parse.parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        auth = base64.b64decode(self.headers.get("Authorization", "Basic ")[6:]).decode()
        print("POST", self.path, "grant_type=" + ",".join(form.get("grant_type", [])),
              "refresh_token=" + ",".join(form.get("refresh_token", [])), "client=" + auth,
              flush=True)
        done = True
        if (form.get("grant_type") != ["refresh_token"] or
                form.get("refresh_token") != [refresh_token]):
            return self.answer(400, {"error": "invalid_grant"})
        self.answer(200, {"id_token": new_id_token, "refresh_token": refresh_token + "-next",
                          "token_type": "Bearer", "expires_in": 3600})

    def log_message(self, *args):
        pass


class Server(http.server.HTTPServer):
    def get_request(self):
        """A client that does not trust the certificate ends the issuer too."""
        global done
        try:
            return super().get_request()
        except ssl.SSLError as e:
            print("TLS refused:", e.reason, flush=True)
            done = True
            raise


server = Server(("127.0.0.1", 0), Issuer)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
print(f"issuer https://127.0.0.1:{server.server_port} {cert}", flush=True)
while not done:
    server.handle_request()

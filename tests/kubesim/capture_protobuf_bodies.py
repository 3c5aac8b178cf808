#!/usr/bin/python3
"""Regenerates tests/kubesim/protobuf_bodies/: the protobuf bodies kubectl's imperative
`create` subcommands send, each beside the JSON `kubectl create ... --dry-run=client -o json`
prints for the same command (what kubectl would have sent as JSON).

Usage: capture_protobuf_bodies.py /path/to/lpk-kubesim [OUT_DIR]
(without OUT_DIR: tests/kubesim/protobuf_bodies and the fuzz seeds, in place)

It starts an lpk-kubesim --no-runtime on a port the kernel picks and points kubectl at a
recording proxy on 127.0.0.1 (plain HTTP) that forwards every request to kubesim with its admin
certificate and keeps the body of each protobuf POST. Writes NAME.pb (the body as sent) and
NAME.json (the dry-run object, sorted keys) for each case in CASES; the seeds of
tests/fuzz/corpus/fuzz_protobuf_body are copies of the .pb files.
"""

import http.client
import http.server
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading

NS = "fixtures"
KUBECTL = shutil.which("kubectl")
PROTOBUF = "application/vnd.kubernetes.protobuf"

# name -> kubectl arguments after `create`. Files named here are made by write_inputs().
CASES = {
    "namespace": ["namespace", NS],
    "configmap_literal": ["configmap", "literal", "--from-literal=a=b", "--from-literal=x=y z"],
    "configmap_file": ["configmap", "files", "--from-file=f.txt", "--from-file=blob=bin.dat",
                       "--save-config"],
    "configmap_env": ["configmap", "env", "--from-env-file=app.env", "--append-hash"],
    "secret_generic": ["secret", "generic", "gen", "--from-literal=user=admin",
                       "--from-file=bin.dat", "--type=example/x"],
    "secret_env": ["secret", "generic", "env", "--from-env-file=app.env"],
    "secret_docker_registry": ["secret", "docker-registry", "reg", "--docker-server=r.example",
                               "--docker-username=u", "--docker-password=p",
                               "--docker-email=u@example.com"],
    "secret_tls": ["secret", "tls", "tls", "--cert=tls.crt", "--key=tls.key"],
    "deployment": ["deployment", "web", "--image=nginx", "--replicas", "2", "--port", "80"],
    "deployment_images": ["deployment", "multi", "--image=busybox", "--image=redis"],
    "deployment_command": ["deployment", "cmd", "--image=busybox", "--", "sleep", "inf"],
    "service_clusterip": ["service", "clusterip", "api", "--tcp=80:8080", "--tcp=443"],
    "service_headless": ["service", "clusterip", "headless", "--clusterip=None"],
    "service_nodeport": ["service", "nodeport", "np", "--tcp=80:8080", "--node-port=30080"],
    "service_loadbalancer": ["service", "loadbalancer", "lb", "--tcp=80:http"],
    "service_externalname": ["service", "externalname", "ext", "--external-name=db.example.com",
                             "--tcp=5432"],
    "serviceaccount": ["serviceaccount", "sa"],
    "role": ["role", "reader", "--verb=get", "--verb=list", "--resource=pods",
             "--resource=deployments.apps", "--resource-name=web"],
    "rolebinding": ["rolebinding", "rb", "--role=reader", "--user=u", "--group=g",
                    f"--serviceaccount={NS}:sa"],
    "clusterrole": ["clusterrole", "cr", "--verb=get", "--resource=namespaces",
                    "--non-resource-url=/healthz"],
    "clusterrole_aggregation": ["clusterrole", "agg", "--aggregation-rule=rbac.example/agg=true"],
    "clusterrolebinding": ["clusterrolebinding", "crb", "--clusterrole=cr", "--user=u",
                           f"--serviceaccount={NS}:sa", "--group=g"],
    "job": ["job", "hello", "--image=busybox", "--", "sh", "-c", "echo hi"],
}
CLUSTER_SCOPED = {"namespace", "clusterrole", "clusterrole_aggregation", "clusterrolebinding"}


def write_inputs(d):
    with open(os.path.join(d, "f.txt"), "w") as f:
        f.write("line one\nline two\n")
    with open(os.path.join(d, "bin.dat"), "wb") as f:
        f.write(bytes([0xff, 0xfe, 0x00, 0x01, 0x80, 0x0a]))  # not UTF-8
    with open(os.path.join(d, "app.env"), "w") as f:
        f.write("# comment\nMODE=prod\nGREETING=hello world\n")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "3650", "-subj", "/CN=tls",
                    "-keyout", os.path.join(d, "tls.key"), "-out", os.path.join(d, "tls.crt")],
                   check=True, capture_output=True)


def recording_proxy(state, recorded):
    """A plain-HTTP server on 127.0.0.1 forwarding to kubesim as its admin."""
    upstream = re.search(r"server: https://127.0.0.1:(\d+)",
                         open(os.path.join(state, "kubeconfig")).read()).group(1)
    tls = ssl.create_default_context(cafile=os.path.join(state, "ca.crt"))
    tls.load_cert_chain(os.path.join(state, "admin.crt"), os.path.join(state, "admin.key"))

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def forward(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.command == "POST" and self.headers.get("Content-Type", "").startswith(PROTOBUF):
                recorded.append(body)
            conn = http.client.HTTPSConnection("127.0.0.1", int(upstream), context=tls)
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            conn.request(self.command, self.path, body=body, headers=headers)
            res = conn.getresponse()
            data = res.read()
            self.send_response(res.status)
            for k, v in res.getheaders():
                if k.lower() not in ("transfer-encoding", "content-length", "connection"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            conn.close()

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = forward

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def capture(kubectl, name, args):
    """(body, dry-run JSON) of one case."""
    scope = [] if name in CLUSTER_SCOPED else ["-n", NS]
    # Before a container command's "--", or they would be part of it.
    cut = args.index("--") if "--" in args else len(args)
    dry = kubectl(*scope, "create", *args[:cut], "--dry-run=client", "-o", "json", *args[cut:])
    if dry.returncode != 0:
        raise SystemExit(f"{name}: kubectl create --dry-run=client failed")
    obj = json.loads(dry.stdout)
    before = len(recorded)
    kubectl(*scope, "create", *args)
    if len(recorded) != before + 1:
        raise SystemExit(f"{name}: {len(recorded) - before} protobuf bodies, not 1")
    return recorded[-1], obj


recorded = []


def main():
    kubesim = sys.argv[1]
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "protobuf_bodies")
    # The fuzz seeds only when the fixtures are regenerated in place.
    seeds = None if len(sys.argv) > 2 else os.path.join(here, "..", "fuzz", "corpus",
                                                         "fuzz_protobuf_body")
    work = tempfile.mkdtemp(prefix="pb-capture-")
    state = os.path.join(work, "state")
    sim = subprocess.Popen([kubesim, "up", "--port", "0", "--state", state, "--no-runtime"],
                           stdout=subprocess.PIPE, text=True)
    try:
        for line in sim.stdout:
            if "serving https://" in line:
                break
        server = recording_proxy(state, recorded)
        write_inputs(work)

        def kubectl(*args):
            r = subprocess.run([KUBECTL, "--kubeconfig", os.devnull, "--server",
                                f"http://127.0.0.1:{server.server_address[1]}",
                                "--cache-dir", os.path.join(work, "cache"), *args],
                               cwd=work, capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                print(f"kubectl {' '.join(args)}: {r.stderr.strip()}", file=sys.stderr)
            return r

        for d in filter(None, (out, seeds)):
            os.makedirs(d, exist_ok=True)
        for name, args in CASES.items():
            body, obj = capture(kubectl, name, args)
            for d in filter(None, (out, seeds)):
                with open(os.path.join(d, name + ".pb"), "wb") as f:
                    f.write(body)
            with open(os.path.join(out, name + ".json"), "w") as f:
                json.dump(obj, f, indent=1, sort_keys=True)
                f.write("\n")
            print(f"{name}: {len(body)} bytes")
        server.shutdown()
    finally:
        sim.terminate()
        sim.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

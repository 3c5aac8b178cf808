#!/usr/bin/python3
"""The router's floor on lpk-kubesim (issue 14): requests without the routing header, through
lpk's router, against the same requests straight to the original pods, in one run.

Usage: bench/router/kubesim.py BUILD_DIR [--secs 5] [--rounds 3] [--concurrency 16]
                               [--switch-requests 1000] [--out FILE.json]

Starts its own lpk-kubesim (own state dir, port 0) with namespace rbench: Deployment `app`
(2 nginx replicas, a fixed 600-byte body, keep-alive, container port `http`), Service `app`
(port 80, targetPort http) and a client pod `client` whose network namespace runs every
client (`ip netns exec`; nothing reaches a pod or service IP from the host's namespace).
Each round:
  straight  wrk -t1 -cN -dS --latency http://<ClusterIP of app>/  (kubesim's service proxy ->
            the nginx pods)
  routed    `lpk-proxy connect -n rbench --service app --route-header bench -- route_peers.py`
            until `ready`, the Service's endpoints checked to be the router's, the same wrk
            (no header): service proxy -> lpk-agent router -> the nginx pods; then SIGTERM
            (exit 0 expected: the Service is given back) and the endpoints checked to be the
            nginx pods again.
  haproxy   the same wrk to the ClusterIP of `app-haproxy`: an HAProxy pod (`mode http`, one
            thread, as the router runs one) relaying to the nginx pods: the same hops as the
            routed path, through the proxy a user would otherwise put there (the bar).
The last routed round also runs wrk WITH `x-lpk-route: bench` (router -> the session's agent
pod -> tunnel -> the local server, python's http.server) and the switching check: one
http.client keep-alive connection alternating header / no header for --switch-requests
requests (this script, run with --switch-client in the client pod's netns), each answer
checked to come from the right side, the client namespace's TCP ActiveOpens (/proc/net/snmp)
counted around it. The router's own counts (GET /routes on its admin port) show each routed
round's path. Prints a table with /proc/loadavg and the
command line; writes --out (default bench/results/router_kubesim.json) and redraws its chart
(bench/plots.py) when --out is that file. Ends everything it started, also on Ctrl-C/SIGTERM.
Needs root (kubesim makes network namespaces), kubectl, nginx, wrk and haproxy; exits 77
otherwise."""

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "bench", "lib"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import kubesim_session  # noqa: E402
import plots  # noqa: E402
from kubesim_session import e2e  # noqa: E402
from kubesim_rollout import run_facts  # noqa: E402

PYTHON = "/usr/bin/python3"
PEERS = os.path.join(ROOT, "tests", "e2e", "route_peers.py")  # the developer's local server
NS = "rbench"
HEADER, VALUE = "x-lpk-route", "bench"
BODY = "x" * 600  # about the size of a JSON API answer, as bench/router/run.sh serves
RESULTS = os.path.join(ROOT, "bench", "results", "router_kubesim.json")

WORKLOAD = f"""
apiVersion: v1
kind: Namespace
metadata: {{name: {NS}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: app-conf, namespace: {NS}}}
data:
  default.conf: |
    server {{
      listen 80;
      access_log off;
      keepalive_requests 1000000;
      location / {{ return 200 "{BODY}"; }}
    }}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: app, namespace: {NS}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: app}}}}
  template:
    metadata: {{labels: {{app: app}}}}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        ports: [{{containerPort: 80, name: http}}]
        readinessProbe: {{httpGet: {{path: /, port: http}}, periodSeconds: 1}}
        volumeMounts: [{{name: conf, mountPath: /etc/nginx/sites-enabled}}]
      volumes:
      - name: conf
        configMap: {{name: app-conf}}
---
apiVersion: v1
kind: Service
metadata: {{name: app, namespace: {NS}}}
spec:
  selector: {{app: app}}
  ports: [{{port: 80, targetPort: http, name: http}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: client, namespace: {NS}}}
spec:
  containers:
  - name: c
    image: busybox
    command: ["sleep", "infinity"]
"""


def skip_reason():
    if os.geteuid() != 0:
        return "needs root: kubesim makes network namespaces"
    for tool in ("kubectl", "nginx", "wrk", "ip", "curl", "haproxy"):
        if not shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin"):
            return f"{tool} is not installed (run tools/install-deps.sh)"
    return None


def addresses(netns):
    """The IPv4 addresses of a network namespace."""
    out = subprocess.run(["ip", "-n", netns, "-4", "-o", "addr", "show"], capture_output=True,
                         text=True).stdout
    return [line.split()[3].split("/")[0] for line in out.splitlines()]


class Cluster:
    """The kubesim, its workload, the client pod's netns and the Service's address."""

    def __init__(self, sim):
        self.sim = sim
        sim.kubectl("apply", "-f", "-", input=WORKLOAD)
        sim.kubectl("-n", NS, "rollout", "status", "deployment/app", "--timeout=90s", timeout=120)
        sim.kubectl("-n", NS, "wait", "--for=condition=Ready", "pod/client", "--timeout=90s",
                    timeout=120)
        self.cluster_ip = self.get("service", "app")["spec"]["clusterIP"]
        self.originals = self.endpoints()
        client_ip = self.get("pod", "client")["status"]["podIP"]
        self.netns = next((n for n in sim.netns() if client_ip in addresses(n)), None)
        if not self.netns or len(self.originals) != 2:
            raise SystemExit(f"kubesim.py: no netns for the client pod ({client_ip}) or not 2 "
                             f"endpoints ({self.originals})")

    def get(self, kind, name):
        return json.loads(self.sim.kubectl("-n", NS, "get", kind, name, "-o", "json").stdout)

    def endpoints(self):
        eps = self.get("endpoints", "app")
        return sorted(a["ip"] for s in eps.get("subsets") or [] for a in s.get("addresses", []))

    def wait_endpoints(self, want, what, timeout=60):
        """Polls the Service's endpoints until want(ips) holds: the path under test."""
        deadline = time.monotonic() + timeout
        while not want(ips := self.endpoints()):
            if time.monotonic() > deadline:
                raise SystemExit(f"kubesim.py: the Service app never led to {what}: {ips}")
            time.sleep(0.2)
        return ips

    def router_routes(self, router_ips):
        """The router's own account (GET /routes on its admin port, from the client pod)."""
        pods = json.loads(self.sim.kubectl("-n", NS, "get", "pods", "-o", "json").stdout)["items"]
        pod = next(p for p in pods if p["status"].get("podIP") in router_ips)
        port = next(p["containerPort"] for c in pod["spec"]["containers"]
                    for p in c.get("ports", []) if p.get("name") == "lpk-admin")
        return json.loads(self.in_client("curl", "-sS", "-m", "10",
                                         f"http://{pod['status']['podIP']}:{port}/routes",
                                         timeout=30))

    def in_client(self, *argv, timeout):
        return subprocess.run(["ip", "netns", "exec", self.netns, *argv], capture_output=True,
                              text=True, timeout=timeout, check=True).stdout


def micros(text):  # wrk's "123.45us", "1.20ms", "1.00s"
    value, unit = re.match(r"([\d.]+)(us|ms|s)$", text).groups()
    return float(value) * {"us": 1, "ms": 1e3, "s": 1e6}[unit]


def wrk(cluster, a, extra=(), url=None):
    """One wrk run in the client pod's netns (to the ClusterIP unless `url`): requests/s, p50
    (us), errors as wrk says them."""
    out = cluster.in_client("wrk", "-t1", f"-c{a.concurrency}", f"-d{a.secs}s", "--latency",
                            *extra, url or f"http://{cluster.cluster_ip}/", timeout=a.secs + 60)
    rps = float(re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M).group(1))
    requests = int(re.search(r"^\s*(\d+) requests in", out, re.M).group(1))
    p50 = micros(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    errors = " ".join(l.strip() for l in out.splitlines()
                      if l.strip().startswith(("Non-2xx", "Socket errors")))
    return {"rps": rps, "p50_us": p50, "requests": requests, "errors": errors,
            "load": open("/proc/loadavg").read().split()[:3]}


def active_opens(cluster):
    """TCP connections opened from the client pod's namespace so far (its own MIB)."""
    lines = [l.split() for l in cluster.in_client("cat", "/proc/net/snmp", timeout=20)
             .splitlines() if l.startswith("Tcp:")]
    return int(lines[1][lines[0].index("ActiveOpens")])


def switch_check(cluster, n):
    before = active_opens(cluster)
    out = cluster.in_client(PYTHON, os.path.abspath(__file__), "--switch-client",
                            cluster.cluster_ip, str(n), timeout=600)
    result = json.loads(out.strip().splitlines()[-1])
    result["netns_active_opens"] = active_opens(cluster) - before
    return result


def switch_client(host, n):
    """Runs in the client pod: n requests on one http.client connection, even ones with the
    header; http.client reopens a connection the server closed (counted), as real clients do.
    Prints a JSON line: requests/s, connections opened, answers from the wrong side."""
    conn = http.client.HTTPConnection(host, 80, timeout=20)
    opened, wrong, connect = 0, 0, conn.connect

    def counting_connect():
        nonlocal opened
        opened += 1
        connect()

    conn.connect = counting_connect
    start = time.monotonic()
    for i in range(n):
        routed = i % 2 == 0
        for attempt in (1, 2):
            try:
                conn.request("GET", "/", headers={HEADER: VALUE} if routed else {})
                r = conn.getresponse()
                body = r.read()
                break
            except (http.client.RemoteDisconnected, ConnectionError):
                conn.close()
                if attempt == 2:
                    raise
        to_dev = body.startswith(b"{") and json.loads(body).get("served_by") == "dev"
        wrong += r.status != 200 or to_dev != routed or (not routed and body != BODY.encode())
    seconds = time.monotonic() - start
    print(json.dumps({"requests": n, "seconds": round(seconds, 3), "rps": round(n / seconds, 1),
                      "client_connects": opened, "wrong_answers": wrong}))


class Haproxy:
    """HAProxy as a user would put it in front of the service: a pod (`mode http`, one thread,
    as the router runs one) relaying to the nginx pods' addresses, as the router dials them,
    behind a Service `app-haproxy`. The same hops as the routed path: service proxy -> one HTTP
    relay pod -> nginx."""

    CONFIG = """global
  nbthread 1
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend bench
  bind :8080
  default_backend app
backend app
  balance roundrobin
{servers}
"""
    OBJECTS = """
apiVersion: v1
kind: ConfigMap
metadata: {{name: haproxy-conf, namespace: {ns}}}
data:
  haproxy.cfg: |
{config}
---
apiVersion: v1
kind: Pod
metadata: {{name: haproxy, namespace: {ns}, labels: {{app: haproxy}}}}
spec:
  containers:
  - name: haproxy
    image: busybox
    command: ["haproxy", "-db", "-f", "/etc/haproxy/haproxy.cfg"]
    ports: [{{containerPort: 8080, name: http}}]
    readinessProbe: {{tcpSocket: {{port: http}}, periodSeconds: 1}}
    volumeMounts: [{{name: conf, mountPath: /etc/haproxy}}]
  volumes:
  - name: conf
    configMap: {{name: haproxy-conf}}
---
apiVersion: v1
kind: Service
metadata: {{name: app-haproxy, namespace: {ns}}}
spec:
  selector: {{app: haproxy}}
  ports: [{{port: 80, targetPort: http, name: http}}]
"""

    def __init__(self, cluster):
        servers = "\n".join(f"  server nginx{i} {ip}:80" for i, ip in enumerate(cluster.originals))
        config = self.CONFIG.format(servers=servers)
        cluster.sim.kubectl("apply", "-f", "-", input=self.OBJECTS.format(
            ns=NS, config="\n".join("    " + line for line in config.splitlines())))
        cluster.sim.kubectl("-n", NS, "wait", "--for=condition=Ready", "pod/haproxy",
                            "--timeout=90s", timeout=120)
        self.url = f"http://{cluster.get('service', 'app-haproxy')['spec']['clusterIP']}/"
        body = cluster.in_client("curl", "-sS", "--retry", "50", "--retry-connrefused",
                                 "--retry-delay", "0", "-m", "10", self.url, timeout=60)
        if body != BODY:
            raise SystemExit(f"kubesim.py: HAProxy answered {body[:80]!r}, not nginx's page")


class Session:
    """lpk-proxy connect --route-header: up until `ready`, and the Service then leads to the
    router; stop(): SIGTERM, exit 0, the Service leads to the nginx pods again."""

    def __init__(self, cluster, proxy_bin, env):
        self.cluster = cluster
        port = e2e.free_port()
        self.proc = e2e.Proc(
            [proxy_bin, "connect", "--kubeconfig", cluster.sim.kubeconfig, "-n", NS, "--service",
             "app", "--route-header", VALUE, "--local-port", f"{port}:80", "--",
             PYTHON, PEERS, "http", str(port), "dev"], name="lpk-proxy connect", env=env)
        self.proc.logs.append(os.path.join(cluster.sim.dir, "pods", f"{NS}_*", "*.log"))
        try:
            started = time.monotonic()
            self.proc.wait_line(e2e.PROXY_LINES["ready"], timeout=150)
            self.ready_s = time.monotonic() - started
            self.proc.wait_line(rf"^route_peers dev listening on {port}$", timeout=30)
            self.router_ips = cluster.wait_endpoints(
                lambda ips: ips and not set(ips) & set(cluster.originals), "the router")
        except BaseException:
            self.proc.stop(signal.SIGTERM, 150)  # gives the Service back, or says why not
            raise

    def stop(self):
        self.proc.stop(signal.SIGTERM, 150)
        self.cluster.wait_endpoints(lambda ips: ips == self.cluster.originals, "the nginx pods")


def routed_wrk(cluster, session, a, extra=()):
    """wrk through the router, with the requests the router counted to the originals and to
    the session during it (its GET /routes before and after): the path, shown."""
    def counts():
        doc = cluster.router_routes(session.router_ips)
        return doc["original"]["requests"], sum(r["requests"] for r in doc["routes"])

    before = counts()
    sample = wrk(cluster, a, extra)
    after = counts()
    sample["router_to_originals"], sample["router_to_session"] = (
        after[0] - before[0], after[1] - before[1])
    return sample


def measure(cluster, proxy_bin, env, a, haproxy):
    """Straight, HAProxy and routed rounds alternating; the last routed round adds the header
    round and the switching check. Returns the samples."""
    out = {"straight": [], "haproxy": [], "routed": [], "connect_ready_s": []}
    for round_ in range(1, a.rounds + 1):
        out["straight"].append(wrk(cluster, a))
        log(f"straight #{round_}", out["straight"][-1])
        out["haproxy"].append(wrk(cluster, a, url=haproxy.url))
        log(f"haproxy #{round_}", out["haproxy"][-1])
        session = Session(cluster, proxy_bin, env)
        try:
            out["connect_ready_s"].append(round(session.ready_s, 2))
            out["routed"].append(routed_wrk(cluster, session, a))
            log(f"routed #{round_} (router {','.join(session.router_ips)})", out["routed"][-1])
            if round_ == a.rounds:
                out["with_header"] = routed_wrk(cluster, session, a, ("-H", f"{HEADER}: {VALUE}"))
                log("routed, with the header (to the local server)", out["with_header"])
                out["switch"] = switch_check(cluster, a.switch_requests)
                log("switching on one connection", out["switch"])
        finally:
            session.stop()
    return out


def log(what, sample):
    if "rps" in sample and "p50_us" in sample:
        text = (f"{sample['rps']:.0f} requests/s, p50 {sample['p50_us']:.0f} us, "
                f"{sample['requests']} requests{', ' if sample['errors'] else ''}"
                f"{sample['errors']}; load {' '.join(sample['load'])}")
        if "router_to_originals" in sample:
            text += (f"; the router counted {sample['router_to_originals']} to the nginx pods, "
                     f"{sample['router_to_session']} to the session")
    else:
        text = json.dumps(sample)
    print(f"{what}: {text}", flush=True)


def summarize(samples, a, command):
    med = {k: {"rps": statistics.median(s["rps"] for s in samples[k]),
               "p50_us": statistics.median(s["p50_us"] for s in samples[k])}
           for k in ("straight", "haproxy", "routed")}
    doc = {"command": command, "concurrency": a.concurrency, "seconds": a.secs,
           "rounds": a.rounds, "median": med, "samples": samples, "floor_ratio": 0.8,
           "routed_over_straight": med["routed"]["rps"] / med["straight"]["rps"],
           "haproxy_over_straight": med["haproxy"]["rps"] / med["straight"]["rps"],
           "routed_over_haproxy": med["routed"]["rps"] / med["haproxy"]["rps"],
           "p50_added_us": med["routed"]["p50_us"] - med["straight"]["p50_us"]}
    doc["floor_met"] = doc["routed_over_straight"] >= doc["floor_ratio"]
    doc.update(run_facts())
    return doc


def table(doc):
    med, h, sw = doc["median"], doc["samples"]["with_header"], doc["samples"]["switch"]
    runs = {k: ", ".join(f"{s['rps']:.0f}" for s in doc["samples"][k])
            for k in ("straight", "haproxy", "routed")}
    to_orig = sum(s["router_to_originals"] for s in doc["samples"]["routed"])
    done = sum(s["requests"] for s in doc["samples"]["routed"])
    rows = [
        f"router on lpk-kubesim, wrk -t1 -c{doc['concurrency']} -d{doc['seconds']}s keep-alive "
        f"to the ClusterIP of app (2 nginx pods), from a pod's netns",
        f"command: {doc['command']}",
        f"measured {doc['measured']}, {doc['nproc']} CPUs, load {doc['load']} at the end, "
        f"lpk {doc['commit']}; connect --route-header to ready: "
        f"{', '.join(str(s) for s in doc['samples']['connect_ready_s'])} s",
        "",
        "| path | requests/s (median) | runs | p50 (us) | ratio to straight | p50 added (us) |",
        "|---|---:|---|---:|---:|---:|",
        f"| straight (service proxy -> nginx) | {med['straight']['rps']:.0f} | "
        f"{runs['straight']} | {med['straight']['p50_us']:.0f} | 1.00 | 0 |",
        f"| HAProxy pod (-> HAProxy -> nginx) | {med['haproxy']['rps']:.0f} | "
        f"{runs['haproxy']} | {med['haproxy']['p50_us']:.0f} | {doc['haproxy_over_straight']:.2f} | "
        f"{med['haproxy']['p50_us'] - med['straight']['p50_us']:.0f} |",
        f"| routed, no header (-> router -> nginx) | {med['routed']['rps']:.0f} | "
        f"{runs['routed']} | {med['routed']['p50_us']:.0f} | {doc['routed_over_straight']:.2f} | "
        f"{doc['p50_added_us']:.0f} |",
        f"| routed, with the header (-> session agent -> tunnel -> local python server), one "
        f"round | {h['rps']:.0f} | | {h['p50_us']:.0f} | {h['rps'] / med['straight']['rps']:.2f}"
        f" | {h['p50_us'] - med['straight']['p50_us']:.0f} |",
        "",
        f"Floor of issue 14 (routed, no header >= {doc['floor_ratio']}x straight): "
        f"{'met' if doc['floor_met'] else 'NOT met'} ({doc['routed_over_straight']:.2f}x); "
        f"the router keeps {doc['routed_over_haproxy']:.2f}x HAProxy's rate, one HTTP relay "
        f"each.",
        f"Path: in the routed rounds the router counted {to_orig} requests to the nginx pods "
        f"(wrk completed {done}); with the header {h['router_to_session']} to the session "
        f"(wrk: {h['requests']}, the router: {h['router_to_originals']} to the nginx pods).",
        f"Switching: {sw['requests']} requests on one keep-alive connection alternating "
        f"header / no header: {sw['client_connects']} connection(s) opened by the client, "
        f"{sw['netns_active_opens']} TCP connection(s) opened from its netns, "
        f"{sw['wrong_answers']} answer(s) from the wrong side, {sw['rps']:.0f} requests/s.",
    ]
    return "\n".join(rows)


def on_sigterm(*_):
    raise KeyboardInterrupt  # the same ending as Ctrl-C: every finally runs


def run(a, command):
    proxy_bin = os.path.join(a.build_dir, "proxy", "lpk-proxy")
    kubesim_session.use_build(a.build_dir)
    print(f"load {open('/proc/loadavg').read().strip()}; {command}", flush=True)
    with kubesim_session.running("lpk-bench-rkubesim-") as (sim, env):
        cluster = Cluster(sim)
        samples = measure(cluster, proxy_bin, env, a, Haproxy(cluster))
    return summarize(samples, a, command)


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--switch-client":
        return switch_client(sys.argv[2], int(sys.argv[3]))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("build_dir")
    ap.add_argument("--secs", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--switch-requests", type=int, default=1000)
    ap.add_argument("--out", default=RESULTS)
    a = ap.parse_args()
    command = "bench/router/kubesim.py " + " ".join(sys.argv[1:])
    reason = skip_reason()
    if reason:
        print(f"SKIPPED: router on kubesim: {reason}")
        sys.exit(e2e.SKIP_CODE)
    charted = os.path.abspath(a.out) == RESULTS
    if charted:
        plots.check_or_exit("kubesim.py")
    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        doc = run(a, command)
    except KeyboardInterrupt:
        print("kubesim.py: interrupted; everything it started has been stopped", file=sys.stderr)
        sys.exit(130)
    print(table(doc))
    with open(a.out, "w") as f:
        json.dump(doc, f, indent=1)
    print(f"wrote {a.out}")
    if charted:
        plots.regenerate(os.path.dirname(RESULTS), "router_kubesim")


if __name__ == "__main__":
    main()

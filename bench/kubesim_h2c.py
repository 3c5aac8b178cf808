#!/usr/bin/python3
"""HTTP/2 requests per second through a kubesim ClusterIP against straight to the pod, side by
side in one run: h2load (Debian's nghttp2-client) in a client pod's network namespace sends
prior-knowledge h2c requests to nginx in another pod, over `--connections` connections with
`--streams` streams each, once to the pod's IP and once to the Service's ClusterIP (kubesim's
service proxy relays each connection), interleaved for `--reps` reps.

Usage: bench/kubesim_h2c.py BUILD_DIR [--requests N] [--connections C] [--streams M] [--reps R]
Prints each rep and the medians with the ratio ClusterIP / direct (no results file). Needs root,
kubectl, nginx and h2load."""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "kubesim"))
import e2e_kubesim  # noqa: E402
import e2e_services as svc  # noqa: E402  (the pods and Service of kubesim_services_e2e)


def h2load(netns, url, args):
    """Requests per second of one h2load run; raises with its output unless all succeeded."""
    r = subprocess.run(["ip", "netns", "exec", netns, "h2load", "-n", str(args.requests), "-c",
                        str(args.connections), "-m", str(args.streams), url],
                       capture_output=True, text=True, timeout=300)
    done = f"{args.requests} succeeded, 0 failed"
    if r.returncode != 0 or done not in r.stdout:
        raise SystemExit(f"h2load {url} failed:\n{r.stdout}{r.stderr}")
    return float(re.search(r"finished in \S+, ([\d.]+) req/s", r.stdout).group(1))


def start(sim):
    web = [("http", 8080), ("h2c", 8081)]
    items = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": svc.NS}},
             {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "web-conf", "namespace": svc.NS},
              "data": {"default.conf": svc.nginx_conf(8080)}},
             svc.nginx_pod("blue-1", {"color": "blue"}, "web-conf", web),
             svc.pod("client", {}, {"name": "c", "image": "busybox",
                                    "command": ["sleep", "3600"]}),
             svc.service("web", {"color": "blue"}, svc.WEB_PORTS)]
    sim.kubectl("apply", "-f", "-", input="\n".join(json.dumps(i) for i in items))
    sim.kubectl("-n", svc.NS, "wait", "--for=condition=Ready", "pod/blue-1", "pod/client",
                "--timeout=60s")
    get = lambda *what: json.loads(sim.kubectl("-n", svc.NS, "get", *what, "-o", "json").stdout)
    client = get("pod", "client")["status"]["containerStatuses"][0]["containerID"]
    netns = subprocess.run(["ip", "netns", "identify", client.split("://")[1]],
                           capture_output=True, text=True, check=True).stdout.strip()
    direct = f"http://{get('pod', 'blue-1')['status']['podIP']}:8081/"
    vip = f"http://{get('svc', 'web')['spec']['clusterIP']}:81/"
    return netns, direct, vip


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("build_dir")
    ap.add_argument("--requests", type=int, default=100000)
    ap.add_argument("--connections", type=int, default=1)
    ap.add_argument("--streams", type=int, default=64)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    e2e_kubesim.KUBESIM = os.path.join(args.build_dir, "tools", "kubesim", "lpk-kubesim")
    sim = e2e_kubesim.Kubesim()
    try:
        netns, direct, vip = start(sim)
        runs = {"direct": [], "clusterip": []}
        for rep in range(args.reps):
            for name, url in (("direct", direct), ("clusterip", vip)):
                runs[name].append(h2load(netns, url, args))
            print(f"rep {rep + 1}: direct {runs['direct'][-1]:,.0f} req/s, "
                  f"ClusterIP {runs['clusterip'][-1]:,.0f} req/s", flush=True)
        d, c = statistics.median(runs["direct"]), statistics.median(runs["clusterip"])
        print(f"median of {args.reps}: direct {d:,.0f} req/s, ClusterIP {c:,.0f} req/s, "
              f"ratio ClusterIP/direct {c / d:.2f} ({args.requests} requests, "
              f"{args.connections} connection(s) x {args.streams} streams, nproc "
              f"{os.cpu_count()}, load {os.getloadavg()[0]:.1f})")
    finally:
        sim.stop()


if __name__ == "__main__":
    main()

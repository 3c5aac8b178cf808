#!/usr/bin/python3
"""How long do streams stall when the link drops? (issue 10's resume-time floor: p50 <= 200 ms,
p99 <= 1 s, on the fault relay and on kubesim.)

Two paths, each with STREAMS connections to an echo server ping-ponging one small message at a
time while the link is cut DROPS times:
  relay    lpk-proxy run -> lpk-faultrelay -> lpk-agent; the relay cuts the link (RST to both
           ends);
  kubesim  lpk-proxy connect against lpk-kubesim (needs root): the connections go through the
           agent pod's port-forward to an echo service in the cluster; kubesim cuts every
           port-forward (POST /kubesim/faults/portforward/drop) and, in a second row, restarts
           its API listener (/kubesim/faults/apiserver/restart, no downtime), which also cuts
           lpk's watches.
For each cut the figure is the time from the cut until every stream has completed a round trip
again: the proxy noticing, dialing (through kubesim: TCP, TLS and the WebSocket upgrade), the
resumed hello, both stream lists, the bytes sent again, and the next echo. That includes more
than "link usable again -> data flowing" (the issue's definition), so it is an upper bound of
it. The peer a user would otherwise have, `kubectl port-forward`, has no figure: its
connections end with the link.

  bench/resume.py [--build-dir DIR] [--paths relay,kubesim] [--streams N] [--drops N] [--out DIR]

Writes resume.md and resume.json to --out (default bench/results) and prints the table.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench", "lib"))
import kubesim_session  # noqa: E402
import plots  # noqa: E402
from kubesim_session import e2e  # noqa: E402

# The cluster for the kubesim path: an echo service, and `app`, the workload connect replaces
# (one replica: one tunnel carries every stream).
MANIFESTS = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}},
    *[obj for name in ("echo", "app") for obj in (
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": name, "namespace": "bench"},
         "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                  "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [
                      {"name": name, "image": "busybox",
                       "command": ["socat", "TCP-LISTEN:7000,fork,reuseaddr", "EXEC:cat"],
                       "ports": [{"containerPort": 7000, "name": "tcp"}],
                       "readinessProbe": {"tcpSocket": {"port": 7000}, "periodSeconds": 1}}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "bench"},
         "spec": {"selector": {"app": name},
                  "ports": [{"port": 7000, "targetPort": 7000, "name": "tcp"}]}})],
]


class PingPong:
    """One connection that echoes a message back and forth and records when each returns."""

    def __init__(self, addr):
        self.sock = e2e.connect(addr, timeout=30)
        self.last = time.monotonic()
        self.rounds = 0
        self.error = None
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        msg = b"x" * 64
        try:
            while not self.stop:
                self.sock.sendall(msg)
                got = b""
                while len(got) < len(msg):
                    chunk = self.sock.recv(len(msg) - len(got))
                    if not chunk:
                        raise ConnectionError("closed")
                    got += chunk
                if got != msg:
                    raise ValueError("echo differs")
                self.last = time.monotonic()
                self.rounds += 1
                time.sleep(0.002)
        except Exception as e:  # noqa: BLE001 (reported as the stream's failure)
            self.error = repr(e)

    def close(self):
        self.stop = True
        self.thread.join(5)
        self.sock.close()


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def time_cuts(listen, count, drops, cut):
    """Opens `count` ping-pong streams to `listen`; `drops` times calls cut() and times how long
    until every stream has round-tripped again. Returns (seconds per cut, failed streams)."""
    streams, times = [], []
    try:
        streams = [PingPong(listen) for _ in range(count)]
        time.sleep(0.5)
        for _ in range(drops):
            dropped = time.monotonic()
            cut()
            deadline = dropped + 30
            while any(s.last <= dropped for s in streams) and time.monotonic() < deadline:
                if any(s.error for s in streams):
                    raise SystemExit("a stream failed: " + next(s.error for s in streams if s.error))
                time.sleep(0.001)
            times.append(max(s.last for s in streams) - dropped)
            time.sleep(0.2)
        return times, [s.error for s in streams if s.error]
    finally:
        for s in streams:
            s.close()


def relay_rows(args):
    server = e2e.Server(e2e.echo_handler)
    agent = e2e.Agent(log_level="warn")
    relay = e2e.FaultRelay(agent.tunnel_str)
    proxy = e2e.Proxy(relay.addr_str, maps=["127.0.0.1:0=%s:%d" % server.addr], log_level="warn")
    try:
        times, failed = time_cuts(proxy.listens[0], args.streams, args.drops,
                                  lambda: relay.fault("drop"))
    finally:
        e2e.stop_all(proxy, relay, agent)
        server.close()
    return [row("lpk run, fault relay drop (RST)", args, times, failed)]


def fault(sim, name):
    code, _, body = sim.raw("POST", "/kubesim/faults/" + name)
    if code != 200:
        raise SystemExit(f"kubesim fault {name}: HTTP {code} {body!r}")


def kubesim_rows(args):
    if os.geteuid() != 0:
        raise SystemExit("the kubesim path needs root (kubesim makes network namespaces)")
    with kubesim_session.running("lpk-resume-bench-") as (sim, env):
        return kubesim_rows_on(sim, env, args)


def kubesim_rows_on(sim, env, args):
    proxy = None
    try:
        for manifest in MANIFESTS:
            sim.kubectl("apply", "-f", "-", input=json.dumps(manifest))
        for name in ("echo", "app"):
            sim.kubectl("-n", "bench", "rollout", "status", "deployment/" + name,
                        "--timeout=120s", timeout=150)
        proxy = e2e.Proc([e2e.PROXY, "connect", "--kubeconfig", sim.kubeconfig, "-n", "bench",
                          "--service", "app", "--log-level", "warn"], name="lpk-proxy", env=env)
        proxy.wait_line(e2e.PROXY_LINES["ready"], timeout=150)
        echo = next(m.group(3) for m in proxy.matching(e2e.PROXY_LINES["service"])
                    if m.group(1) == "echo")
        listen = (echo, 7000)
        rows = []
        for label, name in (("portforward/drop", "portforward/drop"),
                            ("apiserver/restart", "apiserver/restart?seconds=0")):
            times, failed = time_cuts(listen, args.streams, args.drops,
                                      lambda name=name: fault(sim, name))
            rows.append(row(f"lpk connect, kubesim {label}", args, times, failed))
        return rows
    finally:
        if proxy:
            proxy.stop(timeout=150)


def row(path, args, times, failed):
    ms = [t * 1000 for t in times]
    return {"path": path, "streams": args.streams, "drops": args.drops,
            "failed_streams": len(failed), "p50_ms": round(percentile(ms, 50), 1),
            "p99_ms": round(percentile(ms, 99), 1), "max_ms": round(max(ms), 1),
            "mean_ms": round(statistics.mean(ms), 1)}


def write_results(rows, out, command):
    table = ("| path | streams | cuts | streams lost | resume p50 | p99 | max |\n"
             "|---|---|---|---|---|---|---|\n")
    for r in rows:
        table += (f"| {r['path']} | {r['streams']} | {r['drops']} | {r['failed_streams']} | "
                  f"{r['p50_ms']} ms | {r['p99_ms']} ms | {r['max_ms']} ms |\n")
    table += "| kubectl port-forward | - | - | all | (no resumption) | | |\n"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "resume.json"), "w") as f:
        json.dump({"command": command, "measured": when, "load": load, "commit": commit,
                   "nproc": os.cpu_count(), "rows": rows}, f, indent=2)
    with open(os.path.join(out, "resume.md"), "w") as f:
        f.write(f"Measured with `{command}` (cut -> every stream round-trips again), {when} on "
                f"{os.cpu_count()} CPUs, load average at the end {load}, lpk commit {commit}."
                "\n\n" + table)
    print(table)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", default=os.environ.get("LPK_BUILD_DIR",
                                                          os.path.join(ROOT, "build")))
    ap.add_argument("--paths", default="relay,kubesim",
                    help="comma list of relay and kubesim (default both)")
    ap.add_argument("--streams", type=int, default=16)
    ap.add_argument("--drops", type=int, default=40)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    args = ap.parse_args()
    paths = args.paths.split(",")
    if not paths or set(paths) - {"relay", "kubesim"}:
        ap.error(f"--paths wants relay, kubesim or both, not '{args.paths}'")
    plots.check_or_exit("resume.py")
    kubesim_session.use_build(args.build_dir)
    rows = []
    if "relay" in paths:
        rows += relay_rows(args)
    if "kubesim" in paths:
        rows += kubesim_rows(args)
    write_results(rows, args.out, " ".join(["bench/resume.py", *sys.argv[1:]]))
    plots.regenerate(args.out, "resume")
    return 1 if any(r["failed_streams"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())

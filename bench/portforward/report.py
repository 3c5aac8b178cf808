#!/usr/bin/python3
"""Turns bench/portforward/run.sh samples (JSON lines) into portforward.md and portforward.json:
medians over the repetitions and ratios of lpk against the peers measured in the same run."""

import argparse
import datetime
import json
import os
import platform
import statistics

PEERS = ("lpk", "cpp", "python")
NAMES = {"lpk": "lpk (one WebSocket, tunnel)",
         "cpp": "C++ kube::PortForward (WebSocket per connection)",
         "python": "python client (WebSocket per connection)"}
ROWS = (  # key, label, unit, higher is better
    ("fetch.gbit_s", "bulk download, one connection (Gbit/s)", "Gbit/s", True),
    ("ttfb.p50_us", "connect to first byte p50 (us)", "us", False),
    ("ttfb.p99_us", "connect to first byte p99 (us)", "us", False),
)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("samples")
    ap.add_argument("out")
    ap.add_argument("--command", required=True)
    ap.add_argument("--mib", type=int, required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--reps", type=int, required=True)
    ap.add_argument("--commit", required=True)
    a = ap.parse_args()
    values = {}  # key -> peer -> [samples]
    with open(a.samples) as f:
        for line in f:
            s = json.loads(line)
            for field, v in s["result"].items():
                values.setdefault(f"{s['metric']}.{field}", {}).setdefault(s["peer"], []).append(v)
    median = {k: {p: statistics.median(v) for p, v in per.items()} for k, per in values.items()}

    def ratio(key, peer, higher_better):
        m = median.get(key, {})
        if "lpk" not in m or not m.get(peer):
            return None
        # Always "how many times better lpk is": > 1 means lpk wins.
        return m["lpk"] / m[peer] if higher_better else m[peer] / m["lpk"]

    table = ["| metric | " + " | ".join(NAMES[p] for p in PEERS) +
             " | lpk vs python | lpk vs cpp |", "|---|" + "---:|" * (len(PEERS) + 2)]
    ratios = {}
    for key, label, unit, hb in ROWS:
        cells = []
        for p in PEERS:
            v = median.get(key, {}).get(p)
            cells.append("–" if v is None else (f"{v:.2f}" if unit == "Gbit/s" else f"{v:,.0f}"))
        rp, rc = ratio(key, "python", hb), ratio(key, "cpp", hb)
        ratios[key] = {"python": rp, "cpp": rc}
        fmt = lambda r: "–" if r is None else f"{r:.2f}x"
        table.append(f"| {label} | " + " | ".join(cells) + f" | {fmt(rp)} | {fmt(rc)} |")

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    md = [
        "# lpk port-forward benchmark", "",
        f"Command: `{a.command}`", "",
        *table, "",
        "Ratios are \"times better for lpk\": throughput lpk/peer, latency peer/lpk; above 1x "
        "lpk wins.", "",
        f"Measured {now} on {os.cpu_count()} CPUs, kernel {platform.release()}, load average at "
        f"the end {load}; lpk commit {a.commit}. Median of {a.reps} repetition(s); "
        f"{a.mib} MiB per download; {a.count} connections per first-byte test, opened one after "
        "another.", "",
        "Path: every peer goes through lpk-kubesim's API server (TLS, client certificate) and its "
        "port-forward WebSocket (`v4.channel.k8s.io`) into one pod whose two containers are "
        "lpk-agent (`--listen 127.0.0.1:4590`) and the bench server (port 7000). lpk = "
        "`lpk-proxy run --agent-pod default/bench` with one WebSocket to the agent for the whole "
        "run and a tunnel stream per connection (the agent dials 127.0.0.1:7000 in the pod); "
        "python = `kubernetes.stream.portforward` from python3-kubernetes, a new WebSocket to "
        "pod port 7000 for each connection; cpp = lpk's `kube::PortForward`, a new WebSocket per "
        "connection, no tunnel.", "",
        "Throughput: time from opening the connection (for the per-connection peers: the "
        "WebSocket) until the last byte of the download. First byte: time from connect (or "
        "WebSocket start) to the server's 1-byte answer to a 1-byte request.",
    ]
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "portforward.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    with open(os.path.join(a.out, "portforward.json"), "w") as f:
        json.dump({"command": a.command, "measured": now, "commit": a.commit, "load": load,
                   "nproc": os.cpu_count(), "kernel": platform.release(),
                   "mib": a.mib, "count": a.count, "reps": a.reps, "median": median,
                   "samples": values, "lpk_advantage": ratios}, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()

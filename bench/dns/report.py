#!/usr/bin/env python3
"""Turns the samples of bench/dns/run.sh into bench/results/dns.md and dns.json.

usage: report.py SAMPLES_JSONL OUT_MD OUT_JSON SECONDS REPS DNSPERF_VERSION DNSMASQ_VERSION PRIORITY
Each number is the median over the repetitions; ratios are lpk over dnsmasq in the same run.
"""
import datetime
import json
import os
import platform
import statistics
import sys

samples_path, out_md, out_json, seconds, reps, dnsperf_v, dnsmasq_v, priority = sys.argv[1:9]
by = {}
for line in open(samples_path):
    s = json.loads(line)
    if s["value"] not in (None, "None"):
        by.setdefault(s["metric"], {}).setdefault(s["server"], []).append(float(s["value"]))
med = {m: {srv: statistics.median(v) for srv, v in d.items()} for m, d in by.items()}


def ratio(metric):
    d = med.get(metric, {})
    return d["lpk"] / d["dnsmasq"] if d.get("dnsmasq") else None


cluster_ratio, forward_ratio = ratio("cluster_qps"), ratio("forward_qps")
cluster_cpu_ratio, forward_cpu_ratio = ratio("cluster_per_cpu"), ratio("forward_per_cpu")
p99 = med.get("lat_p99_ms", {}).get("lpk")
floors = [
    ("cluster names qps >= 1.2x dnsmasq", cluster_ratio, cluster_ratio is not None and cluster_ratio >= 1.2),
    ("forwarded cached names qps >= 1.0x dnsmasq", forward_ratio, forward_ratio is not None and forward_ratio >= 1.0),
    ("p99 < 1 ms at half max rate (lpk)", p99, p99 is not None and p99 < 1.0),
    ("cluster names, queries per server CPU-second >= 1.2x dnsmasq", cluster_cpu_ratio,
     cluster_cpu_ratio is not None and cluster_cpu_ratio >= 1.2),
    ("forwarded cached names, queries per server CPU-second >= 1.0x dnsmasq", forward_cpu_ratio,
     forward_cpu_ratio is not None and forward_cpu_ratio >= 1.0),
]
meta = {
    "date": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"),
    "nproc": os.cpu_count(), "kernel": platform.release(), "load": os.getloadavg(),
    "seconds_per_run": int(seconds), "reps": int(reps), "dnsperf": dnsperf_v, "dnsmasq": dnsmasq_v,
    "priority": priority,
}
json.dump({"meta": meta, "samples": by, "medians": med,
           "ratios": {"cluster_qps": cluster_ratio, "forward_qps": forward_ratio,
                      "cluster_per_cpu": cluster_cpu_ratio, "forward_per_cpu": forward_cpu_ratio},
           "floors": [{"floor": f, "value": v, "passed": ok} for f, v, ok in floors]},
          open(out_json, "w"), indent=2)

fmt = lambda v, spec=",.0f": "n/a" if v is None else format(v, spec)
lines = [
    "# Stub DNS benchmark (issue 3)", "",
    f"{meta['date']}, {meta['nproc']} cores, kernel {meta['kernel']}, load "
    f"{', '.join(f'{x:.1f}' for x in meta['load'])} at the end; dnsperf {dnsperf_v}, {dnsmasq_v}.",
    f"`bench/dns/run.sh`: dnsperf -c 4, {seconds} s per run, {reps} runs per server interleaved "
    "(medians shown); each server pinned to one core with taskset, dnsperf on the other; "
    f"scheduling of servers and dnsperf: `{priority}`.", "",
    "| | lpk-dns | dnsmasq | lpk / dnsmasq |", "|---|---:|---:|---:|",
]
for metric, label in [("cluster_qps", "cluster names, queries/s (1,000 names)"),
                      ("forward_qps", "forwarded cached names, queries/s (1,000 names)"),
                      ("cluster_per_cpu", "cluster names, queries per server CPU-second"),
                      ("forward_per_cpu", "forwarded cached names, queries per server CPU-second")]:
    d = med.get(metric, {})
    lines.append(f"| {label} | {fmt(d.get('lpk'))} | {fmt(d.get('dnsmasq'))} | "
                 f"{fmt(ratio(metric), '.2f')}x |")
for metric, label in [("cluster_lost", "lost queries per run (cluster)"),
                      ("forward_lost", "lost queries per run (forwarded)")]:
    d = med.get(metric, {})
    lines.append(f"| {label} | {fmt(d.get('lpk'))} | {fmt(d.get('dnsmasq'))} | |")
for metric, label in [("half_rate", "half of max rate, queries/s"),
                      ("lat_p50_ms", "p50 latency at half max rate, ms"),
                      ("lat_p99_ms", "p99 latency at half max rate, ms")]:
    d = med.get(metric, {})
    spec = ",.0f" if metric == "half_rate" else ".3f"
    lines.append(f"| {label} | {fmt(d.get('lpk'), spec)} | {fmt(d.get('dnsmasq'), spec)} | |")
lines += ["", "queries/s is what dnsperf measured; on this 2-core machine dnsperf (one core) saturates "
          "near 110k qps, so when a server is faster than the client both show the client's "
          "limit. Queries per server CPU-second (answers / CPU time the server used during the "
          "same runs) is the server's capacity on one core.",
          "", "| floor (issue 3) | value | |", "|---|---:|---|"]
for f, v, ok in floors:
    lines.append(f"| {f} | {fmt(v, '.3f')} | {'pass' if ok else 'FAIL'} |")
lines += ["", "All runs: " + ", ".join(f"{m} {srv} {v}" for m, d in by.items() for srv, v in d.items()), ""]
open(out_md, "w").write("\n".join(lines))

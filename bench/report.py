#!/usr/bin/env python3
"""Turns the samples of bench/run.sh into bench/results/tunnel.md and tunnel.json.

usage: report.py META_JSON SAMPLES_JSONL OUT_MD OUT_JSON
Each metric is the median over the repetitions; ratios are lpk over the peer measured in the
same run. The floors are those of issue 2.
"""
import json
import statistics
import sys

PEERS = ["raw", "socat", "ssh", "lpk"]
HEAD = {"raw": "raw", "socat": "socat", "socat2": "2 socats", "ssh": "ssh -L", "lpk": "lpk"}


def columns(med):
    """The four peers of the issue, plus two socats in series when that optional peer ran."""
    ran_socat2 = any("socat2" in peers for peers in med.values())
    return ["raw", "socat"] + (["socat2"] if ran_socat2 else []) + ["ssh", "lpk"]


def load(samples_path):
    by = {}
    with open(samples_path) as f:
        for line in f:
            s = json.loads(line)
            if s["value"] is not None:
                by.setdefault(s["metric"], {}).setdefault(s["peer"], []).append(s["value"])
    return by


def medians(by):
    return {m: {p: statistics.median(v) for p, v in peers.items()} for m, peers in by.items()}


def added_latency(med):
    lat = med.get("lat_p50", {})
    if "raw" not in lat:
        return {}
    return {p: max(0.0, v - lat["raw"]) for p, v in lat.items()}


def ratio(a, b):
    return a / b if a is not None and b not in (None, 0) else None


def floors(med, added):
    """{row key: [(description, lpk value, passed)]} for every floor of issue 2."""
    get = lambda m, p: med.get(m, {}).get(p)
    tp = {p: get("iperf_p1", p) for p in PEERS}
    out = {}
    r_socat, r_ssh = ratio(tp["lpk"], tp["socat"]), ratio(tp["lpk"], tp["ssh"])
    out["iperf_p1"] = [("single-stream throughput >= 0.8x socat", r_socat,
                        r_socat is not None and r_socat >= 0.8),
                       ("single-stream throughput >= 1.3x ssh -L", r_ssh,
                        r_ssh is not None and r_ssh >= 1.3)]
    r = ratio(added.get("lpk"), added.get("socat"))
    out["lat_added"] = [("added p50 latency <= 2x socat's", r, r is not None and r <= 2.0)]
    v = get("conn1_p50", "lpk")
    out["conn1_p50"] = [("stream open p50 <= 100 us", v, v is not None and v <= 100)]
    v = get("connN_rate", "lpk")
    out["connN_rate"] = [("new streams >= 20,000/s", v, v is not None and v >= 20000)]
    for side, who in (("client", "proxy"), ("server", "agent")):
        v = get(f"idle_{side}_kib", "lpk")
        out[f"idle_{side}_kib"] = [(f"<= 4 KiB RSS per idle stream ({who})", v,
                                    v is not None and v <= 4)]
    return out


def fmt(v, digits):
    if v is None:
        return "–"
    if digits == 0:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"


def fmt_ratio(r):
    return "–" if r is None else f"{r:.2f}x"


def rows(meta, med, added):
    c = meta["options"]["concurrency"]
    return [
        # key, label, digits, floor text
        ("iperf_p1", "iperf3 throughput, 1 stream (Gbit/s)", 2, ">= 0.8x socat, >= 1.3x ssh"),
        ("iperf_p8", "iperf3 throughput, 8 streams (Gbit/s)", 2, ""),
        ("lat_p50", "sockperf 64 B latency p50 (us, half RTT)", 1, ""),
        ("lat_added", "added p50 latency over raw (us)", 1, "<= 2x socat's"),
        ("lat_p99", "sockperf 64 B latency p99 (us)", 1, ""),
        ("conn1_p50", "stream open p50, connect to first byte, c=1 (us)", 1, "<= 100 us"),
        ("conn1_p99", "stream open p99, c=1 (us)", 1, ""),
        ("conn1_rate", "new streams/s, c=1", 0, ""),
        ("connN_rate", f"new streams/s, c={c}", 0, ">= 20,000/s"),
        ("connN_p50", f"stream open p50, c={c} (us)", 1, ""),
        ("connN_p99", f"stream open p99, c={c} (us)", 1, ""),
        ("idle_open", "idle streams held for the memory rows", 0, ""),
        ("idle_client_kib", "RSS per idle stream, client side (KiB): socat / ssh / lpk-proxy", 2,
         "<= 4 KiB"),
        ("idle_server_kib", "RSS per idle stream, server side (KiB): "
         + ("2nd socat / " if "socat2" in columns(med) else "") + "sshd / lpk-agent", 2, "<= 4 KiB"),
    ]


def table(meta, med, added, fl):
    cols = columns(med)
    lines = ["| metric | " + " | ".join(HEAD[p] for p in cols) + " | lpk/socat | lpk/ssh | floor | pass |",
             "|---|" + "---:|" * (len(cols) + 2) + "---|---|"]
    for key, label, digits, floor_text in rows(meta, med, added):
        vals = added if key == "lat_added" else med.get(key, {})
        cells = [fmt(vals.get(p), digits) for p in cols]
        rs = ["–", "–"] if key == "idle_open" else [
            fmt_ratio(ratio(vals.get("lpk"), vals.get(p))) for p in ("socat", "ssh")]
        verdicts = [ok for _, _, ok in fl.get(key, [])]
        passed = "" if not verdicts else ("yes" if all(verdicts) else "**NO**")
        if verdicts and "lpk" not in vals:
            passed = "not run"
        lines.append(f"| {label} | " + " | ".join(cells + rs + [floor_text, passed]) + " |")
    return "\n".join(lines)


def floor_list(fl):
    out = ["Floors of issue 2 (lpk):"]
    for items in fl.values():
        for desc, v, ok in items:
            unit = "x" if "x " in desc else ""
            if v is None:
                out.append(f"- {desc}: not measured")
            else:
                out.append(f"- {desc}: {v:,.2f}{unit}, {'pass' if ok else 'FAIL'}")
    return "\n".join(out)


def caveats(med):
    """Facts of this run that a reader needs before judging a floor."""
    out = []
    raw_rate = max(med.get("conn1_rate", {}).get("raw", 0), med.get("connN_rate", {}).get("raw", 0))
    if 0 < raw_rate < 20000:
        out.append(f"Raw loopback itself made only {raw_rate:,.0f} new connections/s on this "
                   "machine (client, server and relays share its CPUs), so the 20,000/s floor "
                   "cannot be shown here by any peer; compare lpk with raw and socat instead.")
    ssh_p50, ssh_rate = med.get("conn1_p50", {}).get("ssh"), med.get("conn1_rate", {}).get("ssh")
    if ssh_p50 and ssh_rate and ssh_rate * ssh_p50 < 0.2e6:
        out.append("ssh -L at concurrency 1 spends most of each connection waiting for the "
                   "server's close to come through (about 40 ms, Nagle and delayed ACK on the "
                   "non-interactive ssh connection), hence its low rate next to its open latency.")
    return out


def notes(meta, med):
    o = meta["options"]
    return "\n\n".join(caveats(med) + [
        f"Measured {meta['date']} on {meta['nproc']} CPUs ({meta['cpu']}), kernel {meta['kernel']}, "
        f"load average at the end {meta['loadavg_at_end']}; nothing pinned, "
        f"nice {o.get('nice', 0)}; lpk commit "
        f"{meta['commit']} ({meta['build_type'] or 'unknown'} build).",
        f"Median of {o['reps']} repetition(s); iperf3 and sockperf {o['secs']} s per test; "
        f"connection rate {o['conn_secs']} s per test at concurrency 1 and {o['concurrency']}; "
        f"{o['idle']} idle streams for lpk ({o['socat_idle']} for socat, {o.get('ssh_idle', '?')} for "
        "ssh -L, which opens channels ever slower as they add up; see the row of streams held).",
        f"Peers: raw = client to server directly; socat {meta['tools']['socat']} = one relay "
        f"(`fork`, default {meta['socat_buffer_bytes']} B buffer, backlog raised to 4096); "
        f"ssh -L = {meta['tools']['ssh'].split(',')[0]}, ssh and sshd, aes128-gcm, one connection "
        "carrying all forwards; lpk = lpk-proxy, one tunnel over TCP, lpk-agent (log level warn).",
        "Latency is sockperf's half round trip. Stream open = time from connect() to the 1-byte "
        "answer; the server then closes. Idle memory: VmRSS after minus before opening the "
        "streams (each stream echoed one byte end to end first), divided by the streams open; "
        "socat is the Pss sum of its processes (one per connection), sshd the VmRSS sum of its "
        "processes.",
    ])


def main():
    meta_path, samples_path, out_md, out_json = sys.argv[1:5]
    with open(meta_path) as f:
        meta = json.load(f)
    by = load(samples_path)
    med = medians(by)
    added = added_latency(med)
    fl = floors(med, added)
    parts = ["# lpk tunnel benchmark", f"Command: `{meta.get('command', 'bench/run.sh')}`",
             table(meta, med, added, fl), floor_list(fl), notes(meta, med)]
    md = "\n\n".join(parts) + "\n"
    with open(out_md, "w") as f:
        f.write(md)
    doc = {"meta": meta, "median": med, "added_latency_p50_us": added, "samples": by,
           "floors": [{"metric": m, "floor": d, "lpk_value": v, "pass": ok}
                      for m, items in fl.items() for d, v, ok in items]}
    with open(out_json, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
    print(md)


if __name__ == "__main__":
    main()

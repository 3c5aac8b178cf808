#!/usr/bin/python3
"""Throughput of two builds of lpk side by side, interleaved in one run: did a change cost
anything? (issue 10's floor: resumption keeps throughput within 5% of before.)

For each build: lpk-proxy run -> one tunnel -> lpk-agent in front of an iperf3 server on
127.0.0.1; iperf3 with 1 and with 8 streams, SECS seconds each, the builds alternating ROUNDS
times (A B B A ...) so drift in the machine's load cancels. Prints the medians and B/A.

  bench/ab_throughput.py --a BUILD_DIR_BEFORE --b BUILD_DIR_AFTER [--secs N] [--rounds N]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import lpk_e2e as e2e  # noqa: E402


def tunnel(build, iperf_port):
    e2e.use_build(build)
    agent = e2e.Agent()
    proxy = e2e.Proxy(agent.tunnel_str, maps=[f"127.0.0.1:0=127.0.0.1:{iperf_port}"])
    return agent, proxy


def gbits(addr, streams, secs):
    r = subprocess.run(["iperf3", "-c", addr[0], "-p", str(addr[1]), "-t", str(secs), "-O", "1",
                        "-P", str(streams), "-J"], capture_output=True, text=True,
                       timeout=secs + 60)
    return json.loads(r.stdout)["end"]["sum_received"]["bits_per_second"] / 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--a", required=True, help="build directory before the change")
    ap.add_argument("--b", required=True, help="build directory after the change")
    ap.add_argument("--secs", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=4)
    args = ap.parse_args()
    e2e.require_tools("iperf3")
    # The console lines both builds print: read from the newer one.
    e2e.use_build(args.b)
    e2e.load_console_lines()
    port = e2e.free_port()
    server = e2e.Proc(["iperf3", "-s", "-B", "127.0.0.1", "-p", str(port)], name="iperf3")
    e2e.wait_port("127.0.0.1", port)
    results = {(b, n): [] for b in ("a", "b") for n in (1, 8)}
    try:
        for r in range(args.rounds):
            for which in (("a", "b") if r % 2 == 0 else ("b", "a")):
                agent, proxy = tunnel(getattr(args, which), port)
                try:
                    for n in (1, 8):
                        results[(which, n)].append(gbits(proxy.listens[0], n, args.secs))
                finally:
                    e2e.stop_all(proxy, agent)
    finally:
        server.p.kill()  # iperf3 -s exits 1 on SIGTERM, which Proc.stop() reports as a failure
        server.p.wait()
    print(f"iperf3 through lpk, {args.rounds} rounds x {args.secs} s, median Gbit/s:")
    for n in (1, 8):
        a = statistics.median(results[("a", n)])
        b = statistics.median(results[("b", n)])
        print(f"  -P {n}: before {a:.2f}  after {b:.2f}  after/before {b / a:.3f}   (runs: before "
              + " ".join(f"{x:.2f}" for x in results[("a", n)]) + "; after "
              + " ".join(f"{x:.2f}" for x in results[("b", n)]) + ")")


if __name__ == "__main__":
    main()

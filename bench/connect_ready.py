#!/usr/bin/python3
"""Time from `lpk-proxy connect` to its `ready` line for one service against two, on
lpk-kubesim running the demo (issue 12 floor: a second service adds no more than its own
rollout). Each rep connects `api` (2 replicas) alone, `worker` (1 replica) alone, then both
in one session; each session is ended with SIGTERM (which restores) before the next.

Usage: bench/connect_ready.py BUILD_DIR [--reps N] [--out FILE.json]
Needs root (kubesim makes network namespaces), kubectl, redis-server and nginx."""

import argparse
import json
import os
import signal
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
import kubesim_session  # noqa: E402
from kubesim_session import e2e  # noqa: E402

DEMO = os.path.join(HERE, "..", "tools", "kubesim", "demo")
CASES = {"api": ["--service", "api"],
         "worker": ["--service", "worker"],
         "api+worker": ["--service", "api", "--service", "worker",
                        "--local-port", "api:18080:8080", "--local-port", "worker:18081:8080"]}


def time_to_ready(proxy_bin, sim, env, args):
    """Seconds from start to `ready`, and from SIGTERM to exit (the restore)."""
    started = time.monotonic()
    proxy = e2e.Proc([proxy_bin, "connect", "--kubeconfig", sim.kubeconfig, "-n", "demo", *args],
                     name="lpk-proxy connect", env=env)
    try:
        proxy.wait_line(e2e.PROXY_LINES["ready"], timeout=150)
        ready = time.monotonic() - started
    finally:
        stopping = time.monotonic()
        proxy.stop(signal.SIGTERM, 150)
    return ready, time.monotonic() - stopping


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("build_dir")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out")
    a = parser.parse_args()
    proxy_bin = os.path.join(a.build_dir, "proxy", "lpk-proxy")
    kubesim_session.use_build(a.build_dir)
    results = {name: {"ready_s": [], "restore_s": []} for name in CASES}
    with kubesim_session.running("lpk-bench-ready-", "--manifests", DEMO) as (sim, env):
        for d in ("redis", "api", "worker", "web"):
            sim.kubectl("-n", "demo", "rollout", "status", "deployment/" + d, "--timeout=90s",
                        timeout=120)
        for _ in range(a.reps):
            for name, args in CASES.items():
                ready, restore = time_to_ready(proxy_bin, sim, env, args)
                results[name]["ready_s"].append(round(ready, 2))
                results[name]["restore_s"].append(round(restore, 2))
    for name, r in results.items():
        r["ready_median_s"] = statistics.median(r["ready_s"])
        print(f"MEASURED connect to ready, {name}: median {r['ready_median_s']:.2f} s "
              f"(runs {r['ready_s']}); SIGTERM to restored: median "
              f"{statistics.median(r['restore_s']):.2f} s")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()

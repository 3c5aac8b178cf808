#!/usr/bin/python3
"""How long do streams stall when the link drops? (issue 10's resume-time floor: p50 <= 200 ms,
p99 <= 1 s.)

lpk-proxy run -> lpk-faultrelay -> lpk-agent, with STREAMS connections to an echo server, each
ping-ponging one small message at a time. The relay drops the link (RST to both ends) DROPS
times; for each drop the figure is the time from the drop until every stream has completed a
round trip again: the proxy noticing, dialing, the resumed hello, both lists, the bytes sent
again, and the next echo. That includes more than "link usable again -> data flowing" (the
issue's definition), so it is an upper bound of it. The peer a user would otherwise have,
`kubectl port-forward`, has no figure: its connections end with the link.

  bench/resume.py [--build-dir DIR] [--streams N] [--drops N] [--out DIR]

Writes resume.md and resume.json to --out (default bench/results) and prints the table.
"""

import argparse
import json
import os
import statistics
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import lpk_e2e as e2e  # noqa: E402


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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", default=os.environ.get("LPK_BUILD_DIR",
                                                          os.path.join(ROOT, "build")))
    ap.add_argument("--streams", type=int, default=16)
    ap.add_argument("--drops", type=int, default=40)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    args = ap.parse_args()
    e2e.use_build(args.build_dir)
    e2e.load_console_lines()
    server = e2e.Server(e2e.echo_handler)
    agent = e2e.Agent(log_level="warn")
    relay = e2e.FaultRelay(agent.tunnel_str)
    proxy = e2e.Proxy(relay.addr_str, maps=["127.0.0.1:0=%s:%d" % server.addr], log_level="warn")
    streams, times = [], []
    try:
        streams = [PingPong(proxy.listens[0]) for _ in range(args.streams)]
        time.sleep(0.5)
        for i in range(args.drops):
            dropped = time.monotonic()
            relay.fault("drop")
            deadline = dropped + 30
            while any(s.last <= dropped for s in streams) and time.monotonic() < deadline:
                if any(s.error for s in streams):
                    raise SystemExit("a stream failed: " + next(s.error for s in streams if s.error))
                time.sleep(0.001)
            times.append(max(s.last for s in streams) - dropped)
            time.sleep(0.2)
        failed = [s.error for s in streams if s.error]
    finally:
        for s in streams:
            s.close()
        e2e.stop_all(proxy, relay, agent)
        server.close()
    ms = [t * 1000 for t in times]
    result = {"streams": args.streams, "drops": args.drops, "failed_streams": len(failed),
              "p50_ms": round(percentile(ms, 50), 1), "p99_ms": round(percentile(ms, 99), 1),
              "max_ms": round(max(ms), 1), "mean_ms": round(statistics.mean(ms), 1),
              "command": " ".join(["bench/resume.py", *sys.argv[1:]])}
    table = ("| path | streams | drops | streams lost | resume p50 | p99 | max |\n"
             "|---|---|---|---|---|---|---|\n"
             f"| lpk run, fault relay drop (RST) | {args.streams} | {args.drops} | {len(failed)} | "
             f"{result['p50_ms']} ms | {result['p99_ms']} ms | {result['max_ms']} ms |\n"
             "| kubectl port-forward | - | - | all | (no resumption) | | |\n")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "resume.json"), "w") as f:
        json.dump(result, f, indent=2)
    with open(os.path.join(args.out, "resume.md"), "w") as f:
        f.write(f"Measured with `{result['command']}` (drop -> every stream round-trips again).\n\n")
        f.write(table)
    print(table)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

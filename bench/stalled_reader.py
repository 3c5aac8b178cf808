#!/usr/bin/python3
"""How much does a stalled stream slow the others? (The figure tests/e2e/test_stalled_reader.py
does not assert: that test only checks that the others keep moving.)

Ten streams pull data through lpk-proxy -> one tunnel -> lpk-agent from a source server and are
read continuously. Their aggregate rate is measured in windows without (B) and with (S) an
eleventh stream whose client never reads; the windows alternate S B, B S, ... so that drift in
the machine's load cancels, and the result is sum(S rates) / sum(B rates): 1.0 means the stalled
stream costs the others nothing. Run it on a quiet machine; the test's Python readers share one
interpreter, so a busy machine lowers the figure by starving them, not lpk.

  bench/stalled_reader.py [--build-dir DIR] [--pairs N] [--window SECONDS]
"""

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import lpk_e2e as e2e  # noqa: E402
import test_stalled_reader as sr  # noqa: E402


def rate(movers, window):
    before, t0 = list(movers.counts), time.monotonic()
    time.sleep(window)  # the measurement interval itself
    after, t1 = list(movers.counts), time.monotonic()
    return sum(a - b for a, b in zip(after, before)) / (t1 - t0)


def stalled_rate(movers, proxy, server, sid, window):
    """The movers' rate while stream `sid` is stalled (once it has filled its buffers)."""
    s = e2e.connect(proxy.listens[0])
    try:
        s.sendall(sid.to_bytes(4, "big"))
        last, same = -1, 0
        while same < 5:  # plateau: the stalled stream's window and buffers are full
            time.sleep(0.1)
            now = server.sent.get(sid, 0)
            same, last = (same + 1 if now == last and now > 0 else 0), now
        return rate(movers, window), last
    finally:
        s.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", default=os.environ.get("LPK_BUILD_DIR",
                                                          os.path.join(ROOT, "build")))
    ap.add_argument("--pairs", type=int, default=6)
    ap.add_argument("--window", type=float, default=1.5)
    args = ap.parse_args()
    e2e.use_build(args.build_dir)
    e2e.load_console_lines()
    server = e2e.Server(sr.source_handler)
    server.sent = {}
    agent = e2e.Agent()
    proxy = e2e.Proxy(agent.tunnel_str, ["127.0.0.1:0=%s:%d" % server.addr])
    movers = sr.Movers(proxy.listens[0])
    try:
        rate(movers, args.window)  # warm-up: windows grow, caches fill
        stalled, base, held = 0.0, 0.0, []
        for i in range(args.pairs):
            for phase in ("SB" if i % 2 == 0 else "BS"):
                if phase == "B":
                    base += rate(movers, args.window)
                else:
                    r, h = stalled_rate(movers, proxy, server, 1000 + i, args.window)
                    stalled += r
                    held.append(h)
        print(f"movers alone {base / args.pairs / 1e6:.0f} MB/s, beside a stalled stream "
              f"{stalled / args.pairs / 1e6:.0f} MB/s: ratio {stalled / base:.2f} "
              f"({args.pairs} window pairs of {args.window}s); a stalled stream holds "
              f"{min(held) >> 10}-{max(held) >> 10} KiB")
    finally:
        movers.close()
        e2e.stop_all(proxy, agent)
        server.close()


if __name__ == "__main__":
    main()

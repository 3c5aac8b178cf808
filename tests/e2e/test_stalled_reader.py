"""Streams whose reader stops must not stop the others (issue 2).

Ten streams pull data from a source server through lpk, read continuously. Then two more
streams are opened whose client never reads, so that their windows and socket buffers fill.
While those stay stalled, every one of the ten must still receive more than could have been
buffered anywhere between the tunnel and its reader: a head-of-line block (the link, or the
agent's reads, held up by a stalled stream) would stop them at that point. Each stalled stream
must hold only a bounded amount in flight and deliver its data intact once it is read again.

No throughput figure is asserted here: under load (2 shared cores, a sanitizer build) such
figures measure the machine, and a window in which a starved Python reader thread happens not
to run looks like a stall. `bench/stalled_reader.py` measures how much a stalled stream slows
the others.
"""

import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lpk_e2e as e2e  # noqa: E402

MOVERS = 10
STALLED = (1000, 1001)  # stream ids (seeds of their data) of the streams nobody reads
MAX_WINDOW = 16 << 20  # lpk's largest per-stream window (SessionOptions::max_window)
MAX_IN_FLIGHT = 64 << 20  # bytes a stalled stream may hold inside lpk + socket buffers
CHECK = 4 << 20  # stalled-stream bytes verified after resuming (multiple of the chunk size)


def most_a_reader_can_lag():
    """An upper bound on the bytes of one stream between the tunnel and its reader: the
    client socket's receive buffer (tcp_rmem max) and lpk-proxy's buffer (one window)."""
    with open("/proc/sys/net/ipv4/tcp_rmem") as f:
        rmem_max = int(f.read().split()[2])
    return rmem_max + MAX_WINDOW


# Each mover must get this much while the stalled streams do not move at all.
MOVE_EACH = most_a_reader_can_lag() + (8 << 20)


def source_handler(c, server):
    """Reads a 4-byte stream id, then sends that id's pseudo-random stream until the peer goes."""
    sid = int.from_bytes(e2e.recv_all_n(c, 4), "big")
    src = e2e.DataSource(sid, 1 << 62)
    with server.lock:
        server.sent[sid] = 0
    try:
        while True:
            chunk = src.next()
            c.sendall(chunk)
            server.sent[sid] += len(chunk)
    except OSError:
        pass


class Movers:
    """MOVERS connections read continuously by threads; counts[i] is what stream i received."""

    def __init__(self, addr):
        self.counts = [0] * MOVERS
        self.stop = threading.Event()
        self.socks = []
        for i in range(MOVERS):
            s = e2e.connect(addr)
            s.sendall(i.to_bytes(4, "big"))
            self.socks.append(s)
        self.threads = [threading.Thread(target=self._read, args=(i,), daemon=True)
                        for i in range(MOVERS)]
        for t in self.threads:
            t.start()

    def _read(self, i):
        buf = bytearray(1 << 20)
        while not self.stop.is_set():
            try:
                n = self.socks[i].recv_into(buf)
            except OSError:
                return  # closed by close() below
            if n == 0:
                return
            self.counts[i] += n

    def close(self):
        self.stop.set()
        for s in self.socks:
            s.shutdown(socket.SHUT_RDWR)
        for t in self.threads:
            t.join(5)
        for s in self.socks:
            s.close()


class StalledReaderTest(unittest.TestCase):
    def test_stalled_streams_do_not_stop_the_others(self):
        server = e2e.Server(source_handler)
        server.sent = {}
        self.addCleanup(server.close)
        agent = e2e.Agent()
        self.addCleanup(agent.stop)
        proxy = e2e.Proxy(agent.tunnel_str, ["127.0.0.1:0=%s:%d" % server.addr])
        self.addCleanup(proxy.stop)
        movers = Movers(proxy.listens[0])
        self.addCleanup(movers.close)
        stalled = []
        for sid in STALLED:
            s = e2e.connect(proxy.listens[0])
            self.addCleanup(s.close)
            s.sendall(sid.to_bytes(4, "big"))
            stalled.append(s)

        started = time.monotonic()
        held = self.movers_pass_stalled_streams(movers, server)
        secs = time.monotonic() - started
        print(f"\n  each of {MOVERS} streams received {MOVE_EACH >> 20} MiB while {len(STALLED)} "
              f"stalled streams held {', '.join(f'{h >> 10} KiB' for h in held)} "
              f"({secs:.1f}s in all)", flush=True)

        # Reading again delivers exactly the stream the server sent, from byte 0.
        for sid, s in zip(STALLED, stalled):
            s.settimeout(10 * e2e.SLACK)
            self.assertEqual(e2e.recv_stream(s, limit=CHECK),
                             (CHECK, e2e.expected_digest(sid, CHECK)),
                             f"stalled stream {sid} after resuming")
        self.assertEqual(server.errors, [])
        self.assertTrue(proxy.alive() and agent.alive())

    def movers_pass_stalled_streams(self, movers, server, timeout=60.0):
        """Waits until every mover has received MOVE_EACH bytes since the stalled streams last
        grew; returns what those hold. Fails if a stalled stream holds more than MAX_IN_FLIGHT
        or if some mover does not get there by the deadline."""
        deadline = time.monotonic() + timeout * e2e.SLACK
        held = None
        while True:
            now = [server.sent.get(sid, 0) for sid in STALLED]
            self.assertLessEqual(max(now), MAX_IN_FLIGHT,
                                 "a stalled stream is buffered without bound")
            if now != held:  # (first pass, or a stalled stream still filling its buffers)
                held, since = now, list(movers.counts)
            behind = [i for i in range(MOVERS) if movers.counts[i] - since[i] < MOVE_EACH]
            if not behind and min(held) > 0:
                return held
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"streams {behind} received only "
                    f"{[(movers.counts[i] - since[i]) >> 10 for i in behind]} KiB of "
                    f"{MOVE_EACH >> 10} KiB within {timeout * e2e.SLACK:.0f}s while "
                    f"{len(STALLED)} streams were stalled (holding {[h >> 10 for h in held]} KiB)")
            time.sleep(0.1)  # sampling counters, bounded by the deadline


if __name__ == "__main__":
    e2e.main()

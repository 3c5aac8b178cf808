"""Shared harness for lpk's end-to-end tests (Python 3 stdlib only).

Every script in tests/e2e runs the real lpk-agent and lpk-proxy (paths from --agent/--proxy or
the LPK_AGENT/LPK_PROXY environment) against real servers on loopback. Nothing here sleeps to
synchronise: we wait for a line on stdout, a port accepting, or a counter, always with a deadline.

Exit codes of `main()`: 0 all ran and passed, 1 a failure, 77 every test was skipped (ctest's
SKIP_RETURN_CODE), with the reasons printed.
"""

import argparse
import atexit
import hashlib
import os
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

SKIP_CODE = 77
AGENT = os.environ.get("LPK_AGENT", "")
PROXY = os.environ.get("LPK_PROXY", "")
# Extra seconds added to every deadline (a sanitizer build is several times slower).
SLACK = float(os.environ.get("LPK_E2E_SLACK", "1"))


# ---------------------------------------------------------------- processes


_children = []
SANITIZER_RE = re.compile(r"ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error: ")


@atexit.register
def _kill_children():
    """No lpk process outlives the test, whatever failed on the way."""
    for c in _children:
        if c.p.poll() is None:
            os.killpg(c.p.pid, signal.SIGKILL)
            c.p.wait()


class Proc:
    """A child process whose stdout lines we can wait for and whose stderr we keep."""

    def __init__(self, argv, name=None, netns=None, env=None):
        if netns:
            argv = ["ip", "netns", "exec", getattr(netns, "name", netns)] + list(argv)
        self.argv = list(argv)
        self.name = name or os.path.basename(argv[0])
        self.lines = []  # every stdout line seen so far
        self.err = []  # every stderr line seen so far
        self._cv = threading.Condition()
        self.p = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=env, text=True, bufsize=1,
                                  start_new_session=True)
        _children.append(self)
        self._threads = [threading.Thread(target=self._pump, args=(s, l), daemon=True)
                         for s, l in ((self.p.stdout, self.lines), (self.p.stderr, self.err))]
        for t in self._threads:
            t.start()

    def _pump(self, stream, sink):
        for line in stream:
            with self._cv:
                sink.append(line.rstrip("\n"))
                self._cv.notify_all()
        with self._cv:
            self._cv.notify_all()

    def wait_line(self, pattern, timeout=5.0):
        """Returns the re.Match of the first stdout line matching pattern."""
        return self.wait_lines(pattern, 1, timeout)[0]

    def wait_lines(self, pattern, count, timeout=5.0):
        """Waits until `count` stdout lines match pattern; returns their matches in order."""
        rx = re.compile(pattern)
        found = []

        def enough():
            found[:] = [m for m in map(rx.search, self.lines) if m]
            return len(found) >= count

        deadline = time.monotonic() + timeout * SLACK
        with self._cv:
            while not enough():
                left = deadline - time.monotonic()
                if left <= 0 or (self.p.poll() is not None and not self._threads[0].is_alive()):
                    raise AssertionError(
                        f"{self.name}: {len(found)}/{count} stdout lines matching {pattern!r} "
                        f"within {timeout}s (exit={self.p.poll()})\n{self.describe()}")
                self._cv.wait(min(left, 0.2))
        return found[:count]

    def wait_exit(self, timeout=5.0):
        try:
            rc = self.p.wait(timeout * SLACK)
        except subprocess.TimeoutExpired:
            return None
        for t in self._threads:
            t.join(2)
        for f in (self.p.stdout, self.p.stderr):
            if not any(t.is_alive() for t in self._threads):
                f.close()
        return rc

    def alive(self):
        return self.p.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=5.0):
        """Signals the process, waits for its exit (kills it after timeout); returns the exit
        code, None if it had to be killed. Raises if it had crashed (died of a signal) before,
        or if a sanitizer reported anything on its stderr."""
        rc = self.p.poll()
        if rc is not None:
            self.wait_exit(0)
            if rc < 0:
                raise AssertionError(f"{self.name} crashed earlier: {signal.Signals(-rc).name}\n"
                                     + self.describe())
        else:
            try:
                os.kill(self.p.pid, sig)
            except ProcessLookupError:
                pass
            rc = self.wait_exit(timeout)
            if rc is None:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.wait_exit()
        reports = [l for l in self.err if SANITIZER_RE.search(l)]
        if reports:
            raise AssertionError(f"{self.name}: sanitizer report: {reports[0]}\n"
                                 + self.describe(60))
        return rc

    def describe(self, tail=25):
        with self._cv:
            out, err = self.lines[-tail:], self.err[-tail:]
        return (f"--- {self.name} {' '.join(self.argv)}\n--- stdout (last {tail}):\n"
                + "\n".join(out) + f"\n--- stderr (last {tail}):\n" + "\n".join(err))


def split_hostport(s):
    host, _, port = s.rpartition(":")
    return host.strip("[]"), int(port)


class Agent(Proc):
    def __init__(self, *extra, netns=None, listen="127.0.0.1:0", log_level="warn"):
        super().__init__([AGENT, "--listen", listen, "--log-level", log_level, *extra],
                         name="lpk-agent", netns=netns)
        self.tunnel = split_hostport(self.wait_line(r"^tunnel (\S+)$").group(1))
        self.tunnel_str = f"{self.tunnel[0]}:{self.tunnel[1]}"


class Proxy(Proc):
    """lpk-proxy run; waits for one `listen` line per --map and then `ready`."""

    def __init__(self, agent_addr, maps=(), extra=(), netns=None, log_level="warn",
                 expect_listen=None, wait_ready=True):
        argv = [PROXY, "run", "--agent", agent_addr, "--log-level", log_level]
        for m in maps:
            argv += ["--map", m]
        super().__init__(argv + list(extra), name="lpk-proxy", netns=netns)
        n = len(maps) if expect_listen is None else expect_listen
        self.listens = [split_hostport(m.group(1))
                        for m in self.wait_lines(r"^listen (\S+) -> (\S+)$", n)]
        if wait_ready:
            self.wait_line(r"^ready$", timeout=10)


def require_binaries():
    missing = [n for n, p in (("lpk-agent", AGENT), ("lpk-proxy", PROXY))
               if not p or not os.access(p, os.X_OK)]
    if missing:
        skip_all(f"binaries not built: {', '.join(missing)} (pass --agent/--proxy)")


def require_tools(*tools):
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise unittest.SkipTest(f"missing tools: {', '.join(missing)} (run tools/install-deps.sh)")


def skip_all(reason):
    print(f"SKIP: {reason}", flush=True)
    sys.exit(SKIP_CODE)


# ---------------------------------------------------------------- sockets


def free_port(host="127.0.0.1"):
    """A port free right now, for servers that cannot be told to use port 0 (nginx, redis)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_port(host, port, timeout=5.0):
    deadline = time.monotonic() + timeout * SLACK
    while True:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError as e:
            if time.monotonic() > deadline:
                raise AssertionError(f"{host}:{port} not accepting after {timeout}s: {e}")
            time.sleep(0.02)  # polling the event itself: the port starting to accept


def connect(addr, timeout=5.0, netns=None):
    """A connected TCP socket (created inside `netns`, a NetNs, when given)."""
    if netns is None:
        s = socket.create_connection(addr, timeout=timeout * SLACK)
    else:
        s = netns.socket()
        s.settimeout(timeout * SLACK)
        s.connect(addr)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_all(sock, limit=1 << 30):
    """Reads until EOF; returns the bytes (a reset after data counts as EOF)."""
    chunks, n = [], 0
    while n < limit:
        try:
            b = sock.recv(1 << 16)
        except ConnectionResetError:
            break
        if not b:
            break
        chunks.append(b)
        n += len(b)
    return b"".join(chunks)


def recv_all_n(sock, n):
    """Reads exactly n bytes (fewer only if the peer closes first)."""
    buf = bytearray()
    while len(buf) < n:
        b = sock.recv(n - len(buf))
        if not b:
            break
        buf += b
    return bytes(buf)


def echo_once(addr, payload=b"ping through lpk\n", timeout=5.0, netns=None):
    """Sends payload, half-closes, returns what came back before EOF."""
    with connect(addr, timeout, netns) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        return recv_all(s)


def closed_within(sock, timeout):
    """Waits for the peer to close `sock`; returns (seconds, data received before the close)."""
    start = time.monotonic()
    sock.settimeout(timeout)
    data = bytearray()
    try:
        while True:
            b = sock.recv(1 << 16)
            if not b:
                break
            data += b
    except ConnectionResetError:
        pass
    except socket.timeout:
        raise AssertionError(f"connection still open after {timeout}s")
    return time.monotonic() - start, bytes(data)


def open_until_closed(addr, payload=b"", half_close=False, timeout=10.0, netns=None):
    """Connects, sends payload, waits for the peer to close. A reset at any step (even during
    connect: the accept-then-reset can beat connect's return) counts as the close.
    Returns (seconds since the connect started, data received)."""
    start = time.monotonic()
    try:
        with connect(addr, timeout, netns) as s:
            s.sendall(payload)
            if half_close:
                s.shutdown(socket.SHUT_WR)
            _, data = closed_within(s, timeout * SLACK)
    except (ConnectionResetError, BrokenPipeError):
        data = b""
    return time.monotonic() - start, data


def established_ports(port, side="sport", netns=None):
    """Local/remote ports of ESTABLISHED TCP connections where `side` (sport|dport) == port."""
    argv = ["ss", "-Htn", "state", "established", f"( {side} = :{port} )"]
    if netns:
        argv = ["ip", "netns", "exec", getattr(netns, "name", netns)] + argv
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    peers = []
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 4:
            peers.append((split_hostport(f[2])[1], split_hostport(f[3])[1]))
    return peers


# ---------------------------------------------------------------- data


class DataSource:
    """Deterministic pseudo-random byte stream, made of slices of a random pool at random offsets.

    Cheap enough to feed a GiB per second from Python (slices are zero-copy) and never periodic
    in a way that a framing bug (dropped, duplicated or reordered chunk) could hide behind.
    """

    _pools = {}

    def __init__(self, seed, total, chunk=1 << 18):
        if seed not in DataSource._pools:
            DataSource._pools[seed] = random.Random(seed).randbytes(8 << 20)
        self.pool = memoryview(DataSource._pools[seed])
        self.rng = random.Random(seed * 7919 + 1)
        self.left = total
        self.chunk = chunk

    def next(self):
        if self.left <= 0:
            return None
        n = min(self.chunk, self.left)
        off = self.rng.randrange(0, len(self.pool) - n)
        self.left -= n
        return self.pool[off:off + n]


def send_stream(sock, seed, total):
    """Sends `total` pseudo-random bytes; returns their sha256 hex digest."""
    h, src = hashlib.sha256(), DataSource(seed, total)
    while (chunk := src.next()) is not None:
        sock.sendall(chunk)
        h.update(chunk)
    return h.hexdigest()


def recv_stream(sock, limit=None):
    """Reads to EOF (or `limit` bytes); returns (byte count, sha256 hex digest)."""
    h, n = hashlib.sha256(), 0
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    while limit is None or n < limit:
        want = len(buf) if limit is None else min(len(buf), limit - n)
        k = sock.recv_into(view[:want])
        if k == 0:
            break
        h.update(view[:k])
        n += k
    return n, h.hexdigest()


def expected_digest(seed, total):
    h, src = hashlib.sha256(), DataSource(seed, total)
    while (chunk := src.next()) is not None:
        h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------- servers


class Server:
    """A threaded TCP server on loopback; `handler(conn, server)` runs per connection."""

    def __init__(self, handler, host="127.0.0.1", port=0, backlog=4096, sock=None):
        self.handler = handler
        self.sock = sock or socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(backlog)
        self.addr = self.sock.getsockname()[:2]
        self.lock = threading.Condition()
        self.accepted = 0
        self.active = 0
        self.peak = 0
        self.errors = []
        self.results = []  # whatever handlers append
        self._closing = False
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def _accept_loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
                self.active += 1
                self.peak = max(self.peak, self.active)
                self.lock.notify_all()
            threading.Thread(target=self._run, args=(c,), daemon=True).start()

    def _run(self, c):
        try:
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.handler(c, self)
        except Exception as e:  # recorded and asserted by the tests
            if not self._closing:
                with self.lock:
                    self.errors.append(repr(e))
        finally:
            c.close()
            with self.lock:
                self.active -= 1
                self.lock.notify_all()

    def wait_for(self, predicate, timeout=10.0, what="condition"):
        deadline = time.monotonic() + timeout * SLACK
        with self.lock:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"server: timed out waiting for {what} "
                                         f"(accepted={self.accepted} active={self.active})")
                self.lock.wait(min(left, 0.2))

    def record(self, item):
        with self.lock:
            self.results.append(item)
            self.lock.notify_all()

    def close(self):
        self._closing = True
        self.sock.close()


def echo_handler(c, server):
    """Echoes until EOF, then half-closes its side."""
    while True:
        b = c.recv(1 << 16)
        if not b:
            break
        c.sendall(b)
    c.shutdown(socket.SHUT_WR)


def eof_then_send_handler(n_bytes, seed=1):
    """Reads to EOF (hashing what came), then sends n_bytes of pseudo-random data and closes."""

    def handler(c, server):
        n, digest = recv_stream(c)
        server.record(("received", n, digest))
        send_stream(c, seed, n_bytes)
        c.shutdown(socket.SHUT_WR)

    return handler


# ---------------------------------------------------------------- entry point


def raise_fd_limit(want=16384):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def main():
    global AGENT, PROXY
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--agent", default=AGENT)
    ap.add_argument("--proxy", default=PROXY)
    args, rest = ap.parse_known_args()
    AGENT, PROXY = args.agent, args.proxy
    require_binaries()
    raise_fd_limit()
    # lpk's logs, state (address allocations) and control sockets go to a private directory,
    # never to the user's own.
    home = tempfile.mkdtemp(prefix="lpk-e2e-")
    atexit.register(shutil.rmtree, home, True)
    for var, sub in (("TMPDIR", "tmp"), ("XDG_STATE_HOME", "state"), ("XDG_RUNTIME_DIR", "run")):
        os.makedirs(os.path.join(home, sub), mode=0o700)
        os.environ[var] = os.path.join(home, sub)
    started = time.monotonic()
    prog = unittest.main(argv=[sys.argv[0], "-v"] + rest, exit=False)
    r = prog.result
    print(f"e2e: {r.testsRun} run, {len(r.failures)} failed, {len(r.errors)} errors, "
          f"{len(r.skipped)} skipped in {time.monotonic() - started:.1f}s", flush=True)
    for test, reason in r.skipped:
        print(f"SKIPPED {test.id()}: {reason}", flush=True)
    if r.failures or r.errors:
        sys.exit(1)
    if r.testsRun and len(r.skipped) == r.testsRun:
        sys.exit(SKIP_CODE)
    sys.exit(0)

"""Shared harness for lpk's end-to-end tests (Python 3 stdlib only).

Every script in tests/e2e runs the real lpk-agent and lpk-proxy (paths from --agent/--proxy or
the LPK_AGENT/LPK_PROXY environment) against real servers on loopback. Nothing here sleeps to
synchronise: we wait for a line on stdout, a port accepting, or a counter, always with a deadline.

What the harness checks on every test's behalf:
- every process a test starts (Proc) ends cleanly: stop() sends SIGTERM and wants exit 0 within
  a bound and no sanitizer report; a process that died on its own, hung, crashed or was left
  running fails the test that started it;
- a failing test prints the output of the processes it (and its class) started, and the tail of
  the lpk logs;
- the stdout lines lpk-proxy and lpk-agent print for scripts are matched with the patterns the
  binaries declare (PROXY_LINES, AGENT_LINES), never with a regex of the test's own;
- every skipped test is printed as `SKIPPED: <test id>: <reason>` (tools/test.sh collects them).

LPK_E2E_ECHO=1 also echoes every line the processes write, prefixed with their name, as they
write it (for watching a passing run, e.g. while hunting a race).

Exit codes of `main()`: 0 all ran and passed, 1 a failure, 77 every test was skipped (ctest's
SKIP_RETURN_CODE), with the reasons printed.
"""

import argparse
import atexit
import ctypes
import glob
import hashlib
import json
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
FAULTRELAY = os.environ.get("LPK_FAULTRELAY", "")  # tools/faultrelay; empty: not built
# Every deadline is multiplied by this (a sanitizer build is several times slower).
SLACK = float(os.environ.get("LPK_E2E_SLACK", "1"))
# The stdout lines lpk-proxy and lpk-agent print for scripts, as the binaries declare them
# (proxy/control/console.hpp, agent/agent.hpp): name -> regular expression. Filled by main().
PROXY_LINES = {}
AGENT_LINES = {}


def use_build(build_dir):
    """Runs the binaries of `build_dir` (a CMake build tree): for scripts outside ctest, such
    as the benchmarks, which have no --agent/--proxy arguments."""
    global AGENT, PROXY, FAULTRELAY
    AGENT = os.path.join(build_dir, "agent", "lpk-agent")
    PROXY = os.path.join(build_dir, "proxy", "lpk-proxy")
    FAULTRELAY = os.path.join(build_dir, "tools", "faultrelay", "lpk-faultrelay")


# ---------------------------------------------------------------- processes


_children = []  # every Proc started in this run, in order
SANITIZER_RE = re.compile(r"ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error: ")


@atexit.register
def _kill_children():
    """No process outlives the run, whatever failed on the way."""
    for c in _children:
        if c.p.poll() is None:
            os.killpg(c.p.pid, signal.SIGKILL)
            c.p.wait()


def exit_text(rc):
    if rc is None:
        return "still running"
    if rc < 0:
        return f"killed by {signal.Signals(-rc).name}"
    return f"exit {rc}"


class Proc:
    """A child process whose stdout lines we can wait for and whose stderr we keep.

    It ends with stop() (SIGTERM, then exit 0 expected) or, when the test makes it exit by
    itself, with wait_exit() and the test's own check of the code. Anything else (it ended
    unasked, hung, crashed, wrote a sanitizer report, was left running) fails the test."""

    def __init__(self, argv, name=None, netns=None, env=None, pass_fds=(), cwd=None,
                 stdin=False):
        """stdin: a pipe the test writes to (self.p.stdin, text, line-buffered) instead of
        /dev/null."""
        if netns:
            argv = ["ip", "netns", "exec", getattr(netns, "name", netns)] + list(argv)
        self.argv = list(argv)
        self.name = name or os.path.basename(argv[0])
        self.lines = []  # every stdout line seen so far
        self.err = []  # every stderr line seen so far
        self.collected = False  # the test has seen the exit code (wait_exit or stop)
        self.reported = False  # stop() has already failed the test about this process
        self.logs = []  # files (or glob patterns) worth showing with the output (describe)
        self._cv = threading.Condition()
        self.p = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                  env=env, text=True, bufsize=1,
                                  start_new_session=True, pass_fds=pass_fds, cwd=cwd,
                                  errors="backslashreplace")
        _children.append(self)
        self._threads = [threading.Thread(target=self._pump, args=(s, l), daemon=True)
                         for s, l in ((self.p.stdout, self.lines), (self.p.stderr, self.err))]
        for t in self._threads:
            t.start()

    def _pump(self, stream, sink):
        for line in stream:
            with self._cv:
                sink.append(line.rstrip("\n"))
                if os.environ.get("LPK_E2E_ECHO"):
                    sys.stderr.write(f"[{self.name}] {line}")
                self._cv.notify_all()
        with self._cv:
            self._cv.notify_all()

    def wait_line(self, pattern, timeout=5.0, stderr=False):
        """Returns the re.Match of the first stdout (or stderr) line matching pattern."""
        return self.wait_lines(pattern, 1, timeout, stderr)[0]

    def wait_lines(self, pattern, count, timeout=5.0, stderr=False):
        """Waits until `count` stdout (or stderr) lines match pattern; returns their matches in
        order. Fails early when the process has ended without printing them."""
        rx = re.compile(pattern)
        found = []
        source, pump = (self.err, self._threads[1]) if stderr else (self.lines, self._threads[0])

        def enough():
            found[:] = [m for m in map(rx.search, source) if m]
            return len(found) >= count

        deadline = time.monotonic() + timeout * SLACK
        with self._cv:
            while not enough():
                left = deadline - time.monotonic()
                if left <= 0 or (self.p.poll() is not None and not pump.is_alive()):
                    raise AssertionError(
                        f"{self.name}: {len(found)}/{count} {'stderr' if stderr else 'stdout'} "
                        f"lines matching {rx.pattern!r} within {timeout * SLACK:.0f}s "
                        f"({exit_text(self.p.poll())})\n{self.describe()}")
                self._cv.wait(min(left, 0.2))
        return found[:count]

    def matching(self, pattern, stderr=False):
        """The re.Match of every stdout (or stderr) line so far that matches pattern."""
        rx = re.compile(pattern)
        with self._cv:
            return [m for m in map(rx.search, self.err if stderr else self.lines) if m]

    def wait_exit(self, timeout=5.0):
        """Waits for the process to end by itself; returns its exit code (negative: the signal),
        None if it is still running. The caller judges the code: stop() will not."""
        try:
            rc = self.p.wait(timeout * SLACK)
        except subprocess.TimeoutExpired:
            return None
        self.collected = True
        self._drain()
        return rc

    def _drain(self):
        # The pipes close when the process (and any child that inherited them) is gone.
        for t in self._threads:
            t.join(2)
        if not any(t.is_alive() for t in self._threads):
            for f in (self.p.stdout, self.p.stderr):
                f.close()

    def alive(self):
        return self.p.poll() is None

    def sanitizer_report(self):
        with self._cv:
            return next((l for l in self.err if SANITIZER_RE.search(l)), None)

    def stop(self, sig=signal.SIGTERM, timeout=5.0):
        """Sends `sig` and checks that the process ends cleanly: exit 0 within `timeout`
        seconds (times SLACK) and no sanitizer report on stderr. Raises AssertionError with its
        output when it had ended unasked (unless wait_exit() collected the exit for the test),
        hung (it is then killed), exited non-zero, died of a signal, or a sanitizer spoke.
        Returns the exit code: 0, or the code wait_exit() already handed to the test."""
        problem = None
        rc = self.p.poll()
        if rc is not None:
            if not self.collected:
                self.collected = True
                self._drain()
                problem = f"had ended before it was stopped ({exit_text(rc)})"
        else:
            try:
                os.kill(self.p.pid, sig)
            except ProcessLookupError:
                pass
            rc = self.wait_exit(timeout)
            if rc is None:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()
                self.collected = True
                self._drain()
                problem = (f"did not exit within {timeout * SLACK:.0f}s of {sig.name} "
                           "(killed with SIGKILL)")
            elif rc != 0:
                problem = f"ended ({exit_text(rc)}) after {sig.name} instead of exit 0"
        report = self.sanitizer_report()
        if report:
            problem = (problem + "; " if problem else "") + f"sanitizer report: {report}"
        if problem:
            self.reported = True
            raise AssertionError(f"{self.name}: {problem}\n" + self.describe(60))
        return rc

    def leftover(self):
        """What is wrong with this process once its test is over, or None."""
        if self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGKILL)
            self.p.wait()
            self.collected = True
            self._drain()
            return "was left running by the test (killed with SIGKILL)"
        if not self.collected:
            self.collected = True
            self._drain()
            return f"ended unnoticed ({exit_text(self.p.returncode)})"
        report = None if self.reported else self.sanitizer_report()
        return f"sanitizer report: {report}" if report else None

    def describe(self, tail=25):
        with self._cv:
            out, err = self.lines[-tail:], self.err[-tail:]
        text = (f"--- {self.name} ({exit_text(self.p.poll())}): {' '.join(self.argv)}\n"
                f"--- stdout (last {tail} lines):\n" + "\n".join(out) +
                f"\n--- stderr (last {tail} lines):\n" + "\n".join(err))
        for path in sorted(set(p for pattern in self.logs for p in glob.glob(pattern))):
            text += f"\n--- {path} (last {tail} lines):\n" + tail_of(path, tail)
        return text


def tail_of(path, lines):
    try:
        with open(path, errors="backslashreplace") as f:
            return "\n".join(f.read().splitlines()[-lines:])
    except OSError as e:
        return f"({e})"


def stop_all(*procs):
    """Stops every process (in order, even after a failure); raises one AssertionError naming
    all that did not end cleanly."""
    problems = []
    for p in procs:
        if p is None:
            continue
        try:
            p.stop()
        except AssertionError as e:
            problems.append(str(e))
    if problems:
        raise AssertionError("\n".join(problems))


def split_hostport(s):
    host, _, port = s.rpartition(":")
    return host.strip("[]"), int(port)


class Agent(Proc):
    """lpk-agent; waits for its `tunnel` line. Raises PortInUse when an explicit --listen
    port is taken (the agent then exits with a line saying so)."""

    def __init__(self, *extra, netns=None, listen="127.0.0.1:0", log_level="warn", env=None):
        super().__init__([AGENT, "--listen", listen, "--log-level", log_level, *extra],
                         name="lpk-agent", netns=netns, env=env)
        try:
            m = self.wait_line(AGENT_LINES["tunnel"])
        except AssertionError:
            if self.wait_exit(2) not in (None, 0) and any("in use" in l for l in self.err):
                raise PortInUse(self.err[-1]) from None
            raise
        self.tunnel = split_hostport(m.group(1))
        self.tunnel_str = f"{self.tunnel[0]}:{self.tunnel[1]}"


class Router(Proc):
    """lpk-agent router with a --routes-file; waits for its `router` lines (one per port, in
    order) and `router-admin` line. `ports` are --port values ("0", "0=127.0.0.1:8080")."""

    def __init__(self, routes_file, ports=("0",), service="api", log_level="warn", extra=()):
        argv = [AGENT, "router", "--service", service, "--routes-file", routes_file,
                "--admin-port", "0", "--log-level", log_level]
        for p in ports:
            argv += ["--port", p]
        super().__init__(argv + list(extra), name="lpk-agent router")
        self.ports = [split_hostport(m.group(1))[1]
                      for m in self.wait_lines(AGENT_LINES["router"], len(ports))]
        self.admin = split_hostport(self.wait_line(AGENT_LINES["router_admin"]).group(1))[1]

    def admin_get(self, path):
        """(status, body bytes) of GET `path` on the admin port."""
        with socket.create_connection(("127.0.0.1", self.admin), timeout=5 * SLACK) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: router\r\n\r\n".encode())
            data = recv_all(s)
        if not data:  # accepted, then closed unanswered: the router is closing its admin port
            raise ConnectionResetError(f"router admin port {self.admin}: closed without an answer")
        head, _, body = data.partition(b"\r\n\r\n")
        return int(head.split()[1]), body

    def routes(self):
        status, body = self.admin_get("/routes")
        if status != 200:
            raise AssertionError(f"GET /routes answered {status}: {body!r}")
        return json.loads(body)

    def wait_routes(self, predicate, timeout=10.0, what="routes"):
        """Polls GET /routes (the router's own account of what it read) until predicate."""
        deadline = time.monotonic() + timeout * SLACK
        while True:
            doc = self.routes()
            if predicate(doc):
                return doc
            if time.monotonic() > deadline:
                raise AssertionError(f"router: no {what} after {timeout * SLACK:.0f}s: {doc}")
            time.sleep(0.02)  # polling the event itself: the router's table


def private_address():
    """A loopback address of the test's own, for a server that needs a fixed port: there only
    a wildcard listener elsewhere on the machine can hold the same port."""
    return f"127.{random.randrange(128, 251)}.{random.randrange(256)}.{random.randrange(1, 255)}"


def private_pool():
    """A loopback /24 for one lpk-proxy's service addresses (--pool), drawn at random so that a
    name maps to an address no other lpk session on the machine uses (the default pool hashes
    `redis` to the same address in every session)."""
    return f"127.{random.randrange(128, 251)}.{random.randrange(256)}.0/24"


class Proxy(Proc):
    """lpk-proxy run; waits for one `listen` line per --map and then `ready`. Names get their
    addresses from a private pool unless `extra` says --pool."""

    def __init__(self, agent_addr, maps=(), extra=(), netns=None, log_level="warn",
                 expect_listen=None, wait_ready=True):
        argv = [PROXY, "run", "--agent", agent_addr, "--log-level", log_level]
        if "--pool" not in extra:
            argv += ["--pool", private_pool()]
        for m in maps:
            argv += ["--map", m]
        super().__init__(argv + list(extra), name="lpk-proxy", netns=netns)
        n = len(maps) if expect_listen is None else expect_listen
        self.listens = [split_hostport(m.group(1))
                        for m in self.wait_lines(PROXY_LINES["listen"], n)]
        if wait_ready:
            self.wait_line(PROXY_LINES["ready"], timeout=10)

    def dns(self):
        """The stub DNS's (address, port) from its `dns` line."""
        m = self.wait_line(PROXY_LINES["dns"])
        return m.group(1).strip("[]"), int(m.group(2))


class FaultRelay(Proc):
    """tools/faultrelay between two ends of a link: `fault("freeze")` and the like take effect
    before they return (the relay answers once they have). Tests that need it call
    require_faultrelay() first."""

    def __init__(self, to):
        super().__init__([FAULTRELAY, "--to", to], name="lpk-faultrelay")
        self.addr_str = self.wait_line(r"^listen (\S+)$").group(1)
        self.addr = split_hostport(self.addr_str)
        control = split_hostport(self.wait_line(r"^control (\S+)$").group(1))
        self._control = socket.create_connection(control, timeout=10 * SLACK)
        self._answers = self._control.makefile("r")

    def fault(self, command):
        """Sends one command (drop, freeze, thaw, delay MS, throttle BPS, refuse on|off,
        stats); returns the relay's `ok ...` answer."""
        self._control.sendall((command + "\n").encode())
        answer = self._answers.readline().strip()
        if not answer.startswith("ok"):
            raise AssertionError(f"lpk-faultrelay: {command!r} answered {answer!r}")
        return answer

    def stop(self, *args, **kwargs):
        self._answers.close()
        self._control.close()
        super().stop(*args, **kwargs)


def require_faultrelay(test):
    """Skips `test` (a TestCase), saying why, when tools/faultrelay was not built."""
    if not FAULTRELAY or not os.access(FAULTRELAY, os.X_OK):
        test.skipTest("lpk-faultrelay not built (pass --faultrelay)")


def require_binaries():
    missing = [n for n, p in (("lpk-agent", AGENT), ("lpk-proxy", PROXY))
               if not p or not os.access(p, os.X_OK)]
    if missing:
        skip_all(f"binaries not built: {', '.join(missing)} (pass --agent/--proxy)")


def load_console_lines():
    """Reads the tables of stdout lines from the binaries under test, once per run."""
    for table, argv in ((PROXY_LINES, [PROXY, "__console-lines"]),
                        (AGENT_LINES, [AGENT, "--console-lines"])):
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10 * SLACK)
        if r.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed ({exit_text(r.returncode)}): {r.stderr}")
        table.update({name: line["pattern"] for name, line in json.loads(r.stdout).items()})


def require_tools(*tools):
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise unittest.SkipTest(f"missing tools: {', '.join(missing)} (run tools/install-deps.sh)")


def skip_all(reason):
    print(f"SKIP: {reason}", flush=True)
    sys.exit(SKIP_CODE)


# ---------------------------------------------------------------- servers we did not write


class PortInUse(Exception):
    """A server could not bind the port it was given; retry_on_port_collision tries again."""


def retry_on_port_collision(start, attempts=5):
    """For servers that cannot be told to use port 0: start() starts one on ports from
    free_port() and returns what the caller wants, or raises PortInUse when something took a
    port first; then it is called again, with new ports."""
    for _ in range(attempts - 1):
        try:
            return start()
        except PortInUse:
            pass
    return start()


def start_dnsmasq(*options, address="127.0.0.1"):
    """A dnsmasq on `address` and a free port, answering only from `options` (--host-record...):
    no resolv.conf, no hosts file, no upstream. Returns (Proc, port). A missing dnsmasq skips
    the test (tools/install-deps.sh installs dnsmasq-base); one that does not start fails it."""
    require_tools("dnsmasq")

    def start():
        port = free_port(address)
        proc = Proc(["dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--no-resolv",
                     "--no-hosts", "--bind-interfaces", f"--listen-address={address}",
                     f"--port={port}", "--user=root", "--log-facility=-", *options],
                    name="dnsmasq")
        try:
            # Logged once its sockets are bound; a bind failure ends it with the reason.
            proc.wait_line(r"dnsmasq\[\d+\]: started, version", timeout=10, stderr=True)
        except AssertionError:
            if proc.wait_exit(2) is not None and any("in use" in l for l in proc.err):
                raise PortInUse() from None
            raise
        return proc, port

    return retry_on_port_collision(start)


def listening_pids(host, port):
    """Pids of the processes listening on TCP host:port (from ss)."""
    out = subprocess.run(["ss", "-Hltnp", f"( sport = :{port} )"], capture_output=True,
                         text=True, check=True).stdout
    pids = set()
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 4 and split_hostport(f[3])[0] in (host, "*", "0.0.0.0", "::"):
            pids.update(int(p) for p in re.findall(r"pid=(\d+)", line))
    return pids


def wait_listening(proc, host, port, timeout=10.0):
    """Waits until `proc` itself listens on host:port (not merely someone on that port); False
    when it ended first."""
    deadline = time.monotonic() + timeout * SLACK
    while proc.alive():
        if proc.p.pid in listening_pids(host, port):
            return True
        if time.monotonic() > deadline:
            raise AssertionError(f"{proc.name} not listening on {host}:{port} after "
                                 f"{timeout * SLACK:.0f}s\n{proc.describe()}")
        time.sleep(0.02)  # polling the event itself: the listening socket appearing
    return False


# ---------------------------------------------------------------- sockets


def free_port(host="127.0.0.1"):
    """A TCP and UDP port free right now, for servers that cannot be told to use port 0 (nginx,
    redis, dnsmasq, the agent's --serve). Drawn below the ephemeral range, where no port-0 bind
    and no outgoing connection on this machine lands: only another explicit choice can take it
    before the server binds, and retry_on_port_collision retries then."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        low = int(f.read().split()[0])
    for _ in range(100):
        port = random.randrange(10000, max(low, 10001))
        try:
            with socket.socket() as t, socket.socket(type=socket.SOCK_DGRAM) as u:
                t.bind((host, port))
                u.bind((host, port))
            return port
        except OSError:
            continue
    raise AssertionError(f"no free port on {host} between 10000 and {low}")


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


_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000


class Netns:
    """A network namespace that exists (named in /run/netns; a pod's, a kubesim's): sockets made
    inside it, and its name for `ip netns exec` (Proc(netns=...)). Needs root."""

    def __init__(self, name):
        self.name = name

    def socket(self, family=socket.AF_INET, type=socket.SOCK_STREAM):
        """A socket created inside the namespace (setns on this thread, then back)."""
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        try:
            if _libc.setns(target, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
            try:
                return socket.socket(family, type)
            finally:
                if _libc.setns(own, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns back")
        finally:
            os.close(own)
            os.close(target)


def connect(addr, timeout=5.0, netns=None):
    """A connected TCP socket (created inside `netns`, a Netns, when given)."""
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


def _check_leftovers(mark):
    """After a test: every process it started has ended cleanly (see Proc)."""
    problems = [f"{c.name}: {why}\n{c.describe()}" for c in _children[mark:]
                if (why := c.leftover())]
    if problems:
        raise AssertionError("\n".join(problems))


def lpk_logs_since(t0, tail=30):
    """The tail of every lpk log (under $TMPDIR/lpk/) written since t0."""
    text = ""
    for path in sorted(glob.glob(os.path.join(os.environ.get("TMPDIR", "/tmp"), "lpk", "*", "*"))):
        try:
            if os.path.getmtime(path) >= t0:
                text += f"--- {path} (last {tail} lines):\n{tail_of(path, tail)}\n"
        except OSError:
            pass
    return text


class _Result(unittest.TextTestResult):
    """unittest's result plus the harness's duties: a failing test prints the output of the
    processes it and its class started, and every test ends with no process left behind."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._class, self._class_procs = None, (0, 0)
        self._test_mark, self._test_t0 = 0, time.time()
        self._last_stop, self._last_stop_t = 0, time.time()

    def startTest(self, test):
        if type(test) is not self._class:
            # The class's own processes (setUpClass) started after the previous test ended.
            self._class = type(test)
            self._class_procs = (self._last_stop, len(_children))
        self._test_mark, self._test_t0 = len(_children), time.time()
        test.addCleanup(_check_leftovers, self._test_mark)  # runs after the test's own cleanups
        super().startTest(test)

    def stopTest(self, test):
        super().stopTest(test)
        self._last_stop, self._last_stop_t = len(_children), time.time()

    def _print_output(self, test):
        if isinstance(test, unittest.TestCase):
            first, end = self._class_procs
            procs, t0 = _children[first:end] + _children[self._test_mark:], self._test_t0
        else:  # setUpClass, tearDownClass
            procs, t0 = _children[self._last_stop:], self._last_stop_t
        text = "\n".join(p.describe(40) for p in procs) + "\n" + lpk_logs_since(t0)
        self.stream.write(f"\n===== output of the processes started by {test.id()}:\n"
                          f"{text}===== end of that output\n")
        self.stream.flush()

    def addError(self, test, err):
        super().addError(test, err)
        self._print_output(test)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._print_output(test)

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._print_output(test)


def skipped_id(test):
    """A skipped test's id; for a class skipped in setUpClass, the class's."""
    if isinstance(test, unittest.TestCase):
        return test.id()
    m = re.match(r"\w+ \((.+)\)$", str(test))  # "setUpClass (module.Class)"
    return m.group(1) if m else str(test)


def run_tests(argv):
    """Runs the tests of __main__ (unittest argv: -k PATTERN, Class.test...) with the harness's
    checks and exits: 0 all ran and passed, 1 a failure, 77 nothing ran but skipped tests. Every
    skip is printed as `SKIPPED: <test id>: <reason>`."""
    started = time.monotonic()
    runner = unittest.TextTestRunner(verbosity=2, resultclass=_Result)
    r = unittest.main(argv=[sys.argv[0]] + list(argv), testRunner=runner, exit=False).result
    leftovers = [f"{c.name}: {why}\n{c.describe()}" for c in _children if (why := c.leftover())]
    for text in leftovers:
        print(f"after the tests: {text}", flush=True)
    # A class skipped in setUpClass counts as one skip and none of its tests as run; a skipped
    # subTest leaves its test run.
    ran = r.testsRun - sum(isinstance(t, unittest.TestCase) and not hasattr(t, "test_case")
                           for t, _ in r.skipped)
    print(f"e2e: {r.testsRun} run, {len(r.failures)} failed, {len(r.errors)} errors, "
          f"{len(r.skipped)} skipped in {time.monotonic() - started:.1f}s", flush=True)
    for test, reason in r.skipped:
        print(f"SKIPPED: {skipped_id(test)}: {reason}", flush=True)
    if r.failures or r.errors or leftovers or r.unexpectedSuccesses:
        sys.exit(1)
    if ran == 0 and r.skipped:
        sys.exit(SKIP_CODE)
    sys.exit(0)


def main():
    global AGENT, PROXY, FAULTRELAY
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--agent", default=AGENT)
    ap.add_argument("--proxy", default=PROXY)
    ap.add_argument("--faultrelay", default=FAULTRELAY)
    args, rest = ap.parse_known_args()
    AGENT, PROXY, FAULTRELAY = args.agent, args.proxy, args.faultrelay
    require_binaries()
    load_console_lines()
    raise_fd_limit()
    # lpk's logs, state (address allocations) and control sockets go to a private directory,
    # never to the user's own.
    home = tempfile.mkdtemp(prefix="lpk-e2e-")
    atexit.register(shutil.rmtree, home, True)
    for var, sub in (("TMPDIR", "tmp"), ("XDG_STATE_HOME", "state"), ("XDG_RUNTIME_DIR", "run")):
        os.makedirs(os.path.join(home, sub), mode=0o700)
        os.environ[var] = os.path.join(home, sub)
    run_tests(rest)

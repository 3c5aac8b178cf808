"""`lpk-agent router` on loopback with --routes-file (issue 14): a real nginx as the original,
two session servers (http.server) answering which one they are, a WebSocket-style upgrade
server, and redis-server behind an opaque port. Driven over raw sockets so that what goes over
one client connection is the test's to decide."""

import hashlib
import http.server
import json
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lpk_e2e as e2e  # noqa: E402
from test_real_servers import start_nginx, start_redis  # noqa: E402


class SessionHandler(http.server.BaseHTTPRequestHandler):
    """Answers `session NAME METHOD PATH sha256-of-body` and records the client's port."""

    protocol_version = "HTTP/1.1"  # keep-alive, and 100 Continue for Expect (http.server's own)

    def answer(self):
        self.server.peers.add(self.client_address[1])
        digest, n = hashlib.sha256(), 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b""):
                        pass  # trailers
                    break
                data = self.rfile.read(size)
                digest.update(data)
                n += len(data)
                self.rfile.readline()
        elif "Content-Length" in self.headers:
            data = self.rfile.read(int(self.headers["Content-Length"]))
            digest.update(data)
            n = len(data)
        text = f"session {self.server.name} {self.command} {self.path} {digest.hexdigest()} {n}\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(text)))
        self.send_header("X-Route-Header", self.headers.get("x-lpk-route", "-"))
        self.end_headers()
        self.wfile.write(text.encode())

    do_GET = do_POST = do_PUT = answer

    def log_message(self, *args):
        pass


def start_session_server(name):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SessionHandler)
    server.daemon_threads = True
    server.name, server.peers = name, set()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def upgrade_handler(c, server):
    """Reads a request head, answers 101 and then echoes raw bytes until EOF."""
    head = b""
    while b"\r\n\r\n" not in head:
        b = c.recv(4096)
        if not b:
            return
        head += b
    server.record(head.split(b"\r\n\r\n")[0])
    c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
    e2e.echo_handler(c, server)


class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body


def read_response(f, head_request=False):
    """One response from a buffered reader of a socket: status, lower-case headers, body
    (Content-Length or chunked; a 1xx is returned as it is)."""
    line = f.readline()
    if not line:
        raise AssertionError("the connection closed before a response")
    status = int(line.split()[1])
    headers = {}
    while (line := f.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    body = b""
    if head_request or status < 200 or status in (204, 304):
        pass
    elif "content-length" in headers:
        body = f.read(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while (size := int(f.readline().split(b";")[0], 16)) > 0:
            body += f.read(size)
            f.readline()
        while f.readline() not in (b"\r\n", b""):
            pass
    return Response(status, headers, body)


def request(path="/", route=None, method="GET", extra=""):
    head = f"{method} {path} HTTP/1.1\r\nHost: api\r\n"
    if route is not None:
        head += f"X-Lpk-Route: {route}\r\n"
    return (head + extra + "\r\n").encode()


def write_routes(path, routes, originals):
    """Replaces the routes file at once (rename), as a config map update does."""
    with open(path + ".new", "w") as f:
        json.dump({"routes": routes, "originals": originals}, f)
    os.rename(path + ".new", path)


def router_peak_kib(router):
    """The router's peak RSS (VmHWM) so far, in KiB."""
    with open(f"/proc/{router.p.pid}/status") as status:
        return int(re.search(r"VmHWM:\s+(\d+) kB", status.read()).group(1))


def rss_bound_kib(router, bound=64 * 1024):
    """What the router's peak RSS stays under whatever the bodies' size (KiB). AddressSanitizer
    keeps freed memory in quarantine (up to 256 MiB): there the bound only shows the bodies were
    never held whole."""
    with open(f"/proc/{router.p.pid}/maps") as maps:
        sanitized = "libasan" in maps.read()
    return 384 * 1024 if sanitized else bound


class RouterHttpTest(unittest.TestCase):
    def setUp(self):
        e2e.require_tools("nginx")
        self.tmp = tempfile.mkdtemp(prefix="lpk-e2e-router-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.nginx, self.nginx_port, _ = start_nginx(self.tmp)
        self.addCleanup(self.nginx.stop)
        self.a, self.b = start_session_server("a"), start_session_server("b")
        self.upgrade = e2e.Server(upgrade_handler)
        for s in (self.a, self.b):
            self.addCleanup(s.server_close)
            self.addCleanup(s.shutdown)
        self.addCleanup(self.upgrade.close)
        self.routes_file = os.path.join(self.tmp, "routes.json")
        self.routes = [self.route("a", self.a.server_address[1]),
                       self.route("b", self.b.server_address[1]),
                       self.route("ws", self.upgrade.addr[1])]
        write_routes(self.routes_file, self.routes, [f"127.0.0.1:{self.nginx_port}"])
        self.router = e2e.Router(self.routes_file)
        self.addCleanup(self.router.stop)
        self.router.wait_routes(lambda d: len(d["routes"]) == 3)

    @staticmethod
    def route(value, port):
        return {"header": "x-lpk-route", "value": value, "session": f"s-{value}",
                "target": f"127.0.0.1:{port}"}

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.router.ports[0]), timeout=10 * e2e.SLACK)
        self.addCleanup(s.close)
        return s, s.makefile("rb")

    def assert_from(self, response, who):
        self.assertEqual(response.status, 200, response.body)
        if who == "nginx":
            self.assertIn(b"hello from nginx behind lpk", response.body)
        else:
            self.assertTrue(response.body.startswith(f"session {who} ".encode()), response.body)

    def test_one_keepalive_connection_mixes_routes_and_originals(self):
        s, f = self.connect()
        order = [("a", "a"), ("b", "b"), (None, "nginx"), ("c", "nginx"), ("a", "a"), (None, "nginx"),
                 ("b", "b")]
        for route, who in order:
            s.sendall(request("/index.html", route))
            r = read_response(f)
            self.assert_from(r, who)
            if who != "nginx":
                self.assertEqual(r.headers["x-route-header"], route)  # reached them unchanged
        # Pipelined: three requests in one write, answered in order.
        s.sendall(request("/index.html", "b") + request("/index.html") + request("/p", "a"))
        for who in ("b", "nginx", "a"):
            self.assert_from(read_response(f), who)
        # One connection throughout: each session server saw a single connection from the router.
        self.assertEqual(len(self.a.peers), 1)
        self.assertEqual(len(self.b.peers), 1)
        doc = self.router.routes()
        counts = {r["value"]: r["requests"] for r in doc["routes"]}
        self.assertEqual(counts, {"a": 3, "b": 3, "ws": 0})
        self.assertEqual(doc["original"]["requests"], 4)

    def test_chunked_body_with_trailers(self):
        s, f = self.connect()
        chunks = [os.urandom(n) for n in (1, 1000, 70000, 3)]
        body = b"".join(f"{len(c):x};ext=1\r\n".encode() + c + b"\r\n" for c in chunks)
        s.sendall(request("/up", "a", "POST", "Transfer-Encoding: chunked\r\n") + body)
        s.sendall(b"0\r\nX-Trailer: yes\r\n\r\n")
        r = read_response(f)
        data = b"".join(chunks)
        self.assert_from(r, "a")
        self.assertIn(f"POST /up {hashlib.sha256(data).hexdigest()} {len(data)}".encode(), r.body)
        s.sendall(request("/index.html", "b"))  # the connection goes on after the body
        self.assert_from(read_response(f), "b")

    def test_expect_100_continue(self):
        s, f = self.connect()
        data = os.urandom(300000)
        s.sendall(request("/up", "b", "PUT",
                          f"Content-Length: {len(data)}\r\nExpect: 100-continue\r\n"))
        interim = read_response(f)  # the body is sent only after this, as curl does
        self.assertEqual(interim.status, 100)
        s.sendall(data)
        r = read_response(f)
        self.assert_from(r, "b")
        self.assertIn(f"PUT /up {hashlib.sha256(data).hexdigest()} {len(data)}".encode(), r.body)

    def test_upgrade_turns_the_connection_opaque(self):
        s, f = self.connect()
        s.sendall(request("/chat", "ws", extra="Connection: Upgrade\r\nUpgrade: websocket\r\n"))
        r = read_response(f)
        self.assertEqual(r.status, 101)
        payload = os.urandom(100000)
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        echoed = f.read()
        self.assertEqual(echoed, payload)
        self.upgrade.wait_for(lambda srv: srv.results, what="the upgrade request")
        self.assertIn(b"X-Lpk-Route: ws", self.upgrade.results[0])

    def test_malformed_request_gets_400_and_the_router_serves_on(self):
        s, f = self.connect()
        s.sendall(request("/index.html", "a"))
        self.assert_from(read_response(f), "a")
        s.sendall(b"GET /index.html HTTP/1.1\r\nBad Header\r\n\r\n")
        r = read_response(f)
        self.assertEqual(r.status, 400)
        self.assertEqual(f.read(), b"")  # then closed
        other, g = self.connect()
        other.sendall(request("/index.html"))
        self.assert_from(read_response(g), "nginx")

    def test_unreachable_backend_gets_502_and_the_connection_stays(self):
        s, f = self.connect()
        dead = socket.socket()
        dead.bind(("127.0.0.1", 0))  # bound, never listening: refused
        self.addCleanup(dead.close)
        write_routes(self.routes_file, self.routes + [self.route("dead", dead.getsockname()[1])],
                     [f"127.0.0.1:{self.nginx_port}"])
        self.router.wait_routes(lambda d: len(d["routes"]) == 4)
        s.sendall(request("/index.html", "dead"))
        r = read_response(f)
        self.assertEqual(r.status, 502)
        self.assertIn(b"cannot reach", r.body)
        s.sendall(request("/index.html", "a"))
        self.assert_from(read_response(f), "a")

    def test_an_idle_connection_is_closed_after_the_idle_timeout(self):
        router = e2e.Router(self.routes_file, extra=("--idle-timeout", "1s"))
        self.addCleanup(router.stop)
        router.wait_routes(lambda d: len(d["routes"]) == 3)
        idle, busy = (socket.create_connection(("127.0.0.1", router.ports[0]),
                                               timeout=30 * e2e.SLACK) for _ in range(2))
        for s in (idle, busy):
            self.addCleanup(s.close)
        idle.sendall(request("/index.html"))
        self.assert_from(read_response(idle.makefile("rb")), "nginx")
        busy.sendall(b"GET /index.html HTTP/1.1\r\nHost: api\r\n")  # half a head: not idle
        self.assertEqual(idle.recv(1), b"", "the idle kept-alive connection was not closed")
        busy.sendall(b"\r\n")  # the exchange in flight was left alone
        self.assert_from(read_response(busy.makefile("rb")), "nginx")

    def test_a_removed_route_sends_its_header_to_the_original(self):
        s, f = self.connect()
        s.sendall(request("/index.html", "a"))
        self.assert_from(read_response(f), "a")
        write_routes(self.routes_file, self.routes[1:], [f"127.0.0.1:{self.nginx_port}"])
        self.router.wait_routes(lambda d: [r["value"] for r in d["routes"]] == ["b", "ws"])
        s.sendall(request("/index.html", "a"))
        self.assert_from(read_response(f), "nginx")
        s.sendall(request("/index.html", "b"))
        self.assert_from(read_response(f), "b")

    def test_healthz(self):
        status, body = self.router.admin_get("/healthz")
        self.assertEqual((status, body), (200, b"ok\n"))

    def test_ipv6_clients_too(self):
        try:
            s = socket.create_connection(("::1", self.router.ports[0]), timeout=10 * e2e.SLACK)
        except OSError as e:
            self.skipTest(f"no IPv6 loopback here: {e}")
        self.addCleanup(s.close)
        f = s.makefile("rb")
        s.sendall(request("/index.html", "a") + request("/index.html"))
        self.assert_from(read_response(f), "a")
        self.assert_from(read_response(f), "nginx")


class RouterReadinessTest(unittest.TestCase):
    def test_healthz_is_503_until_the_routes_file_is_read(self):
        tmp = tempfile.mkdtemp(prefix="lpk-e2e-router-")
        self.addCleanup(shutil.rmtree, tmp, True)
        path = os.path.join(tmp, "routes.json")
        router = e2e.Router(path)
        self.addCleanup(router.stop)
        self.assertEqual(router.admin_get("/healthz")[0], 503)
        write_routes(path, [], ["127.0.0.1:1"])
        router.wait_routes(lambda d: d["original"]["pods"] == ["127.0.0.1:1"])
        self.assertEqual(router.admin_get("/healthz")[0], 200)


class RouterOpaqueTest(unittest.TestCase):
    def test_redis_passes_unchanged(self):
        e2e.require_tools("redis-server", "redis-cli")
        tmp = tempfile.mkdtemp(prefix="lpk-e2e-router-")
        self.addCleanup(shutil.rmtree, tmp, True)
        redis, port = start_redis(tmp)
        self.addCleanup(redis.stop)
        path = os.path.join(tmp, "routes.json")
        write_routes(path, [], [f"127.0.0.1:{port}"])
        router = e2e.Router(path)
        self.addCleanup(router.stop)
        router.wait_routes(lambda d: d["original"]["pods"])
        cli = ["redis-cli", "-h", "127.0.0.1", "-p", str(router.ports[0])]
        import subprocess
        out = subprocess.run(cli + ["PING"], capture_output=True, text=True, timeout=30)
        self.assertEqual(out.stdout.strip(), "PONG", out.stderr)
        value = os.urandom(20000).hex()
        subprocess.run(cli + ["SET", "k", value], capture_output=True, check=True, timeout=30)
        out = subprocess.run(cli + ["GET", "k"], capture_output=True, text=True, timeout=30)
        self.assertEqual(out.stdout.strip(), value)
        self.assertEqual(router.routes()["opaque_connections"], 3)


class RouterEdgesTest(unittest.TestCase):
    """Fallback address, no backend at all, a protocol whose server speaks first, and SIGTERM
    in the middle of an exchange."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="lpk-e2e-router-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.path = os.path.join(self.tmp, "routes.json")

    def router(self, ports, originals=(), routes=()):
        write_routes(self.path, list(routes), list(originals))
        router = e2e.Router(self.path, ports=ports)
        self.addCleanup(router.stop)
        router.wait_routes(lambda d: True)
        return router

    def connect(self, port):
        s = socket.create_connection(("127.0.0.1", port), timeout=10 * e2e.SLACK)
        self.addCleanup(s.close)
        return s, s.makefile("rb")

    def test_fallback_when_no_original_is_known_else_closed(self):
        fallback = start_session_server("fallback")
        self.addCleanup(fallback.server_close)
        self.addCleanup(fallback.shutdown)
        router = self.router(["0=127.0.0.1:%d" % fallback.server_address[1], "0"])
        s, f = self.connect(router.ports[0])
        s.sendall(request("/x") + request("/y", "a"))
        for path in ("/x", "/y"):
            self.assertTrue(read_response(f).body.startswith(f"session fallback GET {path} ".encode()))
        s, f = self.connect(router.ports[1])  # no fallback: as a Service without endpoints
        s.sendall(request("/x"))
        self.assertEqual(f.read(), b"")
        s, f = self.connect(router.ports[1])  # nor for a connection that is not HTTP
        s.sendall(b"*1\r\n$4\r\nPING\r\n")
        self.assertEqual(f.read(), b"")

    def test_a_server_that_speaks_first(self):
        def banner_then_echo(c, server):
            c.sendall(b"SSH-2.0-lpk-test\r\n")
            e2e.echo_handler(c, server)

        server = e2e.Server(banner_then_echo)
        self.addCleanup(server.close)
        router = self.router(["0"], [f"127.0.0.1:{server.addr[1]}"])
        s, f = self.connect(router.ports[0])
        self.assertEqual(f.readline(), b"SSH-2.0-lpk-test\r\n")  # after the router's wait
        s.sendall(b"SSH-2.0-client\r\n")
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(f.read(), b"SSH-2.0-client\r\n")
        self.assertEqual(router.routes()["opaque_connections"], 1)

    def test_sigterm_lets_the_exchange_in_flight_finish(self):
        release = threading.Event()
        arrived = threading.Event()

        class Slow(SessionHandler):
            def answer(self):
                if self.path == "/slow":
                    arrived.set()
                    release.wait(30)
                super().answer()

            do_GET = answer

        slow = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
        slow.daemon_threads, slow.name, slow.peers = True, "slow", set()
        threading.Thread(target=slow.serve_forever, daemon=True).start()
        self.addCleanup(slow.server_close)
        self.addCleanup(slow.shutdown)
        self.addCleanup(release.set)
        router = self.router(["0"], [f"127.0.0.1:{slow.server_address[1]}"])
        idle, idle_f = self.connect(router.ports[0])
        idle.sendall(request("/first"))
        self.assertEqual(read_response(idle_f).status, 200)  # then idle, between requests
        busy, busy_f = self.connect(router.ports[0])
        busy.sendall(request("/slow"))
        self.assertTrue(arrived.wait(10 * e2e.SLACK))
        router.p.send_signal(signal.SIGTERM)
        self.assertEqual(idle_f.read(), b"")  # the idle connection is closed at once
        with self.assertRaises(OSError):  # so is the admin port: readiness fails
            router.admin_get("/healthz")
        release.set()
        r = read_response(busy_f)
        self.assertTrue(r.body.startswith(b"session slow GET /slow "), r.body)
        self.assertEqual(busy_f.read(), b"")  # closed after that exchange
        self.assertEqual(router.wait_exit(10), 0)


class RouterH2NginxTest(unittest.TestCase):
    """HTTP/2 with prior knowledge (h2c) from h2load and curl to nginx, the original, and a
    second nginx behind a route: per stream, on one client connection each."""

    def setUp(self):
        e2e.require_tools("nginx", "h2load", "curl")
        self.tmp = tempfile.mkdtemp(prefix="lpk-e2e-router-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.nginx, port, self.big_digest = start_nginx(os.path.join(self.tmp, "o"), http2=True)
        self.addCleanup(self.nginx.stop)
        session_dir = os.path.join(self.tmp, "a")
        self.session, session_port, _ = start_nginx(session_dir, http2=True)
        self.addCleanup(self.session.stop)
        with open(os.path.join(session_dir, "www", "index.html"), "w") as f:
            f.write("hello from session a\n")
        path = os.path.join(self.tmp, "routes.json")
        write_routes(path, [{"header": "x-lpk-route", "value": "a", "session": "s-a",
                             "target": f"127.0.0.1:{session_port}"}], [f"127.0.0.1:{port}"])
        self.router = e2e.Router(path)
        self.addCleanup(self.router.stop)
        self.router.wait_routes(lambda d: d["routes"])
        self.url = f"http://127.0.0.1:{self.router.ports[0]}"

    def run_tool(self, argv, timeout=120):
        import subprocess
        out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout * e2e.SLACK)
        self.assertEqual(out.returncode, 0, f"{argv}: {out.stdout[-2000:]} {out.stderr[-2000:]}")
        return out.stdout

    def test_h2load_streams_each_go_where_their_header_says(self):
        # nginx ends an HTTP/2 connection with GOAWAY after 1000 requests: the streams it had
        # not seen go again on a new connection, and no request fails.
        out = self.run_tool(["h2load", "-c1", "-m10", "-n2500", self.url + "/index.html"])
        self.assertIn("2500 succeeded, 0 failed", out)
        out = self.run_tool(["h2load", "-c1", "-m10", "-n1200", "-H", "x-lpk-route: a",
                             self.url + "/index.html"])
        self.assertIn("1200 succeeded, 0 failed", out)
        doc = self.router.routes()
        self.assertEqual(doc["routes"][0]["requests"], 1200)
        self.assertEqual(doc["original"]["requests"], 2500)
        self.assertEqual(doc["h2_connections"], 2)

    def test_requests_ended_by_empty_data_frames(self):
        """HEADERS, then an empty DATA frame with END_STREAM: three requests one after the
        other on one raw connection, each answered."""
        def literal(name, value):  # HPACK literal without indexing, new name, no Huffman
            return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value

        s = socket.create_connection(("127.0.0.1", self.router.ports[0]), timeout=10 * e2e.SLACK)
        self.addCleanup(s.close)
        f = s.makefile("rb")
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(4, 0, b""))
        block = b"".join(literal(n, v) for n, v in (
            (b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/index.html"),
            (b":authority", b"router")))
        for stream in (1, 3, 5):
            s.sendall(h2_frame(1, 4, block, stream) + h2_frame(0, 1, b"", stream))
            headers, body = b"", b""
            while True:
                got = read_h2_frame(f)
                self.assertIsNotNone(got, "the connection ended before the response")
                kind, flags, on, payload = got
                self.assertNotIn(kind, (3, 7), f"reset or GOAWAY: {payload!r}")
                if on != stream:
                    continue
                headers += payload if kind == 1 else b""
                body += payload if kind == 0 else b""
                if flags & 1 and kind in (0, 1):
                    break
            self.assertIn(b"200", headers)
            self.assertIn(b"hello from nginx behind lpk", body)

    def test_curl_prior_knowledge(self):
        curl = ["curl", "-sS", "--http2-prior-knowledge", "--noproxy", "*"]
        out = self.run_tool(curl + ["-H", "x-lpk-route: a", self.url + "/index.html"])
        self.assertEqual(out, "hello from session a\n")
        out = self.run_tool(curl + [self.url + "/index.html"])
        self.assertIn("hello from nginx behind lpk", out)
        out = self.run_tool(curl + ["-w", "%{http_code} %{http_version}", "-o", "/dev/null",
                                    self.url + "/missing"])
        self.assertEqual(out, "404 2")

    def test_64_mib_down_to_a_slow_reader_with_bounded_memory(self):
        # curl reads at 32 MB/s, slower than nginx writes: the router holds no more than the
        # windows it gives nginx.
        target = os.path.join(self.tmp, "big.bin")
        self.run_tool(["curl", "-sS", "--http2-prior-knowledge", "--noproxy", "*",
                       "--limit-rate", "32M", "-o", target, self.url + "/big.bin"])
        digest = hashlib.sha256()
        with open(target, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        self.assertEqual(digest.hexdigest(), self.big_digest)
        peak = router_peak_kib(self.router)
        # Half the body (it peaks near 13 MiB here).
        self.assertLess(peak, rss_bound_kib(self.router, 32 * 1024), f"router peak RSS {peak} KiB")


class RouterBigBodiesTest(unittest.TestCase):
    """1 GiB each way through the router with its memory bounded."""

    def test_one_gib_down_and_up_with_bounded_memory(self):
        total, block = 1 << 30, os.urandom(1 << 20)

        class Big(SessionHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", str(total))
                self.end_headers()
                for _ in range(total // len(block)):
                    self.wfile.write(block)

        big = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Big)
        big.daemon_threads, big.name, big.peers = True, "big", set()
        threading.Thread(target=big.serve_forever, daemon=True).start()
        self.addCleanup(big.server_close)
        self.addCleanup(big.shutdown)
        tmp = tempfile.mkdtemp(prefix="lpk-e2e-router-")
        self.addCleanup(shutil.rmtree, tmp, True)
        path = os.path.join(tmp, "routes.json")
        write_routes(path, [], [f"127.0.0.1:{big.server_address[1]}"])
        router = e2e.Router(path)
        self.addCleanup(router.stop)
        router.wait_routes(lambda d: d["original"]["pods"])
        s = socket.create_connection(("127.0.0.1", router.ports[0]), timeout=30 * e2e.SLACK)
        self.addCleanup(s.close)
        f = s.makefile("rb")
        s.sendall(request("/big"))
        line = f.readline()
        self.assertIn(b" 200 ", line)
        while f.readline() not in (b"\r\n", b""):
            pass
        digest, got = hashlib.sha256(), 0
        while got < total:
            chunk = f.read(min(1 << 20, total - got))
            self.assertTrue(chunk, f"the download ended after {got} bytes")
            digest.update(chunk)
            got += len(chunk)
        self.assertEqual(digest.hexdigest(), hashlib.sha256(block * (total // len(block))).hexdigest())
        # Up: chunked, 1 MiB chunks; the session handler hashes what it reads.
        s.sendall(request("/up", None, "POST", "Transfer-Encoding: chunked\r\n"))
        chunk = b"%x\r\n" % len(block) + block + b"\r\n"
        for _ in range(total // len(block)):
            s.sendall(chunk)
        s.sendall(b"0\r\n\r\n")
        r = read_response(f)
        self.assertEqual(r.status, 200)
        self.assertTrue(r.body.endswith(f" {total}\n".encode()), r.body)
        peak = router_peak_kib(router)
        self.assertLess(peak, rss_bound_kib(router), f"router peak RSS {peak} KiB after 2 GiB")


def start_grpc_server(name, max_streams=None):
    """A gRPC server (python3-grpcio, generic handlers, bytes in and out) of service lpk.Echo:
    Call answers `NAME ROUTE-METADATA REQUEST`; Chat answers each message so, as it comes; Sink
    answers `NAME SHA256 LENGTH` of all the messages of a client stream. `server.peers` holds
    the addresses of the connections calls came on. max_streams: its
    SETTINGS_MAX_CONCURRENT_STREAMS."""
    import grpc
    from concurrent import futures

    peers = set()

    def prefix(context):
        peers.add(context.peer())
        return f"{name} {dict(context.invocation_metadata()).get('x-lpk-route', '-')} ".encode()

    def call(request, context):
        return prefix(context) + request

    def chat(requests, context):
        for r in requests:
            yield prefix(context) + r

    def sink(requests, context):
        digest, n = hashlib.sha256(), 0
        for r in requests:
            digest.update(r)
            n += len(r)
        return prefix(context) + f"{digest.hexdigest()} {n}".encode()

    handler = grpc.method_handlers_generic_handler("lpk.Echo", {
        "Call": grpc.unary_unary_rpc_method_handler(call),
        "Chat": grpc.stream_stream_rpc_method_handler(chat),
        "Sink": grpc.stream_unary_rpc_method_handler(sink)})
    options = [("grpc.max_receive_message_length", 4 << 20)]
    if max_streams:
        options.append(("grpc.max_concurrent_streams", max_streams))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), options=options)
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    server.peers = peers
    return server, port


def h2_frame(kind, flags, payload, stream=0):
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload


def read_h2_frame(f):
    """(type, flags, stream, payload) of the next frame, or None at EOF."""
    head = f.read(9)
    if len(head) < 9:
        return None
    payload = f.read(int.from_bytes(head[:3], "big"))
    return head[3], head[4], int.from_bytes(head[5:9], "big") & 0x7fffffff, payload


class RouterGrpcTest(unittest.TestCase):
    """HTTP/2 routes per stream: each call by its own headers (gRPC metadata), on one client
    connection."""

    def setUp(self):
        try:
            import grpc  # noqa: F401
        except ImportError:
            self.skipTest("python3-grpcio is missing (run tools/install-deps.sh)")
        tmp = tempfile.mkdtemp(prefix="lpk-e2e-router-")
        self.addCleanup(shutil.rmtree, tmp, True)
        self.servers = {}
        for name in ("original", "a", "b"):
            # b takes 3 streams at a time: the router queues the others (RFC 9113 5.1.2).
            server, port = start_grpc_server(name, 3 if name == "b" else None)
            self.addCleanup(server.stop, None)
            self.servers[name] = (server, port)
        self.dead = socket.socket()
        self.dead.bind(("127.0.0.1", 0))  # bound, never listening: refused
        self.addCleanup(self.dead.close)
        self.routes = [{"header": "x-lpk-route", "value": v, "session": f"s-{v}",
                        "target": f"127.0.0.1:{port}"}
                       for v, port in (("a", self.servers["a"][1]), ("b", self.servers["b"][1]),
                                       ("dead", self.dead.getsockname()[1]))]
        self.path = os.path.join(tmp, "routes.json")
        write_routes(self.path, self.routes, [f"127.0.0.1:{self.servers['original'][1]}"])
        self.router = e2e.Router(self.path)
        self.addCleanup(self.router.stop)
        self.router.wait_routes(lambda d: d["routes"])

    def channel(self):
        """A channel (so one connection) of its own: grpc shares connections between channels
        to one target unless told not to; no proxy from the environment."""
        import grpc
        options = [("grpc.use_local_subchannel_pool", 1), ("grpc.enable_http_proxy", 0),
                   ("grpc.enable_retries", 0)]
        ch = grpc.insecure_channel(f"127.0.0.1:{self.router.ports[0]}", options=options)
        self.addCleanup(ch.close)
        return ch

    def call(self, payload, metadata=()):
        """One call on a channel of its own."""
        with self.channel() as ch:
            return ch.unary_unary("/lpk.Echo/Call")(payload, metadata=metadata,
                                                     timeout=20 * e2e.SLACK)

    def counts(self):
        doc = self.router.routes()
        return ({r["value"]: r["requests"] for r in doc["routes"]}, doc["original"]["requests"],
                doc["h2_connections"])

    def test_metadata_picks_the_session_and_none_the_original(self):
        self.assertEqual(self.call(b"one", (("x-lpk-route", "a"),)), b"a a one")
        self.assertEqual(self.call(b"two"), b"original - two")
        self.assertEqual(self.call(b"three", (("x-lpk-route", "c"),)), b"original c three")
        big = os.urandom(1 << 20)
        self.assertEqual(self.call(big, (("x-lpk-route", "a"),)), b"a a " + big)
        self.assertEqual(self.counts(), ({"a": 2, "b": 0, "dead": 0}, 2, 4))

    def test_one_channel_routes_each_call_by_its_own_metadata(self):
        call = self.channel().unary_unary("/lpk.Echo/Call")
        order = [("a", "a"), (None, "original"), ("a", "a"), ("b", "b"), ("c", "original"),
                 (None, "original"), ("a", "a")]
        for i, (route, who) in enumerate(order):
            metadata = (("x-lpk-route", route),) if route else ()
            got = call(str(i).encode(), metadata=metadata, timeout=20 * e2e.SLACK)
            self.assertEqual(got, f"{who} {route or '-'} {i}".encode())
        # One client connection throughout, and one router connection to each backend.
        self.assertEqual(self.counts(), ({"a": 3, "b": 1, "dead": 0}, 3, 1))
        for name in ("original", "a", "b"):
            self.assertEqual(len(self.servers[name][0].peers), 1, name)

    def test_a_hundred_concurrent_calls_each_reach_their_backend(self):
        call = self.channel().unary_unary("/lpk.Echo/Call")
        routes = ["a", None, "b", "c"]
        futures = []
        for i in range(100):
            route = routes[i % 4]
            metadata = (("x-lpk-route", route),) if route else ()
            payload = os.urandom(1 + (i * 997) % 70000)  # some over one DATA frame
            futures.append((route, payload, call.future(payload, metadata=metadata,
                                                        timeout=30 * e2e.SLACK)))
        for route, payload, future in futures:
            who = route if route in ("a", "b") else "original"
            self.assertEqual(future.result(), f"{who} {route or '-'} ".encode() + payload)
        self.assertEqual(self.counts(), ({"a": 25, "b": 25, "dead": 0}, 50, 1))

    def test_a_stream_flows_while_unary_calls_route_elsewhere(self):
        import queue
        ch = self.channel()
        chat, call = ch.stream_stream("/lpk.Echo/Chat"), ch.unary_unary("/lpk.Echo/Call")
        outbox = queue.Queue()
        replies = chat(iter(outbox.get, None), metadata=(("x-lpk-route", "b"),),
                       timeout=60 * e2e.SLACK)
        for i in range(5):
            outbox.put(f"m{i}".encode())
            self.assertEqual(next(replies), f"b b m{i}".encode())  # while the stream is open
            self.assertEqual(call(b"u", timeout=20 * e2e.SLACK), b"original - u")
            self.assertEqual(call(b"v", metadata=(("x-lpk-route", "a"),),
                                  timeout=20 * e2e.SLACK), b"a a v")
        outbox.put(None)  # the client's half ends; then the server's
        self.assertEqual(list(replies), [])
        self.assertEqual(self.counts(), ({"a": 5, "b": 1, "dead": 0}, 5, 1))

    def test_a_backend_that_is_down_fails_that_call_and_the_next_works(self):
        import grpc
        call = self.channel().unary_unary("/lpk.Echo/Call")
        with self.assertRaises(grpc.RpcError) as failed:
            call(b"x", metadata=(("x-lpk-route", "dead"),), timeout=20 * e2e.SLACK)
        self.assertEqual(failed.exception.code(), grpc.StatusCode.UNAVAILABLE)
        self.assertIn("502", failed.exception.details())
        self.assertEqual(call(b"y", metadata=(("x-lpk-route", "a"),), timeout=20 * e2e.SLACK),
                         b"a a y")
        self.assertEqual(call(b"z", timeout=20 * e2e.SLACK), b"original - z")
        self.assertEqual(self.counts(), ({"a": 1, "b": 0, "dead": 1}, 1, 1))

    def test_a_backend_that_breaks_http2_fails_its_calls_only(self):
        import grpc

        def broken(c, server):
            got = b""
            while len(got) < 24 + 9:  # the router's preface and its SETTINGS frame's header
                data = c.recv(65536)
                if not data:
                    return
                got += data
            server.results.append(got[:24])
            c.sendall(h2_frame(4, 0, b"12345"))  # a SETTINGS of 5 bytes: FRAME_SIZE_ERROR
            while c.recv(65536):
                pass

        server = e2e.Server(broken)
        self.addCleanup(server.close)
        write_routes(self.path, self.routes + [{"header": "x-lpk-route", "value": "broken",
                                                "session": "s-broken",
                                                "target": f"127.0.0.1:{server.addr[1]}"}],
                     [f"127.0.0.1:{self.servers['original'][1]}"])
        self.router.wait_routes(lambda d: len(d["routes"]) == 4)
        call = self.channel().unary_unary("/lpk.Echo/Call")
        with self.assertRaises(grpc.RpcError) as failed:
            call(b"x", metadata=(("x-lpk-route", "broken"),), timeout=20 * e2e.SLACK)
        self.assertEqual(failed.exception.code(), grpc.StatusCode.UNAVAILABLE)
        self.assertEqual(server.results, [b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"])
        # The router closed that connection and tried no other; the client's goes on.
        server.wait_for(lambda srv: srv.active == 0, what="the router to close the backend")
        self.assertEqual(server.accepted, 1)
        self.assertEqual(call(b"y", metadata=(("x-lpk-route", "a"),), timeout=20 * e2e.SLACK),
                         b"a a y")
        self.assertEqual(self.counts()[2], 1)

    def test_a_malformed_frame_ends_only_its_connection(self):
        call = self.channel().unary_unary("/lpk.Echo/Call")
        self.assertEqual(call(b"before", timeout=20 * e2e.SLACK), b"original - before")
        s = socket.create_connection(("127.0.0.1", self.router.ports[0]), timeout=10 * e2e.SLACK)
        self.addCleanup(s.close)
        f = s.makefile("rb")
        # A PING on a stream: a connection error (RFC 9113 6.7), PROTOCOL_ERROR.
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(4, 0, b"") +
                  h2_frame(6, 0, b"12345678", 1))
        frames = []
        while (frame := read_h2_frame(f)) is not None:
            frames.append(frame)
        goaways = [p for kind, _, _, p in frames if kind == 7]
        self.assertEqual(len(goaways), 1, frames)
        self.assertEqual(int.from_bytes(goaways[0][4:8], "big"), 1)  # PROTOCOL_ERROR, then EOF
        self.assertEqual(call(b"after", metadata=(("x-lpk-route", "a"),),
                              timeout=20 * e2e.SLACK), b"a a after")

    def test_rapid_resets_end_only_their_connection(self):
        """CVE-2023-44487: streams opened and reset at once, each before its answer (a unary
        gRPC call is answered only after its message): the router closes that connection with
        GOAWAY ENHANCE_YOUR_CALM instead of opening backend streams as fast as frames come;
        other connections are served."""
        def literal(name, value):  # HPACK literal without indexing, new name, no Huffman
            return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value

        block = b"".join(literal(n, v) for n, v in (
            (b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/lpk.Echo/Call"),
            (b":authority", b"router"), (b"content-type", b"application/grpc"),
            (b"te", b"trailers")))
        s = socket.create_connection(("127.0.0.1", self.router.ports[0]), timeout=10 * e2e.SLACK)
        self.addCleanup(s.close)
        f = s.makefile("rb")
        flood = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(4, 0, b"")
        # HEADERS without END_STREAM, then RST_STREAM CANCEL: 100 of them, the last one the
        # router reads is the one that ends the connection (nothing left unread to make the
        # close a TCP reset).
        for stream in range(1, 2 * 100, 2):
            flood += h2_frame(1, 4, block, stream) + h2_frame(3, 0, (8).to_bytes(4, "big"), stream)
        s.sendall(flood)
        frames = []
        while (frame := read_h2_frame(f)) is not None:
            frames.append(frame)
        goaways = [p for kind, _, _, p in frames if kind == 7]
        self.assertEqual(len(goaways), 1, frames[-5:])
        self.assertEqual(int.from_bytes(goaways[0][4:8], "big"), 0xb)  # ENHANCE_YOUR_CALM
        self.assertEqual(self.call(b"after", (("x-lpk-route", "a"),)), b"a a after")

    def test_sigterm_lets_the_streams_in_flight_finish(self):
        import queue
        chat = self.channel().stream_stream("/lpk.Echo/Chat")
        outbox = queue.Queue()
        replies = chat(iter(outbox.get, None), metadata=(("x-lpk-route", "a"),),
                       timeout=60 * e2e.SLACK)
        outbox.put(b"before")
        self.assertEqual(next(replies), b"a a before")
        self.router.p.send_signal(signal.SIGTERM)  # GOAWAY: no new stream, this one goes on
        deadline = time.monotonic() + 10 * e2e.SLACK
        while True:  # the router has begun to drain once its admin port is closed
            try:
                self.router.admin_get("/healthz")
            except OSError:
                break
            self.assertLess(time.monotonic(), deadline, "the router did not drain")
            time.sleep(0.02)  # polling the event itself: the admin port
        outbox.put(b"after")
        self.assertEqual(next(replies), b"a a after")
        outbox.put(None)
        self.assertEqual(list(replies), [])
        self.assertEqual(self.router.wait_exit(10), 0)  # once the connection closed

    def test_a_large_upload_on_one_stream_with_bounded_memory(self):
        ch = self.channel()
        sink = ch.stream_unary("/lpk.Echo/Sink")
        block, count = os.urandom(1 << 20), 64
        got = sink(iter([block] * count), metadata=(("x-lpk-route", "a"),),
                   timeout=120 * e2e.SLACK)
        digest = hashlib.sha256(block * count).hexdigest()
        self.assertEqual(got, f"a a {digest} {count << 20}".encode())
        self.assertLess(router_peak_kib(self.router), rss_bound_kib(self.router, 32 * 1024))

    def test_a_client_that_waits_for_the_servers_settings(self):
        """As grpc-go does: preface and SETTINGS, then nothing until the server's SETTINGS; the
        router answers as the server it is."""
        def frame(kind, flags, payload, stream=0):
            return (len(payload).to_bytes(3, "big") + bytes([kind, flags]) +
                    stream.to_bytes(4, "big") + payload)

        def literal(name, value):  # HPACK literal without indexing, new name, no Huffman
            return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value

        s = socket.create_connection(("127.0.0.1", self.router.ports[0]), timeout=10 * e2e.SLACK)
        self.addCleanup(s.close)
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, b""))
        f = s.makefile("rb")
        first = read_h2_frame(f)  # the router's own SETTINGS, before any request
        self.assertEqual(first[:3], (4, 0, 0))
        block = b"".join(literal(n, v) for n, v in (
            (b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/lpk.Echo/Call"),
            (b":authority", b"router"), (b"content-type", b"application/grpc"),
            (b"te", b"trailers"), (b"x-lpk-route", b"a")))
        message = b"\x00" + (4).to_bytes(4, "big") + b"ping"
        s.sendall(frame(4, 1, b"") + frame(1, 4, block, 1) + frame(0, 1, message, 1))
        data = b""
        while True:  # the router's frames, up to the trailers that end stream 1
            got = read_h2_frame(f)
            self.assertIsNotNone(got, "the connection ended before the response")
            kind, flags, _, payload = got
            if kind == 0:
                data += payload
            if kind == 1 and flags & 1:
                break
            self.assertNotIn(kind, (3, 7), f"the backend reset the stream or connection: {payload!r}")
        self.assertEqual(data[5:], b"a a ping")


if __name__ == "__main__":
    e2e.main()

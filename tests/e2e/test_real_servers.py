"""Real nginx and redis-server behind lpk-agent, driven by curl, redis-cli and
redis-benchmark through lpk-proxy (issue 2)."""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lpk_e2e as e2e  # noqa: E402

BIG = 64 << 20
NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  types {{ text/html html; application/octet-stream bin; }}
  server {{
    listen 127.0.0.1:{port}{listen_extra};
    root {dir}/www;
  }}
}}
"""


def start_nginx(tmp, http2=False):
    """nginx serving index.html and a 64 MiB big.bin; http2: HTTP/2 with prior knowledge (h2c)
    on its cleartext port instead of HTTP/1.1."""
    os.makedirs(f"{tmp}/www")
    with open(f"{tmp}/www/index.html", "w") as f:
        f.write("<html><body>hello from nginx behind lpk</body></html>\n")
    data = os.urandom(BIG)
    with open(f"{tmp}/www/big.bin", "wb") as f:
        f.write(data)

    def start():
        port = e2e.free_port()
        with open(f"{tmp}/nginx.conf", "w") as f:
            f.write(NGINX_CONF.format(dir=tmp, port=port, listen_extra=" http2" if http2 else ""))
        log = f"{tmp}/error.log"
        if os.path.exists(log):
            os.unlink(log)
        proc = e2e.Proc(["nginx", "-p", tmp, "-c", f"{tmp}/nginx.conf", "-e", log], name="nginx")
        proc.logs.append(log)
        # Listening on the port is not enough: it must be nginx that listens there.
        if not e2e.wait_listening(proc, "127.0.0.1", port):
            proc.wait_exit()
            if "Address already in use" in e2e.tail_of(log, 20):
                raise e2e.PortInUse()
            raise AssertionError("nginx did not start\n" + proc.describe())
        return proc, port

    proc, port = e2e.retry_on_port_collision(start)
    return proc, port, hashlib.sha256(data).hexdigest()


def start_redis(tmp):
    def start():
        port = e2e.free_port()
        proc = e2e.Proc(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save",
                         "", "--appendonly", "no", "--dir", tmp, "--daemonize", "no"],
                        name="redis")
        try:
            proc.wait_line(r"Ready to accept connections", timeout=10)  # after its bind
        except AssertionError:
            if proc.wait_exit(2) is not None and any("in use" in l for l in proc.lines):
                raise e2e.PortInUse() from None
            raise
        return proc, port

    return e2e.retry_on_port_collision(start)


class NginxTest(unittest.TestCase):
    def setUp(self):
        e2e.require_tools("nginx", "curl")
        self.tmp = tempfile.mkdtemp(prefix="lpk-e2e-nginx-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.nginx, port, self.big_sha = start_nginx(self.tmp)
        self.addCleanup(self.nginx.stop)
        self.agent = e2e.Agent()
        self.addCleanup(self.agent.stop)
        # Once by IP literal, once by service name (a stable pool address).
        self.proxy = e2e.Proxy(self.agent.tunnel_str, [f"127.0.0.1:0=127.0.0.1:{port}",
                                                        f"web:8080=127.0.0.1:{port}"])
        self.addCleanup(self.proxy.stop)

    def curl(self, url, *extra):
        return subprocess.run(["curl", "-sS", "--fail", "--noproxy", "*", "--max-time", "60",
                               *extra, url], capture_output=True, timeout=90)

    def test_page_and_large_file(self):
        for host, port in self.proxy.listens:
            with self.subTest(listener=f"{host}:{port}"):
                r = self.curl(f"http://{host}:{port}/index.html")
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn(b"hello from nginx behind lpk", r.stdout)
                r = self.curl(f"http://{host}:{port}/big.bin")
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(len(r.stdout), BIG)
                self.assertEqual(hashlib.sha256(r.stdout).hexdigest(), self.big_sha)

    def test_keepalive_and_parallel_requests(self):
        host, port = self.proxy.listens[0]
        urls = [f"http://{host}:{port}/index.html"] * 50
        r = self.curl(urls[0], "--parallel", "--parallel-max", "20", *urls[1:])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.count(b"hello from nginx behind lpk"), len(urls))

    def test_name_gets_pool_address(self):
        host, port = self.proxy.listens[1]
        self.assertTrue(host.startswith("127."), host)
        self.assertNotEqual(host, "127.0.0.1")
        self.assertEqual(port, 8080)


class RedisTest(unittest.TestCase):
    def setUp(self):
        e2e.require_tools("redis-server", "redis-cli", "redis-benchmark")
        self.tmp = tempfile.mkdtemp(prefix="lpk-e2e-redis-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.redis, port = start_redis(self.tmp)
        self.addCleanup(self.redis.stop)
        self.agent = e2e.Agent()
        self.addCleanup(self.agent.stop)
        self.proxy = e2e.Proxy(self.agent.tunnel_str, [f"127.0.0.1:0=127.0.0.1:{port}"])
        self.addCleanup(self.proxy.stop)
        self.host, self.port = self.proxy.listens[0]

    def cli(self, *args, stdin=None):
        r = subprocess.run(["redis-cli", "-h", self.host, "-p", str(self.port), *args],
                           input=stdin, capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def test_benchmark_get_set(self):
        r = subprocess.run(["redis-benchmark", "-h", self.host, "-p", str(self.port),
                            "-t", "get,set", "-n", "20000", "-q"],
                           capture_output=True, text=True, timeout=300)
        print("\n  " + r.stdout.strip().replace("\r", "").split("\n")[-1], flush=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = [l.rsplit("\r", 1)[-1] for l in r.stdout.splitlines()]
        for cmd in ("SET", "GET"):
            self.assertTrue(any(l.startswith(f"{cmd}:") and "requests per second" in l
                                for l in lines), r.stdout + r.stderr)
        self.assertNotIn("rror", r.stdout + r.stderr)

    def test_set_get_values(self):
        self.assertEqual(self.cli("SET", "lpk:greeting", "hello through the tunnel"), b"OK\n")
        self.assertEqual(self.cli("GET", "lpk:greeting"), b"hello through the tunnel\n")
        big = os.urandom(3 << 20).hex().encode()  # 6 MiB value, printable for redis-cli -x
        self.assertEqual(self.cli("-x", "SET", "lpk:big", stdin=big), b"OK\n")
        self.assertEqual(self.cli("STRLEN", "lpk:big"), str(len(big)).encode() + b"\n")
        self.assertEqual(self.cli("GET", "lpk:big"), big + b"\n")


if __name__ == "__main__":
    e2e.main()

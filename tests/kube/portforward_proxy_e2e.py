#!/usr/bin/python3
"""lpk-proxy run --agent-pod against lpk-kubesim through real proxies: the port-forward
WebSocket (and the REST calls) go through microsocks (SOCKS5, with and without a password) and
through tinyproxy behind stunnel4 (an https:// proxy: TLS to the proxy, CONNECT inside it, TLS to
the API server inside that). The proxies' own sockets and logs show the traffic went through them;
refusals (wrong password, CONNECT 403, an unverifiable proxy certificate) are one line naming the
proxy.

Usage: portforward_proxy_e2e.py --kubesim PATH --agent PATH --proxy PATH
Needs root (kubesim pods are network namespaces) and microsocks, tinyproxy, stunnel4, openssl
(tools/install-deps.sh); skipped with the reason otherwise."""

import base64
import os
import re
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lpk_e2e as e2e  # noqa: E402
import portforward_e2e as pf  # noqa: E402

PROXY_TOOLS = ("microsocks", "tinyproxy", "stunnel4", "openssl", "ss")


def established(pid):
    """Peer ports of the established TCP connections of process `pid`."""
    out = subprocess.run(["ss", "-Htnp", "state", "established"], capture_output=True, text=True,
                         check=True).stdout
    return {e2e.split_hostport(l.split()[3])[1] for l in out.splitlines()
            if re.search(rf"pid={pid},", l)}


class ThroughProxies(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        reason = pf.skip_reason()
        missing = [t for t in PROXY_TOOLS if shutil.which(t) is None]
        if not reason and missing:
            reason = "missing tools (tools/install-deps.sh installs them): " + ", ".join(missing)
        if reason:
            raise unittest.SkipTest(reason)
        cls.sim = pf.Kubesim(e2e.AGENT)
        cls.addClassCleanup(cls.sim.stop)
        cls.sim.run_pod("agent", "lpk/lpk-agent:dev", ["--listen", "127.0.0.1:4590"])
        cls.sim.run_pod("web", "nginx", port=80)
        cls.sim.kubectl("expose", "pod", "web", "--port", "8080", "--target-port", "80")
        cls.api_port = int(re.search(r"server: https://127\.0\.0\.1:(\d+)",
                                     cls.sim.kubectl("config", "view")).group(1))
        cls.make_certificates()

    @classmethod
    def make_certificates(cls):
        """A test CA and a certificate for 127.0.0.1 that it signed; the kubeconfig's CA data
        becomes kubesim's CA plus this one, which is how a user trusts a proxy (kubectl verifies
        the proxy with the cluster's certificate-authority)."""
        d = cls.sim.dir
        run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True)
        run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=proxy-ca",
            "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.pem")
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", f"{d}/proxy.key", "-out", f"{d}/proxy.csr")
        with open(f"{d}/ext", "w") as f:
            f.write("subjectAltName=IP:127.0.0.1\n")
        run("x509", "-req", "-in", f"{d}/proxy.csr", "-CA", f"{d}/ca.pem", "-CAkey",
            f"{d}/ca.key", "-CAcreateserial", "-days", "1", "-extfile", f"{d}/ext",
            "-out", f"{d}/proxy.pem")
        raw = cls.sim.kubectl("config", "view", "--raw", "-o",
                              "jsonpath={.clusters[0].cluster.certificate-authority-data}")
        with open(f"{d}/bundle.pem", "wb") as f:
            f.write(base64.b64decode(raw) + open(f"{d}/ca.pem", "rb").read())

    def kubeconfig(self, name, proxy_url, trust_proxy_ca=False):
        """A copy of kubesim's kubeconfig whose cluster has `proxy-url: proxy_url`."""
        path = os.path.join(self.sim.dir, name + ".kubeconfig")
        shutil.copy(self.sim.kubeconfig, path)
        cluster = self.sim.kubectl("config", "view", "-o", "jsonpath={.clusters[0].name}")
        args = ["--kubeconfig", path, "config", "set-cluster", cluster, "--proxy-url", proxy_url]
        if trust_proxy_ca:
            args += ["--certificate-authority", os.path.join(self.sim.dir, "bundle.pem"),
                     "--embed-certs"]
        self.sim.kubectl(*args)
        return path

    def server(self, argv, name, port):
        """Starts a proxy server on a free port (retried if another process takes it)."""
        def start():
            p = port()
            proc = e2e.Proc(argv(p), name=name)
            if not wait_listening(proc, p):
                stop_server(proc)
                raise e2e.PortInUse()
            self.addCleanup(stop_server, proc)
            return proc, p
        return e2e.retry_on_port_collision(start)

    def microsocks(self, *auth):
        return self.server(lambda p: ["microsocks", "-i", "127.0.0.1", "-p", str(p), *auth],
                           "microsocks", e2e.free_port)

    def https_proxy(self, connect_ports=()):
        """tinyproxy on loopback with stunnel4 in front of it: an https:// proxy. Returns
        tinyproxy (which dials the API server), the stunnel port (the proxy URL's) and
        tinyproxy's log file."""
        d = self.sim.dir
        log = os.path.join(d, self.id().rsplit(".", 1)[1] + ".tinyproxy.log")
        def tinyproxy_argv(p):
            conf = log + ".conf"
            with open(conf, "w") as f:
                f.write(f"Port {p}\nListen 127.0.0.1\nTimeout 600\nLogFile \"{log}\"\n"
                        "LogLevel Info\nMaxClients 50\n" +
                        "".join(f"ConnectPort {c}\n" for c in connect_ports))
            return ["tinyproxy", "-d", "-c", conf]
        tinyproxy, tp = self.server(tinyproxy_argv, "tinyproxy", e2e.free_port)
        def stunnel_argv(p):
            conf = log + ".stunnel"
            with open(conf, "w") as f:
                f.write(f"foreground = yes\npid =\ndebug = info\n[proxy]\n"
                        f"accept = 127.0.0.1:{p}\nconnect = 127.0.0.1:{tp}\n"
                        f"cert = {d}/proxy.pem\nkey = {d}/proxy.key\n")
            return ["stunnel4", conf]
        _, sp = self.server(stunnel_argv, "stunnel4", e2e.free_port)
        return tinyproxy, sp, log

    def lpk(self, kubeconfig, wait_ready=True):
        argv = [e2e.PROXY, "run", "--agent-pod", "default/agent:4590", "--kubeconfig", kubeconfig,
                "--map", "127.0.0.1:0=web.default.svc.cluster.local:8080"]
        p = e2e.Proc(argv, name="lpk-proxy")
        self.addCleanup(p.stop)
        (web,) = [e2e.split_hostport(m.group(1))
                  for m in p.wait_lines(e2e.PROXY_LINES["listen"], 1, timeout=10)]
        if wait_ready:
            p.wait_line(e2e.PROXY_LINES["ready"], timeout=30)
        return p, web

    def assert_nginx_through(self, lpk, web, proxy_pid, proxy_port):
        r = subprocess.run(["curl", "-sS", "-m", "10", f"http://{web[0]}:{web[1]}/"],
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr + lpk.describe())
        self.assertIn("Welcome to nginx", r.stdout)
        # The tunnel's WebSocket is up now: lpk-proxy holds a connection to the proxy and none
        # to the API server, and the proxy holds one to the API server.
        self.assertIn(proxy_port, established(lpk.p.pid))
        self.assertNotIn(self.api_port, established(lpk.p.pid))
        self.assertIn(self.api_port, established(proxy_pid))

    def test_socks5_without_credentials(self):
        socks, port = self.microsocks()
        lpk, web = self.lpk(self.kubeconfig("socks", f"socks5://127.0.0.1:{port}"))
        self.assert_nginx_through(lpk, web, socks.p.pid, port)

    def test_socks5_with_username_and_password(self):
        socks, port = self.microsocks("-u", "kube", "-P", "s3:cr@t")
        lpk, web = self.lpk(self.kubeconfig("socks-auth",
                                            f"socks5://kube:s3%3Acr%40t@127.0.0.1:{port}"))
        self.assert_nginx_through(lpk, web, socks.p.pid, port)

    def test_socks5_wrong_password_is_one_line_naming_the_proxy(self):
        _, port = self.microsocks("-u", "kube", "-P", "right")
        lpk, _ = self.lpk(self.kubeconfig("socks-bad", f"socks5://kube:wrong@127.0.0.1:{port}"),
                          wait_ready=False)
        self.assertTrue(pf.wait_for_stderr(
            lpk, rf"the proxy socks5://127\.0\.0\.1:{port} refused the credentials .*wrong "
                 "username or password"), "\n".join(lpk.err))

    def test_https_proxy_tls_inside_tls(self):
        tinyproxy, port, log = self.https_proxy()
        lpk, web = self.lpk(self.kubeconfig("https", f"https://127.0.0.1:{port}",
                                            trust_proxy_ca=True))
        self.assert_nginx_through(lpk, web, tinyproxy.p.pid, port)
        with open(log) as f:
            self.assertRegex(f.read(), rf"CONNECT 127\.0\.0\.1:{self.api_port}")

    def test_https_proxy_refusing_connect_is_one_line(self):
        _, port, _ = self.https_proxy(connect_ports=(443,))  # the API server's port is not
        lpk, _ = self.lpk(self.kubeconfig("https-403", f"https://127.0.0.1:{port}",
                                          trust_proxy_ca=True), wait_ready=False)
        self.assertTrue(pf.wait_for_stderr(
            lpk, rf"the proxy https://127\.0\.0\.1:{port} refused CONNECT 127\.0\.0\.1:"
                 rf"{self.api_port} with HTTP 403"), "\n".join(lpk.err))

    def test_https_proxy_certificate_is_verified(self):
        _, port, log = self.https_proxy()
        lpk, _ = self.lpk(self.kubeconfig("https-untrusted", f"https://127.0.0.1:{port}"),
                          wait_ready=False)
        self.assertTrue(pf.wait_for_stderr(lpk, r"(?i)certificate verify failed"),
                        "\n".join(lpk.err))
        with open(log) as f:
            self.assertNotIn("CONNECT", f.read())


def stop_server(proc):
    """microsocks ends by dying of SIGTERM (it has no handler), the others exit 0: both are a
    clean stop; anything else (it crashed earlier, hangs) fails the test with its output."""
    if proc.p.poll() is None:
        proc.p.terminate()
    rc = proc.wait_exit(10)
    if rc is None:
        os.killpg(proc.p.pid, e2e.signal.SIGKILL)
        proc.p.wait()
    proc.collected = True
    if rc not in (0, -e2e.signal.SIGTERM):
        raise AssertionError(f"{proc.name} ended badly ({rc})\n" + proc.describe())


def wait_listening(proc, port, timeout=10.0):
    """True once something listens on 127.0.0.1:port; False if `proc` ended first."""
    deadline = e2e.time.monotonic() + timeout * e2e.SLACK
    while e2e.time.monotonic() < deadline:
        if proc.p.poll() is not None:
            return False
        if e2e.listening_pids("127.0.0.1", port):
            return True
        e2e.time.sleep(0.05)
    return False


if __name__ == "__main__":
    pf.isolate(__file__)
    for a in list(sys.argv):
        if a.startswith("--kubesim="):
            pf.KUBESIM = a.split("=", 1)[1]
            sys.argv.remove(a)
    e2e.main()

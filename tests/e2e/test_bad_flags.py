"""Bad flags: each binary prints ONE line on stderr and exits non-zero. A port that cannot be
bound gets a one-line error naming the port while the other listeners keep working (issue 2)."""

import os
import re
import socket
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lpk_e2e as e2e  # noqa: E402


def run(argv, env=None):
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=5 * e2e.SLACK,
                              stdin=subprocess.DEVNULL, env=env)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"{argv}: still running after 5s instead of rejecting the flags; "
                             f"stderr: {e.stderr!r}") from None


class BadFlagsTest(unittest.TestCase):
    def check_one_line(self, argv, must_mention=None, env=None):
        r = run(argv, env)
        lines = r.stderr.splitlines()
        self.assertNotEqual(r.returncode, 0, f"{argv} exited 0")
        self.assertGreater(r.returncode, 0, f"{argv} died of a signal: {r.returncode}")
        self.assertEqual(len(lines), 1, f"{argv}: expected one stderr line, got:\n{r.stderr}")
        self.assertTrue(lines[0].strip(), f"{argv}: empty stderr line")
        if must_mention:
            self.assertIn(must_mention, lines[0])
        self.assertEqual(r.stdout.strip(), "", f"{argv}: nothing belongs on stdout")

    def test_agent_bad_flags(self):
        cases = [
            (["--no-such-flag"], "--no-such-flag"),
            (["--listen", "not-an-address"], None),
            (["--listen", "127.0.0.1:99999"], "99999"),
            (["--listen", "127.0.0.1:-1"], None),
            (["--listen", "127.0.0.1:abc"], "--listen"),  # must say which flag is wrong
            (["--serve", "70000"], "70000"),
            (["--serve", "http"], None),
            (["--connect-timeout", "soon"], None),
            (["--dead-link-timeout", "50ms"], "--dead-link-timeout"),
            (["--dead-link-timeout", "soon"], "--dead-link-timeout"),
            (["--resume-grace", "0"], "--resume-grace"),
            (["--log-level", "loud"], None),
            (["--secret-env", "LPK_E2E_NO_SUCH_VARIABLE"], "LPK_E2E_NO_SUCH_VARIABLE"),
            (["--listen"], None),  # missing value
        ]
        for args, mention in cases:
            with self.subTest(args=args):
                self.check_one_line([e2e.AGENT, *args], mention)

    def test_router_bad_flags(self):
        ok = ["--service", "api", "--original-selector", "app=api", "--admin-port", "0"]
        cases = [
            (["--no-such-flag", "x"], "--no-such-flag"),
            (["--service", "api"], "--port"),  # no --port
            (ok[2:] + ["--port", "0"], "--service"),
            (["--service", "api", "--port", "0"], "--original-selector"),
            (ok + ["--port", "99999"], "99999"),
            (ok + ["--port", "80=no-port"], "--port"),
            (ok + ["--port", "80=host:0"], "--port"),
            (["--service", "api", "--original-selector", "app", "--port", "0"], "--original-selector"),
            (ok + ["--port", "0", "--log-level", "loud"], "--log-level"),
            (ok + ["--port", "0", "--idle-timeout", "soon"], "--idle-timeout"),
            (ok + ["--port", "0", "--admin-port"], None),  # missing value
            # Not in a pod and no --routes-file: says so before binding anything.
            (ok + ["--port", "0"], "--routes-file"),
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
        for args, mention in cases:
            with self.subTest(args=args):
                self.check_one_line([e2e.AGENT, "router", *args], mention, env)

    def test_proxy_bad_flags(self):
        cases = [
            (["run", "--no-such-flag"], "--no-such-flag"),
            (["no-such-command"], None),
            (["run", "--agent", "127.0.0.1:1", "--map", "garbage"], None),
            (["run", "--agent", "127.0.0.1:1", "--map", "127.0.0.1:0=missing-port"], None),
            (["run", "--agent", "127.0.0.1:1", "--map", "127.0.0.1:0=host:notaport"], None),
            (["run", "--agent", "127.0.0.1:1", "--map", "=127.0.0.1:80"], None),
            (["run", "--agent", "127.0.0.1:1", "--map-file", "/nonexistent/lpk-map"], None),
            (["run", "--agent", "127.0.0.1:1", "--pool", "10.0.0.0/33"], None),
            (["run", "--agent", "127.0.0.1:1", "--local-port", "seventy"], None),
            (["run", "--agent", "127.0.0.1:1", "--dead-link-timeout", "2h"], "--dead-link-timeout"),
            (["run", "--agent", "127.0.0.1:1", "--resume-grace", "2d"], "--resume-grace"),
            (["connect", "--service", "api", "--dead-link-timeout", "-1"], "--dead-link-timeout"),
            (["connect", "--service", "api", "--resume-grace", "10ms"], "--resume-grace"),
            (["connect", "--local-port", "8080"], "--local-port"),  # outbound only: no inbound
            (["connect", "--container", "api"], "--container"),
            (["run", "--agent", "nowhere"], None),
            (["run", "--agent", "127.0.0.1:70000"], "70000"),
            (["run", "--agent", "127.0.0.1:1", "--map", "127.0.0.1:70000=127.0.0.1:80"], "70000"),
            (["run", "--agent", "127.0.0.1:1", "--pool", "10.0.0.0/16"], None),  # not loopback
            (["run", "--map", "127.0.0.1:0=127.0.0.1:80"], "--agent"),  # --agent is required
        ]
        for args, mention in cases:
            with self.subTest(args=args):
                self.check_one_line([e2e.PROXY, *args], mention)

    def test_connect_dns_in_use_is_refused_before_the_cluster_is_touched(self):
        # The check comes before the kubeconfig is even read: a kubeconfig that does not exist
        # would be the next error, so seeing the DNS line proves nothing else ran first.
        busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        busy.bind(("127.0.0.1", 0))
        self.addCleanup(busy.close)
        where = f"127.0.0.1:{busy.getsockname()[1]}"
        self.check_one_line([e2e.PROXY, "connect", "--service", "api", "--dns", where,
                             "--kubeconfig", "/nonexistent/kubeconfig"], where)

    def test_proxy_port_in_use_others_keep_working(self):
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        self.addCleanup(busy.close)
        port = busy.getsockname()[1]
        server = e2e.Server(e2e.echo_handler)
        self.addCleanup(server.close)
        agent = e2e.Agent()
        self.addCleanup(agent.stop)
        target = "%s:%d" % server.addr
        proxy = e2e.Proxy(agent.tunnel_str, [f"127.0.0.1:{port}={target}",
                                             f"127.0.0.1:0={target}"],
                          log_level="error", expect_listen=1)
        self.addCleanup(proxy.stop)
        self.assertNotEqual(proxy.listens[0], ("127.0.0.1", port))
        self.assertEqual(e2e.echo_once(proxy.listens[0]), b"ping through lpk\n")
        about = [l for l in proxy.err if str(port) in l]
        print(f"\n  stderr: {about}", flush=True)
        self.assertGreaterEqual(len(about), 1, "no stderr line names the busy port:\n"
                                + "\n".join(proxy.err))
        self.assertTrue(proxy.alive())

    def test_agent_serve_port_in_use_tunnel_keeps_working(self):
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        self.addCleanup(busy.close)
        port = busy.getsockname()[1]
        server = e2e.Server(e2e.echo_handler)
        self.addCleanup(server.close)
        agent = e2e.Agent("--serve-address", "127.0.0.1", "--serve", str(port),
                          log_level="error")
        self.addCleanup(agent.stop)
        proxy = e2e.Proxy(agent.tunnel_str, ["127.0.0.1:0=%s:%d" % server.addr])
        self.addCleanup(proxy.stop)
        self.assertEqual(e2e.echo_once(proxy.listens[0]), b"ping through lpk\n")
        about = [l for l in agent.err if str(port) in l]
        print(f"\n  stderr: {about}", flush=True)
        self.assertGreaterEqual(len(about), 1, "no stderr line names the busy port:\n"
                                + "\n".join(agent.err))
        serve = re.compile(e2e.AGENT_LINES["serve"])
        self.assertFalse(any(serve.search(l) for l in agent.lines), agent.lines)
        self.assertTrue(agent.alive())


if __name__ == "__main__":
    e2e.main()

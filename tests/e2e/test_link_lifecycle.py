"""The link's life around the streams (CLI contract of issue 2): lpk-proxy reconnects with
backoff when the agent is not there yet or restarts; a shared secret must match; SIGINT and
SIGTERM end lpk-proxy cleanly with exit 0."""

import os
import signal
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lpk_e2e as e2e  # noqa: E402


def echo_eventually(addr, timeout):
    """An echo through addr that succeeds before the deadline (the link may be coming up)."""
    deadline = time.monotonic() + timeout * e2e.SLACK
    last = None
    while time.monotonic() < deadline:
        try:
            if e2e.echo_once(addr, b"are you there") == b"are you there":
                return
        except OSError as e:
            last = e
        time.sleep(0.1)  # retry pacing while the proxy's backoff runs
    raise AssertionError(f"no working stream through {addr} within {timeout}s (last: {last})")


class LinkLifecycleTest(unittest.TestCase):
    def setUp(self):
        self.server = e2e.Server(e2e.echo_handler)
        self.addCleanup(self.server.close)
        self.target = "127.0.0.1:0=%s:%d" % self.server.addr

    def secret_file(self, text):
        fd, path = tempfile.mkstemp(prefix="lpk-e2e-secret-")
        os.write(fd, text.encode())
        os.close(fd)
        self.addCleanup(os.unlink, path)
        return path

    def test_proxy_started_before_agent_then_agent_restarts(self):
        # The proxy is told the agent's address before the agent exists, so that port cannot
        # be 0: a free one on an address of the test's own, another if the agent finds it taken.
        def attempt():
            agent_at = f"{e2e.private_address()}:{e2e.free_port()}"
            proxy = e2e.Proxy(agent_at, [self.target], wait_ready=False)
            self.addCleanup(proxy.stop)
            return proxy, e2e.Agent(listen=agent_at), agent_at

        proxy, agent, agent_at = e2e.retry_on_port_collision(attempt)
        proxy.wait_line(e2e.PROXY_LINES["ready"], timeout=15)
        echo_eventually(proxy.listens[0], 5)
        # The agent goes away and comes back on the same port: the proxy finds it again.
        agent.stop()
        agent = e2e.Agent(listen=agent_at)
        self.addCleanup(agent.stop)
        echo_eventually(proxy.listens[0], 20)
        self.assertTrue(proxy.alive(), proxy.describe())

    def test_matching_secret_works(self):
        path = self.secret_file("correct horse battery staple\n")
        agent = e2e.Agent("--secret-file", path)
        self.addCleanup(agent.stop)
        proxy = e2e.Proxy(agent.tunnel_str, [self.target], ["--secret-file", path])
        self.addCleanup(proxy.stop)
        self.assertEqual(e2e.echo_once(proxy.listens[0], b"secret ok"), b"secret ok")

    def test_wrong_or_missing_secret_gets_no_tunnel(self):
        agent = e2e.Agent("--secret-file", self.secret_file("the agent's secret"))
        self.addCleanup(agent.stop)
        for extra in (["--secret-file", self.secret_file("another secret")], []):
            with self.subTest(proxy_flags=extra):
                proxy = e2e.Proxy(agent.tunnel_str, [self.target], extra, wait_ready=False)
                # A proxy without the right secret may keep retrying or stop; it never gets
                # `ready`, and nothing it accepts reaches the target.
                try:
                    proxy.wait_line(e2e.PROXY_LINES["ready"], timeout=3)
                    ready = True
                except AssertionError:
                    ready = False
                if proxy.alive():
                    secs, data = e2e.open_until_closed(proxy.listens[0], b"let me in",
                                                       half_close=True)
                    self.assertEqual(data, b"")
                # One that gives up does so soon after the refusal; a SIGTERM sent while it is
                # already stopping could not tell the two endings apart.
                rc = proxy.wait_exit(10)
                if rc is None:
                    proxy.stop()
                else:  # it gave up by itself: a deliberate exit code, not a crash
                    self.assertGreater(rc, 0, proxy.describe())
                self.assertTrue(proxy.err, "no word on stderr about the failed handshake")
                print(f"\n  {proxy.err[-1]}", flush=True)
                self.assertFalse(ready, "lpk-proxy printed `ready` although the agent refused "
                                 "its handshake\n" + proxy.describe())
        self.assertEqual(self.server.accepted, 0, "a stream got through without the secret")
        self.assertTrue(agent.alive())

    def test_sigint_and_sigterm_exit_zero(self):
        agent = e2e.Agent()
        self.addCleanup(agent.stop)
        for sig in (signal.SIGINT, signal.SIGTERM):
            with self.subTest(signal=sig.name):
                proxy = e2e.Proxy(agent.tunnel_str, [self.target])
                live = e2e.connect(proxy.listens[0])  # an open stream must not block the exit
                live.sendall(b"x")
                self.assertEqual(e2e.recv_all_n(live, 1), b"x")
                proxy.stop(sig)  # exit 0, promptly, with a stream open
                live.close()


if __name__ == "__main__":
    e2e.main()

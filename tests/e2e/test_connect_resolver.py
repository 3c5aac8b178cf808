#!/usr/bin/python3
"""`lpk-proxy connect --resolver` (issue 13 item 7): while the session runs, a plain shell of
the machine (not the session's child) resolves `web.demo` to lpk's address through the system
resolver, and outside names still resolve through the machine's own resolver (a dnsmasq started
here); after the session, and after kill -9 plus `lpk-proxy restore`, /etc/resolv.conf is byte
for byte what it was.

The machine's own /etc is never touched: the script runs itself in a private mount namespace
with an overlay on /etc (writes go to a temporary upper directory), whose resolv.conf names the
test's dnsmasq. Needs root (kubesim, unshare, port 53)."""

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

import lpk_e2e as e2e
from connect_case import ConnectCase, main

PRIVATE = "LPK_E2E_PRIVATE_ETC"
OUTSIDE = ("outside.lpk-test.example", "127.1.2.5")


def enter_private_etc():
    """Re-runs this script in a private mount namespace; there, an overlay over /etc."""
    if os.environ.get(PRIVATE) != "1":
        if os.geteuid() != 0 or not shutil.which("unshare"):
            return  # setUpClass skips, saying why
        env = dict(os.environ, **{PRIVATE: "1"})
        os.execvpe("unshare", ["unshare", "-m", "--propagation", "private", sys.executable,
                               *sys.argv], env)
    work = tempfile.mkdtemp(prefix="lpk-private-etc-")
    for d in ("upper", "work"):
        os.mkdir(os.path.join(work, d))
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir=/etc,upperdir={work}/upper,workdir={work}/work", "/etc"],
                   check=True)


def getent(name):
    r = subprocess.run(["getent", "hosts", name], capture_output=True, text=True, timeout=30)
    return r.stdout.split()[0] if r.returncode == 0 and r.stdout else f"(exit {r.returncode})"


class SystemResolver(ConnectCase):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() == 0 and os.environ.get(PRIVATE) != "1":
            raise unittest.SkipTest("not in a private mount namespace (run the script itself)")
        super().setUpClass()
        # The machine's "own" resolver here: dnsmasq on port 53 of a loopback address of its own.
        for _ in range(10):
            cls.upstream = f"127.53.{random.randint(1, 254)}.{random.randint(2, 254)}"
            dnsmasq = e2e.Proc(["dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--no-resolv",
                                "--no-hosts", "--bind-interfaces",
                                f"--listen-address={cls.upstream}", "--port=53", "--user=root",
                                "--log-facility=-", f"--host-record={OUTSIDE[0]},{OUTSIDE[1]}"],
                               name="dnsmasq")
            try:
                dnsmasq.wait_line(r"dnsmasq\[\d+\]: started, version", timeout=10, stderr=True)
                break
            except AssertionError:
                dnsmasq.stop(signal.SIGKILL, 5)
        cls.addClassCleanup(dnsmasq.stop, signal.SIGTERM, 10)
        cls.original = (f"# the test's resolv.conf\nnameserver {cls.upstream}\n"
                        "search corp.example\noptions edns0 timeout:2").encode()

    def setUp(self):
        with open("/etc/resolv.conf", "wb") as f:
            f.write(self.original)
        self.assertEqual(getent(OUTSIDE[0]), OUTSIDE[1], "the test upstream does not answer")

    def etc_resolv_conf(self):
        with open("/etc/resolv.conf", "rb") as f:
            return f.read()

    def lpk(self, *args):
        return subprocess.run([e2e.PROXY, *args], capture_output=True, text=True, env=self.env,
                              timeout=180)

    def start(self):
        proxy = self.connect("-n", "demo", "--resolver")
        lines = e2e.PROXY_LINES
        proxy.wait_line(lines["ready"], timeout=150)
        stub = proxy.wait_line(lines["dns"]).groups()
        mode = proxy.wait_line(lines["resolver"]).groups()
        self.assertEqual(mode, ("resolv.conf", stub[0], "53"), proxy.describe())
        web = [m.group(3) for m in proxy.matching(lines["service"])
               if m.group(1) == "web" and m.group(2) == "demo"]
        return proxy, stub[0], web[0]

    def test_resolver_follows_the_session_and_is_put_back(self):
        r = self.lpk("resolver", "install")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("no lpk session is running", r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)

        proxy, stub, web = self.start()
        live = self.etc_resolv_conf().decode()
        self.assertIn(f"nameserver {stub}\n", live, proxy.describe())
        # A plain shell of the machine, not the child: cluster names through lpk, the rest
        # through the machine's resolver (the stub forwards to the saved original).
        self.assertEqual(getent("web.demo"), web, live + proxy.describe())
        self.assertEqual(getent("web"), web, live + proxy.describe())
        self.assertEqual(getent(OUTSIDE[0]), OUTSIDE[1], live + proxy.describe())
        # By hand, without --address: the running session's stub.
        r = self.lpk("resolver", "install", "--dry-run")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(f"nameserver {stub}\n", r.stdout)
        # A second session may not take the resolver over.
        second = self.connect("-n", "demo", "--resolver", "--timeout", "60")
        self.assertEqual(second.wait_exit(timeout=150), 1, second.describe())
        self.assertIn("has the system resolver", "\n".join(second.err), second.describe())
        self.assertEqual(self.etc_resolv_conf().decode(), live)

        proxy.stop(signal.SIGTERM, 150)
        proxy.wait_line(e2e.PROXY_LINES["resolver_back"], timeout=5)
        self.assertEqual(self.etc_resolv_conf(), self.original, proxy.describe())
        self.assertFalse(os.path.exists("/etc/resolv.conf.lpk-backup"))
        self.assertEqual(getent(OUTSIDE[0]), OUTSIDE[1])

    def test_kill_9_then_restore_puts_the_resolver_back(self):
        proxy, stub, _ = self.start()
        self.assertIn(f"nameserver {stub}\n".encode(), self.etc_resolv_conf())
        os.killpg(proxy.p.pid, signal.SIGKILL)
        proxy.wait_exit(timeout=30)
        r = self.lpk("restore", "--kubeconfig", self.sim.kubeconfig, "-n", "demo")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("system resolver put back", r.stdout)
        self.assertEqual(self.etc_resolv_conf(), self.original, r.stdout + r.stderr)
        self.assertFalse(os.path.exists("/etc/resolv.conf.lpk-backup"))


if __name__ == "__main__":
    enter_private_etc()
    main()

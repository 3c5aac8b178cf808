#!/usr/bin/python3
"""UDP through lpk on kubesim (issue 12, item 3): a UDP echo in a pod, behind a Service with a
UDP port, answers 10,000 datagrams of mixed sizes sent from the host to the service's lpk
address, none lost; a statsd-style sender's fire-and-forget counters all reach the pod; and
kdig asks the cluster DNS (kube-dns in kube-system, 53/UDP) through lpk over UDP. One kubesim and one outbound-only session for the class. Needs root (kubesim).

Sizes: 1 to 1400 bytes, and a few of 65000 (kubesim's pod network has MTU 1500, so those
travel as IP fragments inside the cluster; lpk carries up to 65507, the IPv4 UDP limit)."""

import json
import os
import random
import signal
import socket
import subprocess
import time

import lpk_e2e as e2e
from connect_case import ConnectCase, DEMO_DIR, main

ECHO_PORT = 9000
STATSD_PORT = 8125
ECHO = os.path.join(os.path.abspath(DEMO_DIR), "udp_echo.py")
MANIFESTS = [
    {"apiVersion": "apps/v1", "kind": "Deployment",
     "metadata": {"name": "udp-echo", "namespace": "demo"},
     "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "udp-echo"}},
              "template": {"metadata": {"labels": {"app": "udp-echo"}},
                           "spec": {"containers": [{
                               "name": "echo", "image": "busybox",
                               "command": ["/usr/bin/python3", ECHO, str(ECHO_PORT),
                                           str(STATSD_PORT)],
                               "ports": [{"containerPort": ECHO_PORT, "protocol": "UDP"},
                                         {"containerPort": STATSD_PORT, "protocol": "UDP"}]}]}}}},
    {"apiVersion": "v1", "kind": "Service",
     "metadata": {"name": "udp-echo", "namespace": "demo"},
     "spec": {"selector": {"app": "udp-echo"},
              "ports": [{"name": "echo", "port": ECHO_PORT, "targetPort": ECHO_PORT,
                         "protocol": "UDP"},
                        {"name": "statsd", "port": STATSD_PORT, "targetPort": STATSD_PORT,
                         "protocol": "UDP"}]}}]


def payload(seq, size):
    """Datagram `seq`: its number, then bytes derived from it, `size` bytes in all (>= 1)."""
    head = seq.to_bytes(4, "big")
    body = bytes((seq * 7 + i) & 0xFF for i in range(min(size, 64))) * (size // 64 + 1)
    return (head + body)[:size] if size >= 4 else bytes([seq & 0xFF]) * size


def round_trips(address, sizes, window=32, quiet=5.0):
    """Sends datagrams of `sizes` with at most `window` awaiting their echo; returns
    (sent, echoed correctly, wrong) once every echo came back or none came for `quiet` s."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.connect(address)
    sock.settimeout(quiet)
    waiting, good, wrong, seq = {}, 0, 0, 0
    try:
        while seq < len(sizes) or waiting:
            while seq < len(sizes) and len(waiting) < window:
                data = payload(seq, sizes[seq])
                # Sizes below 4 cannot carry a number: those go one at a time.
                if len(data) < 4 and waiting:
                    break
                waiting[seq if len(data) >= 4 else -1] = data
                sock.send(data)
                seq += 1
            try:
                got = sock.recv(70000)
            except socket.timeout:
                break
            key = int.from_bytes(got[:4], "big") if len(got) >= 4 else -1
            if waiting.pop(key, None) == got:
                good += 1
            else:
                wrong += 1
    finally:
        sock.close()
    return seq, good, wrong


class Udp(ConnectCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not e2e.shutil.which("kdig"):
            raise e2e.unittest.SkipTest("kdig is not installed (knot-dnsutils)")
        for manifest in MANIFESTS:
            cls.sim.kubectl("apply", "-f", "-", input=json.dumps(manifest))
        cls.sim.kubectl("-n", "demo", "rollout", "status", "deployment/udp-echo",
                        "--timeout=90s", timeout=120)
        # Outbound only: nothing is replaced, every service of both namespaces gets an address.
        argv = [e2e.PROXY, "connect", "--kubeconfig", cls.sim.kubeconfig, "-n", "demo",
                "--also-namespace", "kube-system"]
        cls.proxy = e2e.Proc(argv, name="lpk-proxy connect (outbound)", env=cls.env)
        cls.proxy.logs.append(os.path.join(cls.sim.dir, "pods", "demo_*", "*.log"))
        # SIGTERM: the session must end cleanly (exit 0; Proc.stop asserts it).
        cls.addClassCleanup(cls.proxy.stop, signal.SIGTERM, 150)
        lines = e2e.PROXY_LINES
        cls.proxy.wait_line(lines["ready"], timeout=150)
        cls.addresses = {(m.group(1), m.group(2)): m.group(3)
                         for m in cls.proxy.matching(lines["service"])}

    def address_of(self, name, ns):
        self.assertIn((name, ns), self.addresses, self.proxy.describe())
        return self.addresses[(name, ns)]

    def test_ten_thousand_datagrams_of_mixed_sizes_none_lost(self):
        rng = random.Random(12)
        sizes = [rng.randint(1, 1400) for _ in range(10_000)]
        for i in (1000, 4000, 7000, 9000, 9999):
            sizes[i] = 65000
        address = (self.address_of("udp-echo", "demo"), ECHO_PORT)
        started = time.monotonic()
        sent, good, wrong = round_trips(address, sizes)
        took = time.monotonic() - started
        print(f"\n{good} of {sent} datagrams echoed in {took:.1f} s", flush=True)
        self.assertEqual((sent, good, wrong), (len(sizes), len(sizes), 0), self.proxy.describe())

    def test_statsd_style_counters_sent_and_forgotten_all_arrive(self):
        address = (self.address_of("udp-echo", "demo"), STATSD_PORT)
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sent = 0
        with sender:
            for _ in range(40):  # a service's metrics: bursts of 50, nothing ever answered
                for _ in range(50):
                    sender.sendto(b"lpk.requests:1|c", address)
                    sent += 1
                sender.sendto(b"lpk.bursts:1|c", address)
                time.sleep(0.005)
        # The totals through another flow (another source port), once the counters stop growing.
        deadline = time.monotonic() + 20 * e2e.SLACK
        totals = {}
        while time.monotonic() < deadline and totals.get("lpk.requests") != sent:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as asker:
                asker.settimeout(2)
                asker.sendto(b"#totals", address)
                try:
                    totals = json.loads(asker.recv(65536))
                except socket.timeout:
                    continue
            time.sleep(0.2)
        self.assertEqual(totals, {"lpk.requests": sent, "lpk.bursts": 40}, self.proxy.describe())

    def test_kdig_asks_the_cluster_dns_through_lpk_over_udp(self):
        web_ip = self.sim.kubectl("-n", "demo", "get", "service", "web", "-o",
                                  "jsonpath={.spec.clusterIP}").stdout.strip()
        dns = self.address_of("kube-dns", "kube-system")
        r = subprocess.run(["kdig", "@" + dns, "-p", "53", "+notcp", "+timeout=5", "+retry=1",
                            "+short", "web.demo.svc.cluster.local", "A"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + self.proxy.describe())
        self.assertEqual(r.stdout.split(), [web_ip], r.stderr + self.proxy.describe())


if __name__ == "__main__":
    main()

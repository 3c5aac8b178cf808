#!/usr/bin/python3
"""Two lpk-proxy connect sessions at once on one machine, against one kubesim: the demo in
namespace `demo` and again in `demo2` (the same service names; demo2's web answers
differently). Each session must get addresses of its own, a stub DNS on port 53 at an address
of its own, and its child must reach its own namespace by name. Needs root (kubesim)."""

import errno
import ipaddress
import json
import os
import re
import socket
import subprocess

import lpk_e2e as e2e
from connect_case import DEMO_DIR, ConnectCase, main

POOL = ipaddress.ip_network("127.77.0.0/16")  # connect's default --pool
SLOTS, SLOT_PREFIX = 64, 22  # how connect splits that pool (proxy/forward/address_pool.cpp)


def fnv1a(text):
    h = 0xcbf29ce484222325
    for byte in text.encode():
        h = ((h ^ byte) * 0x100000001b3) % (1 << 64)
    return h


def preferred_dns_address(server, ns):
    """Where a session of (server, ns) puts its stub DNS when its preferred slot is free."""
    slot = int(POOL.network_address) + ((fnv1a(f"{server} {ns}") % SLOTS) << (32 - SLOT_PREFIX))
    usable = (1 << (32 - SLOT_PREFIX)) - 2
    return str(ipaddress.ip_address(slot + 1 + fnv1a("dns.lpk.internal") % usable))


class TwoSessions(ConnectCase):
    def demo2(self):
        """The demo again in namespace demo2, whose web says so in its answer."""
        with open(os.path.join(DEMO_DIR, "demo.yaml")) as f:
            text = f.read()
        text = (text.replace("{name: demo}", "{name: demo2}")
                .replace("namespace: demo}", "namespace: demo2}")
                .replace(".demo.svc.", ".demo2.svc.")
                .replace('"web ok\\n"', '"web ok from demo2\\n"'))
        self.assertIn("web ok from demo2", text)
        self.sim.kubectl("apply", "-f", "-", input=text)
        for d in ("redis", "api", "web"):
            self.sim.kubectl("-n", "demo2", "rollout", "status", "deployment/" + d,
                             "--timeout=90s", timeout=120)

    def hold_udp(self, address, port):
        """A program that is not lpk holding address:port (UDP), until the test ends."""
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(s.close)
        try:
            s.bind((address, port))
        except OSError as e:  # another program holds it already, which serves as well
            if e.errno != errno.EADDRINUSE:
                raise

    def ask_session(self, command, session):
        r = subprocess.run([e2e.PROXY, command, "--session", session, "--json"],
                           capture_output=True, text=True, env=self.env, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        answer = json.loads(r.stdout)
        return answer.get("result", answer)

    def test_two_sessions_get_their_own_addresses_dns_and_namespace(self):
        self.demo2()
        server = self.sim.kubectl("config", "view", "--minify", "-o",
                                  "jsonpath={.clusters[0].cluster.server}").stdout.strip()
        # Something else holds the stub DNS address demo's session would prefer: it must take
        # another slot rather than give its stub another port.
        held = preferred_dns_address(server, "demo")
        self.hold_udp(held, 53)

        go = os.path.join(self.tmp, "go")
        # Each child waits until both sessions are up, then asks for `web` by its short name
        # through its session's stub DNS (its private resolv.conf) and tunnel.
        child = ["sh", "-c", f"while [ ! -e {go} ]; do sleep 0.1; done; "
                 "curl -sS -m 20 http://web/ && curl -sS -m 20 http://web/ -o /dev/null "
                 "-w 'web reached at %{remote_ip}\\n'"]
        sessions = {ns: self.connect("-n", ns, "--service", "redis", command=child,
                                     service="redis", ns=ns)
                    for ns in ("demo", "demo2")}
        lines = e2e.PROXY_LINES
        dns, addresses = {}, {}
        for ns, proxy in sessions.items():
            proxy.wait_line(lines["ready"], timeout=150)
            dns[ns] = proxy.wait_line(lines["dns"]).groups()
            addresses[ns] = {m.group(1): m.group(3) for m in proxy.matching(lines["service"])
                             if m.group(2) == ns}
        both = "\n".join(p.describe() for p in sessions.values())
        self.assertEqual(set(addresses["demo"]), {"redis", "api", "web", "worker"}, both)
        self.assertEqual(set(addresses["demo2"]), {"redis", "api", "web", "worker"}, both)
        self.assertEqual([dns["demo"][1], dns["demo2"][1]], ["53", "53"], both)
        self.assertNotEqual(dns["demo"][0], dns["demo2"][0], both)
        self.assertNotEqual(dns["demo"][0], held, both)
        ours = {ns: set(a.values()) | {dns[ns][0]} for ns, a in addresses.items()}
        self.assertFalse(ours["demo"] & ours["demo2"], f"shared addresses\n{both}")

        for ns, proxy in sessions.items():
            # `status` and `diagnostics` of each session name its own stub and slot.
            session = proxy.wait_line(r"^lpk session ([0-9a-f]+): ").group(1)
            status = self.ask_session("status", session)
            self.assertEqual(status["dns"]["address"], ":".join(dns[ns]), both)
            slot = ipaddress.ip_network(self.ask_session("diagnostics", session)["address_slot"])
            self.assertEqual(slot.prefixlen, SLOT_PREFIX)
            self.assertTrue(all(ipaddress.ip_address(a) in slot for a in ours[ns]), both)

        with open(go, "w"):
            pass
        for ns, proxy in sessions.items():
            self.assertEqual(proxy.wait_exit(timeout=120), 0, proxy.describe())
            answers = [l for l in proxy.lines if l.startswith("web ok")]
            expected = "web ok from demo2" if ns == "demo2" else "web ok"
            self.assertEqual(answers, [expected], proxy.describe())
            reached = [m.group(1) for m in map(re.compile(r"^web reached at (\S+)$").match,
                                               proxy.lines) if m]
            self.assertEqual(reached, [addresses[ns]["web"]], proxy.describe())
        # (connect's cleanups check that both redis deployments are as they were.)


if __name__ == "__main__":
    main()

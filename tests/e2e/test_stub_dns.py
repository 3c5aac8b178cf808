"""lpk-proxy run --dns: the embedded stub DNS answers the mapped service names with the
addresses lpk-proxy listens on, the way cluster DNS answers a pod in the session's namespace,
and forwards other names to the upstream given in --resolv-conf (a dnsmasq this test starts,
never the machine's resolver). A name looked up through the stub then carries a connection
through the tunnel."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lpk_e2e as e2e  # noqa: E402


def kdig(server, name, *flags, qtype="A"):
    host, port = server
    out = subprocess.run(["kdig", f"@{host}", "-p", str(port), "+time=2", "+retry=0", *flags,
                          name, qtype], capture_output=True, text=True, timeout=10).stdout
    status = re.search(r"status: (\w+)", out)
    answers = re.findall(r"^\S+\s+\d+\s+IN\s+A\s+(\S+)$", out, re.M)
    return (status.group(1) if status else None), answers


class StubDnsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        e2e.require_tools("kdig")
        cls.tmp = tempfile.mkdtemp(prefix="lpk-dns-e2e-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.upstream, up_port = e2e.start_dnsmasq("--host-record=outside.test,127.0.0.9")
        cls.addClassCleanup(cls.upstream.stop)
        resolv = os.path.join(cls.tmp, "resolv.conf")
        with open(resolv, "w") as f:
            f.write(f"nameserver 127.0.0.1#{up_port}\n")
        cls.server = e2e.Server(e2e.echo_handler)
        cls.addClassCleanup(cls.server.close)
        echo = f"127.0.0.1:{cls.server.addr[1]}"
        cls.agent = e2e.Agent()
        cls.addClassCleanup(cls.agent.stop)
        cls.proxy = e2e.Proxy(cls.agent.tunnel_str,
                              [f"redis:6379={echo}", f"api.shop:8080={echo}"],
                              ["--dns", "127.0.0.1:0", "--namespace", "dev",
                               "--resolv-conf", resolv])
        cls.addClassCleanup(cls.proxy.stop)
        cls.dns = cls.proxy.dns()

    def test_service_names_resolve_to_listen_addresses(self):
        redis, api = self.proxy.listens[0][0], self.proxy.listens[1][0]
        cases = {"redis": redis, "redis.dev": redis, "REDIS.dev.svc": redis,
                 "redis.dev.svc.cluster.local": redis, "api.shop": api,
                 "api.shop.svc.cluster.local": api}
        for name, want in cases.items():
            for transport in ([], ["+tcp"]):
                with self.subTest(name=name, transport=transport):
                    status, answers = kdig(self.dns, name, *transport)
                    self.assertEqual((status, answers), ("NOERROR", [want]))

    def test_unknown_cluster_name_is_nxdomain_and_outside_name_is_forwarded(self):
        self.assertEqual(kdig(self.dns, "nosuch.dev.svc.cluster.local")[0], "NXDOMAIN")
        self.assertEqual(kdig(self.dns, "outside.test"), ("NOERROR", ["127.0.0.9"]))

    def test_name_then_connection_through_the_tunnel(self):
        status, answers = kdig(self.dns, "redis.dev.svc.cluster.local")
        self.assertEqual(status, "NOERROR")
        payload = b"resolved by the stub, carried by the tunnel\n"
        self.assertEqual(e2e.echo_once((answers[0], 6379), payload), payload)


if __name__ == "__main__":
    e2e.main()

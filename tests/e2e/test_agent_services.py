"""Agent services end to end: a real lpk-agent (its environment, volume-like directories and a
resolv.conf naming a dnsmasq this test starts as the "cluster DNS") and a real `lpk-proxy run`
whose --map listeners lead to the reserved names env.lpk.internal:1 and dns.lpk.internal:53.
The environment document comes back through the tunnel, and kdig resolves cluster names over
TCP through the tunnel and the agent, never through the machine's resolver."""

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lpk_e2e as e2e  # noqa: E402


def make_configmap_volume(root):
    """The kubelet's atomic-writer layout: ..<timestamp>/ data, ..data link, visible links."""
    data = os.path.join(root, "..2024_05_01_10_00_00.1")
    os.makedirs(data)
    with open(os.path.join(data, "app.yaml"), "w") as f:
        f.write("greeting: hello from the configmap\n")
    os.symlink("..2024_05_01_10_00_00.1", os.path.join(root, "..data"))
    os.symlink("..data/app.yaml", os.path.join(root, "app.yaml"))


def kdig(addr, *names, qtype="A"):
    host, port = addr
    args = ["kdig", f"@{host}", "-p", str(port), "+tcp", "+keepopen", "+time=3", "+retry=0"]
    for name in names:
        args += [name, qtype]
    out = subprocess.run(args, capture_output=True, text=True, timeout=20).stdout
    return out, re.findall(r"status: (\w+)", out)


class AgentServicesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        e2e.require_tools("kdig")
        cls.tmp = tempfile.mkdtemp(prefix="lpk-agent-services-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        big = ",".join('"' + c * 250 + '"' for c in "abc")
        cls.upstream, up_port = e2e.start_dnsmasq(
            "--local=/cluster.local/", "--local=/test/",
            "--host-record=api.demo.svc.cluster.local,10.96.0.10", f"--txt-record=big.test,{big}")
        cls.addClassCleanup(cls.upstream.stop)
        resolv = os.path.join(cls.tmp, "resolv.conf")
        with open(resolv, "w") as f:
            f.write(f"search demo.svc.cluster.local\nnameserver 127.0.0.1#{up_port}\n")
        cls.config = os.path.join(cls.tmp, "config")
        make_configmap_volume(cls.config)
        cls.data = os.path.join(cls.tmp, "data")
        os.makedirs(cls.data)
        with open(os.path.join(cls.data, "blob"), "wb") as f:
            f.write(b"x" * 5000)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "POD_NAME": "api-7d9c-x2",
               "POD_NAMESPACE": "demo", "REDIS_PASSWORD": "s3cret from a secret"}
        cls.agent = e2e.Agent("--report-mounts", f"{cls.config},{cls.data}",
                              "--file-limit", "4096", "--container", "api",
                              "--resolv-conf", resolv, log_level="info", env=env)
        cls.addClassCleanup(cls.agent.stop)
        cls.proxy = e2e.Proxy(cls.agent.tunnel_str, ["127.0.0.1:0=env.lpk.internal:1",
                                                     "127.0.0.1:0=dns.lpk.internal:53",
                                                     "127.0.0.1:0=nope.lpk.internal:1"])
        cls.addClassCleanup(cls.proxy.stop)
        cls.env_addr, cls.dns_addr, cls.nope_addr = cls.proxy.listens

    def fetch_env(self):
        with e2e.connect(self.env_addr) as s:
            return json.loads(e2e.recv_all(s))

    def test_environment_document(self):
        doc = self.fetch_env()
        self.assertEqual(doc["env"]["REDIS_PASSWORD"], "s3cret from a secret")
        self.assertEqual(doc["pod"], {"name": "api-7d9c-x2", "namespace": "demo"})
        self.assertEqual(doc["container"], "api")
        files = {f["path"]: f for f in doc["files"]}
        app = os.path.join(self.config, "app.yaml")
        self.assertEqual(list(files), [app], doc["files"])  # no ..data, no ..<timestamp>
        self.assertEqual(base64.b64decode(files[app]["data"]),
                         b"greeting: hello from the configmap\n")
        self.assertEqual(files[app]["mode"], 0o644)
        self.assertEqual(doc["skipped"], [{"path": os.path.join(self.data, "blob"),
                                           "reason": "larger than 4096 bytes"}])

    def test_environment_follows_the_files(self):
        # Each fetch reads the files again (a configMap update shows on the next fetch).
        extra = os.path.join(self.data, "later.txt")
        with open(extra, "w") as f:
            f.write("written after the agent started\n")
        try:
            doc = self.fetch_env()
            paths = [f["path"] for f in doc["files"]]
            self.assertIn(extra, paths)
        finally:
            os.unlink(extra)

    def test_cluster_names_resolve_through_the_agent(self):
        out, statuses = kdig(self.dns_addr, "api.demo.svc.cluster.local",
                             "nope.demo.svc.cluster.local")
        self.assertEqual(statuses, ["NOERROR", "NXDOMAIN"], out)
        self.assertRegex(out, r"api\.demo\.svc\.cluster\.local\.\s+\d+\s+IN\s+A\s+10\.96\.0\.10")

    def test_large_answer_comes_whole(self):
        # Too big for plain UDP: the agent asks dnsmasq again over TCP.
        out, statuses = kdig(self.dns_addr, "big.test", qtype="TXT")
        self.assertEqual(statuses, ["NOERROR"], out)
        self.assertIn("c" * 250, out)
        self.assertNotIn(" tc ", out.split("ANSWER SECTION")[0])

    def test_malformed_dns_ends_only_that_stream(self):
        took, data = e2e.open_until_closed(self.dns_addr, b"\x00\x05hello", half_close=False)
        self.assertEqual(data, b"")
        out, statuses = kdig(self.dns_addr, "api.demo.svc.cluster.local")
        self.assertEqual(statuses, ["NOERROR"], out)

    def test_unknown_reserved_name_is_refused(self):
        took, data = e2e.open_until_closed(self.nope_addr, b"hello")
        self.assertEqual(data, b"")
        self.assertTrue(self.agent.alive())


if __name__ == "__main__":
    e2e.main()

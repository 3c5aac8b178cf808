#!/usr/bin/python3
"""`lpk-proxy connect -n NS` with no --service (issue 12 item 2, kubefwd's use case): nothing of
the application is replaced; an agent Deployment of the session's own carries the streams; every
service of the namespace gets a name and address; at the end (normal, or kill -9 then
`lpk-proxy restore`) no object of lpk remains. Needs root (kubesim)."""

import json
import os
import signal
import subprocess

import lpk_e2e as e2e
from connect_case import ConnectCase, main

APPLICATION = ("api", "redis", "web")
REDIS_PASSWORD = "demo-s3cret"  # the demo's Secret redis-auth (tools/kubesim/demo/demo.yaml)


class OutboundOnly(ConnectCase):
    def specs(self):
        return {d: self.deployment(d)["spec"] for d in APPLICATION}

    def lpk_objects(self):
        """Every object lpk made in demo that is still there (kind/name), by label and by name."""
        found = []
        for kind in ("deployments", "replicasets", "pods", "secrets", "configmaps"):
            items = json.loads(self.sim.kubectl("-n", "demo", "get", kind, "-o",
                                                "json").stdout)["items"]
            for item in items:
                meta = item["metadata"]
                labels = meta.get("labels", {})
                if ("lpk.dev/session" in labels or meta["name"].startswith("lpk-")
                        or labels.get("app.kubernetes.io/managed-by") == "lpk"):
                    found.append(f"{kind}/{meta['name']}")
        return found

    def agent_deployment(self, proxy):
        session = proxy.wait_line(r"^lpk session ([0-9a-f]+): connecting to namespace demo "
                                  r"\(outbound only\)").group(1)
        return session, self.deployment("lpk-outbound-" + session)

    def check_nothing_selects(self, pod_ip):
        endpoints = json.loads(self.sim.kubectl("-n", "demo", "get", "endpoints", "-o",
                                                "json").stdout)["items"]
        for ep in endpoints:
            for subset in ep.get("subsets", []):
                ips = [a["ip"] for a in subset.get("addresses", []) +
                       subset.get("notReadyAddresses", [])]
                self.assertNotIn(pod_ip, ips, f"service {ep['metadata']['name']} selects "
                                              "the outbound agent")

    def test_names_reach_the_cluster_and_nothing_is_left(self):
        before = self.specs()
        self.assertEqual(self.lpk_objects(), [])
        go = os.path.join(self.tmp, "go-outbound")
        # The child reaches services by name through its session's stub DNS and the tunnel.
        child = ["sh", "-c", f"while [ ! -e {go} ]; do sleep 0.1; done; "
                 "curl -sS -m 20 http://web.demo/ && "
                 f"timeout 20 redis-cli -h redis --no-auth-warning -a {REDIS_PASSWORD} ping"]
        proxy = self.connect("-n", "demo", command=child)
        lines = e2e.PROXY_LINES
        proxy.wait_line(lines["ready"], timeout=150)
        session, agent = self.agent_deployment(proxy)
        self.assertEqual(agent["spec"]["replicas"], 1, proxy.describe())
        addresses = {m.group(1): m.group(3) for m in proxy.matching(lines["service"])
                     if m.group(2) == "demo"}
        self.assertEqual(set(addresses) & set(APPLICATION), set(APPLICATION), proxy.describe())
        # Nothing of the application changed, and no Service sends it traffic.
        self.assertEqual(self.specs(), before, proxy.describe())
        pods = json.loads(self.sim.kubectl("-n", "demo", "get", "pods", "-l",
                                           "lpk.dev/session=" + session, "-o",
                                           "json").stdout)["items"]
        self.assertEqual(len(pods), 1, proxy.describe())
        self.check_nothing_selects(pods[0]["status"]["podIP"])
        # From a plain shell of the host (not the child): redis by the address lpk gave it.
        pong = subprocess.run(["redis-cli", "-h", addresses["redis"], "--no-auth-warning", "-a",
                               REDIS_PASSWORD, "ping"],
                              capture_output=True, text=True, timeout=30)
        self.assertEqual(pong.stdout.strip(), "PONG", pong.stderr + proxy.describe())
        self.assertEqual(self.status()["service"], "", proxy.describe())

        with open(go, "w"):
            pass
        self.assertEqual(proxy.wait_exit(timeout=120), 0, proxy.describe())
        self.assertIn("web ok", proxy.lines, proxy.describe())
        self.assertIn("PONG", proxy.lines, proxy.describe())
        self.assertEqual(self.lpk_objects(), [], proxy.describe())
        self.assertEqual(self.specs(), before)

    def test_kill_9_then_restore_removes_the_agent(self):
        before = self.specs()
        proxy = self.connect("-n", "demo")
        proxy.wait_line(e2e.PROXY_LINES["ready"], timeout=150)
        session, _ = self.agent_deployment(proxy)
        os.killpg(proxy.p.pid, signal.SIGKILL)
        proxy.wait_exit(timeout=30)
        self.assertIn("deployments/lpk-outbound-" + session, self.lpk_objects())
        r = subprocess.run([e2e.PROXY, "restore", "--kubeconfig", self.sim.kubeconfig,
                            "-n", "demo"], capture_output=True, text=True, env=self.env,
                           timeout=180)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("lpk-outbound-" + session, r.stdout)
        self.assertEqual(self.lpk_objects(), [], r.stdout + r.stderr)
        self.assertEqual(self.specs(), before)


if __name__ == "__main__":
    main()

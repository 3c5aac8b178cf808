#!/usr/bin/python3
"""lpk-proxy connect replacing two services at once (issue 12, item 1), on lpk-kubesim running
the demo (web -> api x2 -> worker, redis).

A request from inside the cluster through web reaches the local api, which calls the cluster
name `worker`, which reaches the local worker (through the cluster and back); each local
process shows its own service's environment and files. SIGTERM restores both deployments;
kill -9 then `lpk-proxy restore` restores both. Bad input changes nothing in the cluster.
Needs root (kubesim makes network namespaces)."""

import json
import os
import re
import signal
import subprocess
import time

import lpk_e2e as e2e
from connect_case import DEMO_DIR, ConnectCase, main

LOCAL_MULTI = os.path.join(DEMO_DIR, "local_multi.py")
SERVICES = ("api", "worker")


class ConnectMulti(ConnectCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()  # waits for redis, api and web
        cls.sim.kubectl("-n", "demo", "rollout", "status", "deployment/worker", "--timeout=90s",
                        timeout=120)

    def snapshot(self):
        return {name: self.deployment(name) for name in SERVICES}

    def assert_unchanged(self, before):
        for name in SERVICES:
            self.assert_restored(before[name], name)

    def connect_both(self, *extra, ports=None):
        """connect --service api --service worker with their own local ports (`ports`, else
        free ones); both deployments are checked to be restored when the test ends. Returns the
        proxy, the ports and the deployments as they were."""
        ports = ports or {name: e2e.free_port() for name in SERVICES}
        args = ["-n", "demo"]
        for name in SERVICES:
            args += ["--service", name, "--local-port", f"{name}:{ports[name]}:8080"]
        before = self.snapshot()
        for name in SERVICES:
            self.addCleanup(self.assert_restored, before[name], name)
        started = time.monotonic()
        proxy = self.connect(*args, *extra)
        proxy.wait_line(e2e.PROXY_LINES["ready"], timeout=150)
        print(f"MEASURED connect time to ready, 2 services (api x2, worker x1): "
              f"{time.monotonic() - started:.1f} s", flush=True)
        self.assertEqual(proxy.wait_line(e2e.PROXY_LINES["tunnels"]).groups(), ("3", "3"))
        return proxy, ports, before

    def test_bad_input_is_one_line_and_changes_nothing(self):
        before = self.snapshot()
        cases = {
            "service that does not exist": (["--service", "api", "--service", "nosuch"],
                                            1, r"nosuch.*not found"),
            "same service twice": (["--service", "api", "--service", "api"], 2, r"twice"),
            "same local port given": (["--service", "api", "--service", "worker",
                                       "--local-port", "api:18080:8080",
                                       "--local-port", "worker:18080:8080"],
                                      2, r"api and worker .*local port 18080"),
            # Both serve container port 8080: by default both would land on local port 8080.
            "same local port by default": (["--service", "api", "--service", "worker"],
                                           1, r"api and worker .*local port 8080"),
        }
        for what, (args, code, message) in cases.items():
            with self.subTest(what):
                r = subprocess.run([e2e.PROXY, "connect", "--kubeconfig", self.sim.kubeconfig,
                                    "-n", "demo", *args], capture_output=True, text=True,
                                   env=self.env, timeout=60)
                self.assertEqual(r.returncode, code, r.stdout + r.stderr)
                lines = r.stderr.strip().splitlines()
                self.assertEqual(len(lines), 1, r.stderr)
                self.assertRegex(lines[0], r"^lpk-proxy: .*" + message)
                self.assert_unchanged(before)

    def test_round_trip_through_both_local_services_then_sigterm_restores_both(self):
        runs = []
        ports = {name: e2e.free_port() for name in SERVICES}
        for name in SERVICES:
            runs += ["--run", f"{name}=/usr/bin/python3 {LOCAL_MULTI} {ports[name]}"]
        proxy, _, before = self.connect_both(*runs, ports=ports)
        for name in SERVICES:
            e2e.wait_port("127.0.0.1", ports[name], timeout=20)

        # From a pod: web -> api's agents -> local api -> `worker` -> worker's agent -> local
        # worker, and back.
        answer = json.loads(self.in_pod("multi", "curl -sSf -m 30 http://web/api/work"))
        self.assertEqual(answer["served_by"], "lpk-local-process", answer)
        self.assertEqual(answer["greeting"], "hello from kubesim")   # api's configMap file
        self.assertIsNone(answer["role"])                             # api's env has no ROLE
        worker = answer["worker"]
        self.assertEqual(worker["served_by"], "lpk-local-process", answer)
        self.assertEqual(worker["greeting"], "hello from the worker")  # worker's own file
        self.assertEqual(worker["role"], "worker")                     # worker's own env
        self.assertNotEqual(worker["pid"], answer["pid"])

        # Each command's output carries its service's name, docker compose style.
        proxy.wait_line(r"^api    \| served /api/work$", timeout=10)
        proxy.wait_line(r"^worker \| served /work$", timeout=10)

        status = self.status()
        self.assertEqual([r["service"] for r in status["replaced"]], list(SERVICES))
        self.assertEqual(status["service"], "api, worker")
        by_service = {}
        for t in status["tunnels"]:
            by_service[t["service"]] = by_service.get(t["service"], 0) + 1
        self.assertEqual(by_service, {"api": 2, "worker": 1})
        text = subprocess.run([e2e.PROXY, "status"], capture_output=True, text=True,
                              env=self.env, timeout=20).stdout
        self.assertIn("service api, worker in namespace demo", text)

        # SIGTERM: both commands end, both deployments come back (the cleanups check them).
        self.assertEqual(proxy.stop(signal.SIGTERM, 150), 0)
        exits = {m.group(1): m.group(2)
                 for m in proxy.matching(e2e.PROXY_LINES["service_command_exited"])}
        self.assertEqual(exits, {"api": "0", "worker": "0"})

    def test_kill9_then_restore_restores_both(self):
        proxy, _, before = self.connect_both()
        for name in SERVICES:
            self.assertIn("lpk.dev/original-template-configmap",
                          self.deployment(name)["metadata"].get("annotations", {}))
        os.killpg(proxy.p.pid, signal.SIGKILL)
        self.assertEqual(proxy.wait_exit(10), -signal.SIGKILL)
        r = subprocess.run([e2e.PROXY, "restore", "--kubeconfig", self.sim.kubeconfig],
                           capture_output=True, text=True, env=self.env, timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("restored 2 workload(s)", r.stdout)
        self.assert_unchanged(before)
        # Nothing of the session stays: its restorers, Secrets and ConfigMaps went too.
        left = self.sim.kubectl("-n", "demo", "get", "jobs,secrets,configmaps,leases", "-o",
                                "name").stdout
        self.assertFalse([l for l in left.split() if "lpk-" in l], left)


if __name__ == "__main__":
    main()

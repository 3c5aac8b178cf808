#!/usr/bin/python3
"""Header-routed sessions (issue 14): `connect --route-header` on lpk-kubesim running the demo.

Two developers (two sessions on this machine) route `api` with different values: a request
with value A reaches A's local process, with B B's, without the header the original api pods,
also on one keep-alive connection that mixes all three; a request through `web` (nginx) keeps
its header and is routed too; bytes that are not HTTP reach the original pods unchanged; the
api Deployment is never touched. Ending A leaves B and everyone else working; ending B gives
the Service back deep-equal and leaves no router, lpk Service, session Deployment or Lease.
kill -9 of both, then `lpk-proxy restore --all`: the same. gRPC with A's metadata reaches A's
local gRPC server. Bad input is one line and changes nothing. Needs root (kubesim)."""

import json
import os
import signal
import subprocess
import time

import lpk_e2e as e2e
from connect_case import ConnectCase, main

PEERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "route_peers.py")
PYTHON = "/usr/bin/python3"


class ConnectRoute(ConnectCase):
    def service(self, name="api"):
        return json.loads(self.sim.kubectl("-n", "demo", "get", "service", name, "-o",
                                           "json").stdout)

    def snapshot(self):
        svc = self.service()
        return {"service": {k: svc["metadata"].get(k) for k in ("labels", "annotations")}
                | {"spec": svc["spec"]},
                "deployment": self.deployment("api")["spec"]}

    def assert_clean(self, before):
        """The Service as it was, the api Deployment untouched, nothing of lpk's left."""
        self.assertEqual(self.snapshot(), before)
        left = {}
        for kind in ("deployments", "services", "leases", "serviceaccounts", "roles",
                     "rolebindings", "jobs", "pods"):
            names = self.sim.kubectl("-n", "demo", "get", kind, "-o", "name").stdout.split()
            left[kind] = [n for n in names if "lpk-" in n]
        self.assertEqual({k: v for k, v in left.items() if v}, {})

    def route_session(self, value, name, *extra, mode="http"):
        """A routed session of api whose local process (route_peers.py MODE) answers as NAME."""
        port = e2e.free_port()
        proxy = self.connect("-n", "demo", "--service", "api", "--route-header", value,
                             "--local-port", f"{port}:8080", *extra,
                             command=(PYTHON, PEERS, mode, str(port), name))
        proxy.wait_line(e2e.PROXY_LINES["ready"], timeout=150)
        # Its SIGTERM handler is in place once it listens (the stop at the end wants exit 0).
        proxy.wait_line(rf"^route_peers {name} listening on {port}$", timeout=30)
        return proxy

    def client(self, pod, *steps):
        """route_peers.py client in a pod of the cluster, on one connection to api:8080."""
        out = self.in_pod(pod, f"{PYTHON} {PEERS} client api:8080 {' '.join(steps)}")
        return [json.loads(line) for line in out.splitlines() if line.startswith("{")]

    def served_by(self, answers):
        """Per request: the local process's name, or "original" for the demo api's own
        /healthz answer."""
        who = []
        for a in answers:
            if "body" not in a:
                continue
            who.append(json.loads(a["body"])["served_by"] if a["body"].startswith("{")
                       else "original" if a["body"] == "ok\n" else a["body"])
        return who

    def test_two_sessions_share_the_service_by_header(self):
        before = self.snapshot()
        self.addCleanup(self.assert_clean, before)
        alice = self.route_session("alice", "alice")
        self.assertEqual(alice.wait_line(e2e.PROXY_LINES["route"]).groups(),
                         ("api", "x-lpk-route", "alice"))
        bob = self.route_session("x-lpk-route=bob", "bob")
        # The application's own Deployment is never changed by a routed session.
        self.assertEqual(self.deployment("api")["spec"], before["deployment"])

        answers = self.client("mixed", "alice", "bob", "-", "alice", "-", "bob")
        self.assertEqual(self.served_by(answers),
                         ["alice", "bob", "original", "alice", "original", "bob"], answers)
        self.assertTrue(answers[-1]["same_connection"], answers)
        body = json.loads(answers[0]["body"])
        self.assertEqual(body["route"], "alice", "the header reaches the developer unchanged")
        self.assertTrue(body["has_cluster_env"], "the local process has api's environment")

        # Through web (nginx passes the header on to api, as services must for deeper routing).
        via_web = self.in_pod("via-web", "curl -sS -m 30 -H 'x-lpk-route: bob' http://web/api/x")
        self.assertEqual(json.loads(via_web)["served_by"], "bob", via_web)
        # Not HTTP: the bytes reach an original pod unchanged (the demo api answers 404).
        raw = self.client("raw", "raw")
        self.assertIn("404 Not Found", raw[0]["answer"], raw)

        routes = json.loads(subprocess.run(
            [e2e.PROXY, "routes", "--kubeconfig", self.sim.kubeconfig, "-n", "demo", "--json"],
            capture_output=True, text=True, timeout=30, check=True).stdout)["routes"]
        self.assertEqual([r["service"] for r in routes], ["api"])
        self.assertEqual(sorted(s["value"] for s in routes[0]["sessions"]), ["alice", "bob"])
        self.assertEqual(routes[0]["original_selector"], {"app": "api"})

        # A ends: B and everyone else keep working.
        self.assertEqual(alice.stop(signal.SIGTERM, 150), 0)
        answers = self.client("after-a", "alice", "bob", "-")
        self.assertEqual(self.served_by(answers), ["original", "bob", "original"], answers)
        self.assertEqual(bob.stop(signal.SIGTERM, 150), 0)
        # No router any more: the demo api closes each connection after one answer.
        self.assertEqual(self.served_by(self.client("after-b", "bob")), ["original"])

    def test_status_counts_the_requests_routed_to_the_session(self):
        before = self.snapshot()
        self.addCleanup(self.assert_clean, before)
        proxy = self.route_session("carol", "carol")
        self.client("count", "carol", "-", "carol")
        deadline = time.monotonic() + 30 * e2e.SLACK
        route = None
        while time.monotonic() < deadline:
            route = self.status()["route"]
            if route and route.get("requests") == 2:
                break
            time.sleep(0.5)
        self.assertEqual(route["header"], "x-lpk-route")
        self.assertEqual(route["value"], "carol")
        self.assertEqual(route.get("requests"), 2, route)
        text = subprocess.run([e2e.PROXY, "status"], capture_output=True, text=True,
                              env=self.env, timeout=20).stdout
        self.assertIn("route: service api requests with x-lpk-route: carol -> this machine "
                      "(2 so far, router lpk-router-api)", text)
        self.assertEqual(proxy.stop(signal.SIGTERM, 150), 0)

    def test_kill9_of_both_then_restore_all(self):
        before = self.snapshot()
        a = self.route_session("dave", "dave")
        b = self.route_session("erin", "erin")
        for p in (a, b):
            os.killpg(p.p.pid, signal.SIGKILL)
            self.assertEqual(p.wait_exit(10), -signal.SIGKILL)
        r = subprocess.run([e2e.PROXY, "restore", "--all", "-n", "demo", "--kubeconfig",
                            self.sim.kubeconfig], capture_output=True, text=True, env=self.env,
                           timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assert_clean(before)
        self.assertEqual(self.served_by(self.client("after-restore", "dave")), ["original"])

    def test_the_restorer_ends_a_routed_session_whose_machine_vanished(self):
        # kill -9 and nothing else: the session's restorer (lpk-agent restore-watch, with only
        # the rights its Role gives) leaves the route, and as the last gives the Service back.
        before = self.snapshot()
        proxy = self.route_session("gone", "gone", "--orphan-timeout", "10s")
        os.killpg(proxy.p.pid, signal.SIGKILL)
        self.assertEqual(proxy.wait_exit(10), -signal.SIGKILL)
        deadline = time.monotonic() + 150 * e2e.SLACK
        while time.monotonic() < deadline:
            try:
                self.assert_clean(before)
                break
            except AssertionError:
                time.sleep(1)
        self.assert_clean(before)

    def test_grpc_with_the_header_reaches_the_session(self):
        before = self.snapshot()
        self.addCleanup(self.assert_clean, before)
        proxy = self.route_session("frank", "frank", mode="grpc")
        out = self.in_pod("grpc", f"{PYTHON} {PEERS} grpc-client api:8080 frank")
        self.assertEqual(json.loads(out.strip().splitlines()[-1]),
                         {"served_by": "frank", "route": "frank"}, out)
        self.assertEqual(proxy.stop(signal.SIGTERM, 150), 0)

    def test_bad_input_is_one_line_and_changes_nothing(self):
        before = self.snapshot()

        def refused(args, code, message):
            r = subprocess.run([e2e.PROXY, "connect", "--kubeconfig", self.sim.kubeconfig,
                                "-n", "demo", *args], capture_output=True, text=True,
                               env=self.env, timeout=120)
            self.assertEqual(r.returncode, code, r.stdout + r.stderr)
            lines = r.stderr.strip().splitlines()
            self.assertEqual(len(lines), 1, r.stderr)
            self.assertRegex(lines[0], r"^lpk-proxy: .*" + message)

        refused(["--service", "api", "--route-header", "bad header=x"], 2,
                r"'bad header' is not a valid header name")
        refused(["--route-header", "x"], 2, r"--route-header needs --service")
        # A routed service cannot be replaced, and a replaced one cannot be routed.
        alice = self.route_session("alice2", "alice2")
        refused(["--service", "api"], 1, r"shared through lpk's router .*--route-header")
        refused(["--service", "api", "--route-header", "alice2"], 1,
                r"already routes requests with x-lpk-route: alice2")
        self.assertEqual(alice.stop(signal.SIGTERM, 150), 0)
        self.assert_clean(before)
        port = e2e.free_port()
        plain = self.connect("-n", "demo", "--service", "api", "--local-port", f"{port}:8080",
                             service="api")
        plain.wait_line(e2e.PROXY_LINES["ready"], timeout=150)
        refused(["--service", "api", "--route-header", "x"], 1,
                r"is replaced by lpk session .* does not route by header")
        self.assertEqual(plain.stop(signal.SIGTERM, 150), 0)
        self.assertEqual(self.snapshot()["service"], before["service"])

    def test_a_port_not_declared_http_is_warned_and_passed_whole(self):
        before = self.service("redis")
        port = e2e.free_port()
        proxy = self.connect("-n", "demo", "--service", "redis", "--route-header", "x",
                             "--local-port", f"{port}:6379")
        proxy.wait_line(r"warning: port 6379 of service redis is not declared HTTP", timeout=60,
                        stderr=True)
        proxy.wait_line(e2e.PROXY_LINES["ready"], timeout=150)
        pong = self.in_pod("redis-ping", "redis-cli -h redis PING || true")
        self.assertTrue(pong.strip().endswith(("PONG", "NOAUTH Authentication required.")), pong)
        self.assertEqual(proxy.stop(signal.SIGTERM, 150), 0)
        after = self.service("redis")
        self.assertEqual(after["spec"], before["spec"])


if __name__ == "__main__":
    main()

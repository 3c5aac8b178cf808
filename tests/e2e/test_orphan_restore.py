#!/usr/bin/python3
"""The cluster restores itself (issue 10, item 4): `lpk-proxy connect --orphan-timeout 20s` on
the demo in kubesim, then lpk-proxy and its child are killed with SIGKILL and nothing else is
done. The restorer Job (`lpk-agent restore-watch`, running as its own ServiceAccount through
in-cluster config) must restore the deployment to a spec deep-equal to the original within the
timeout plus one rollout, then remove the Job and its pods, its ServiceAccount, Role and
RoleBinding, and the session's Lease, Secret and ConfigMap. A session that ends normally leaves
none of them behind. Every check uses real kubectl. Needs root (kubesim)."""

import json
import os
import re
import signal
import time

import lpk_e2e as e2e
from connect_case import ConnectCase, main

ORPHAN_TIMEOUT = 20
ROLLOUT = 120  # one rollout of the demo's api on a busy machine, generously


class OrphanRestore(ConnectCase):
    def session_objects(self, session):
        """Every object of `session`'s restorer and session that exists, as kubectl names them."""
        names = {"job": f"lpk-restorer-{session}", "serviceaccount": f"lpk-restorer-{session}",
                 "role": f"lpk-restorer-{session}", "rolebinding": f"lpk-restorer-{session}",
                 "lease": f"lpk-session-{session}", "secret": f"lpk-session-{session}",
                 "configmap": f"lpk-original-{session}"}
        found = []
        for kind, name in names.items():
            r = self.sim.kubectl("-n", "demo", "get", kind, name, "--ignore-not-found", "-o",
                                 "name")
            found += r.stdout.split()
        pods = self.sim.kubectl("-n", "demo", "get", "pods", "-l",
                                f"lpk.dev/session={session}", "-o", "name").stdout.split()
        return sorted(found + pods)

    def start_session(self, *extra, command=("sleep", "3600")):
        proxy = self.connect("-n", "demo", "--service", "api", "--orphan-timeout", f"{ORPHAN_TIMEOUT}s", *extra,
                             command=command)
        proxy.wait_line(e2e.PROXY_LINES["ready"], timeout=180)
        session = proxy.wait_line(r"^lpk session ([0-9a-f]+): ").group(1)
        return proxy, session

    def lease(self, session):
        return json.loads(self.sim.kubectl("-n", "demo", "get", "lease", f"lpk-session-{session}",
                                           "-o", "json").stdout)

    def wait_for(self, predicate, timeout, what, proxy):
        deadline = time.monotonic() + timeout * e2e.SLACK
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.5)
        state = self.sim.kubectl("-n", "demo", "get", "deployments,replicasets,pods,jobs,leases,"
                                 "serviceaccounts,roles,rolebindings,secrets,configmaps",
                                 "-o", "wide").stdout
        events = self.sim.kubectl("-n", "demo", "get", "events").stdout
        self.fail(f"{what}: not within {timeout * e2e.SLACK:.0f} s\n{state}\n{events}\n"
                  f"{proxy.describe(60)}")

    def test_kill_9_then_the_restorer_restores_and_removes_itself(self):
        before = self.deployment("api")
        proxy, session = self.start_session()
        running = self.session_objects(session)
        for kind in ("job.batch", "serviceaccount", "role.rbac.authorization.k8s.io",
                     "rolebinding.rbac.authorization.k8s.io", "lease.coordination.k8s.io",
                     "secret", "configmap"):
            self.assertTrue([n for n in running if n.startswith(kind + "/")],
                            f"no {kind} while the session runs: {running}")
        self.assertTrue([n for n in running if n.startswith("pod/")], running)
        self.assertNotEqual(self.deployment("api")["spec"], before["spec"])
        # The heartbeat is renewed while the session runs.
        first = self.lease(session)["spec"]["renewTime"]
        self.wait_for(lambda: self.lease(session)["spec"]["renewTime"] != first, 15,
                      "the heartbeat Lease is renewed", proxy)

        children = open(f"/proc/{proxy.p.pid}/task/{proxy.p.pid}/children").read().split()
        for pid in children + [str(proxy.p.pid)]:
            os.kill(int(pid), signal.SIGKILL)
        self.assertEqual(proxy.wait_exit(10), -signal.SIGKILL)
        killed = time.monotonic()

        def restored():
            now = self.deployment("api")
            return (now["spec"] == before["spec"] and
                    not [k for k in now["metadata"].get("annotations", {})
                         if k.startswith("lpk.dev/")])
        self.wait_for(restored, ORPHAN_TIMEOUT + ROLLOUT, "the deployment is restored", proxy)
        took = time.monotonic() - killed
        # The last renewal was up to one heartbeat interval (5 s) before the kill.
        self.assertGreater(took, ORPHAN_TIMEOUT - 5 - 1, "restored before the heartbeat went stale")
        self.sim.kubectl("-n", "demo", "rollout", "status", "deployment/api", "--timeout=120s",
                         timeout=150)
        self.wait_for(lambda: not self.session_objects(session), 60,
                      "the restorer and the session's objects are all gone", proxy)
        print(f"restored {took:.1f} s after kill -9 (orphan timeout {ORPHAN_TIMEOUT} s)")
        self.assertEqual(self.deployment("api")["spec"], before["spec"])

    def test_a_normal_end_leaves_nothing_behind(self):
        before = self.deployment("api")
        proxy, session = self.start_session(command=("sleep", "2"))
        self.assertTrue(self.session_objects(session))
        self.assertEqual(proxy.wait_exit(180), 0, proxy.describe())
        self.assertEqual(self.deployment("api")["spec"], before["spec"])
        # The Job's pod is deleted gracefully (SIGTERM to restore-watch): it may take a moment.
        self.wait_for(lambda: not self.session_objects(session), 60,
                      "nothing of the session is left", proxy)
        left = self.sim.kubectl("-n", "demo", "get", "jobs,leases,roles,rolebindings", "-o",
                                "name").stdout
        self.assertFalse(re.findall(session, left), left)


if __name__ == "__main__":
    main()

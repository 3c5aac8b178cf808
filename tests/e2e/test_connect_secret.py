#!/usr/bin/python3
"""The per-session tunnel secret of `lpk-proxy connect` (issue 9), against lpk-kubesim running
the demo: the agents get it from a Secret the session creates (never in the pod spec), a second
tunnel client without it is refused while the session's tunnels stay up, the developer's
process never sees it, and every ending (SIGTERM, kill -9 then `lpk-proxy restore`) removes the
Secret and the ConfigMap holding the original template. Uses test_connect.py's harness.
Needs root (kubesim makes network namespaces)."""

import base64
import json
import os
import signal
import subprocess

import lpk_e2e as e2e
from connect_case import ConnectCase, main


class ConnectSecret(ConnectCase):
    def session_objects(self):
        """`kind/name` of every Secret and ConfigMap a session made (labelled lpk.dev/session)."""
        r = self.sim.kubectl("-n", "demo", "get", "secrets,configmaps", "-l", "lpk.dev/session",
                             "-o", "name")
        return sorted(r.stdout.split())

    def tunnel_secret(self):
        """The name of the session's Secret and the secret it holds."""
        secrets = [o for o in self.session_objects() if o.startswith("secret/")]
        self.assertEqual(len(secrets), 1, secrets)
        name = secrets[0].split("/", 1)[1]
        data = json.loads(self.sim.kubectl("-n", "demo", "get", "secret", name, "-o",
                                           "json").stdout)["data"]
        return name, base64.b64decode(data["secret"]).decode()

    def intruder(self, pod, port):
        """`lpk-proxy run` straight to the agent of `pod` through a port-forward, without the
        session's secret; returns it once it has given up or was stopped, and whether it ever
        said ready."""
        argv = [e2e.PROXY, "run", "--agent-pod", f"demo/{pod}:{port}",
                "--kubeconfig", self.sim.kubeconfig, "--pool", e2e.private_pool(),
                "--map", "intruder:6379=redis.demo.svc.cluster.local:6379", "--log-level", "warn"]
        proc = e2e.Proc(argv, name="lpk-proxy run (no secret)", env=self.env)
        try:
            proc.wait_line(e2e.PROXY_LINES["ready"], timeout=8)
            ready = True
        except AssertionError:
            ready = False
        rc = proc.wait_exit(10)
        if rc is None:
            proc.stop()
        else:  # it gave up by itself: a deliberate exit code, not a crash
            self.assertGreater(rc, 0, proc.describe())
        return proc, ready

    def test_a_client_without_the_session_secret_is_refused_and_the_secret_goes_with_the_session(
            self):
        before = self.deployment("api")
        self.assertEqual(self.session_objects(), [])
        proxy = self.connect("-n", "demo", "--service", "api", service="api")
        proxy.wait_line(e2e.PROXY_LINES["ready"], timeout=150)
        name, secret = self.tunnel_secret()
        self.assertEqual(len(secret), 64, "32 random bytes as hex")

        # The agents read it by reference: it is in no pod spec and no workload.
        pods = self.agent_pods()
        self.assertEqual(len(pods), 2)
        for pod in pods.values():
            self.assertNotIn(secret, json.dumps(pod))
            app = pod["spec"]["containers"][0]
            refs = [e["valueFrom"]["secretKeyRef"]["name"] for e in app.get("env", [])
                    if "secretKeyRef" in e.get("valueFrom", {})]
            self.assertIn(name, refs)
        self.assertNotIn(secret, json.dumps(self.deployment("api")))

        # The developer's process never gets it through the imported environment.
        r = subprocess.run([e2e.PROXY, "env", "--json"], capture_output=True, text=True,
                           env=self.env, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("REDIS_PASSWORD", r.stdout, "the container's own secrets are imported")
        self.assertNotIn(secret, r.stdout)
        self.assertNotIn("LPK_TUNNEL_SECRET", r.stdout)

        # Anyone allowed pods/portforward reaches the agent's port, but not the session.
        pod, spec = next(iter(pods.items()))
        listen = spec["spec"]["containers"][0]["args"]
        port = listen[listen.index("--listen") + 1].rsplit(":", 1)[1]
        intruder, ready = self.intruder(pod, port)
        self.assertFalse(ready, "a client without the secret got a tunnel\n" +
                         intruder.describe())
        self.assertTrue(intruder.err, "no word on stderr about the refused handshake")
        print(f"\n  {intruder.err[-1]}", flush=True)
        tunnels = self.status()["tunnels"]
        self.assertEqual(len(tunnels), 2, tunnels)
        for t in tunnels:
            self.assertEqual((t["state"], t["drops"]), ("ready", 0),
                             f"the session's tunnel was disturbed: {t}\n" + proxy.describe())

        self.assertEqual(proxy.stop(signal.SIGTERM, 150), 0)
        self.assert_restored(before, "api")
        self.assertEqual(self.session_objects(), [], "the session's objects outlived it")

    def test_kill_9_leaves_the_secret_and_restore_removes_it(self):
        before = self.deployment("api")
        proxy = self.connect("-n", "demo", "--service", "api")
        proxy.wait_line(e2e.PROXY_LINES["ready"], timeout=150)
        left = self.session_objects()
        self.assertEqual([o.split("/")[0] for o in left], ["configmap", "secret"], left)
        os.killpg(proxy.p.pid, signal.SIGKILL)
        self.assertEqual(proxy.wait_exit(10), -signal.SIGKILL)
        self.assertEqual(self.session_objects(), left, "nothing restored what a crash left")
        r = subprocess.run([e2e.PROXY, "restore", "--kubeconfig", self.sim.kubeconfig],
                           capture_output=True, text=True, env=self.env, timeout=240)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assert_restored(before, "api")
        self.assertEqual(self.session_objects(), [])



if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""`lpk-proxy doctor` and the kubectl plugin (issue 13, items 2 and 4) against kubesim's demo.

doctor: every check passes on the demo (exit 0); each failure injected makes exactly its own
line fail, with a fix (exit 1): a missing service, a context the kubeconfig lacks, a refused
token, port 53 held on the slot's stub DNS address, a record of a dead session, a user whose Role
lacks pods/portforward, the service's workload held by a live session, an agent image the
cluster cannot pull (doctor starts a pod of it, which the test checks is gone after). kubectl plugin: the real
kubectl finds `kubectl-lpk` (the link the build puts next to lpk-proxy) on PATH, passes kubectl's
global flags given before or after the command, and `kubectl lpk connect -n demo -- curl
http://web.demo/` works. Needs root (kubesim)."""

import json
import os
import re
import signal
import socket
import subprocess
import uuid

import lpk_e2e as e2e
from connect_case import ConnectCase, main

TIMEOUT = 90
# What every doctor run on the demo checks besides the permissions.
BASE_CHECKS = {"kubeconfig", "credentials", "agent image", "loopback pool", "port 53",
               "cap_net_bind_service", "system resolver", "dead sessions"}
# What a takeover of a Deployment needs besides pods/portforward (proxy/app/doctor.cpp).
ROBOT_RULES = [
    {"apiGroups": [""], "resources": ["services"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "delete"]},
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create", "list", "delete"]},
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "get", "delete"]},
    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "patch", "update"]},
    {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": ["get", "list", "delete"]},
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
     "verbs": ["create", "get", "patch", "delete"]},
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "delete"]},
    {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["create", "delete"]},
    {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"],
     "verbs": ["create", "delete"]},
]


class Doctor(ConnectCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # One /24 is one slot: nothing else on the machine claims it, and a port 53 held on its
        # stub address leaves connect no slot to move to.
        cls.pool = e2e.private_pool()

    def doctor(self, *args, kubeconfig=None, env=None):
        """Runs `lpk-proxy doctor --json`; returns (exit code, {name: check}, process)."""
        argv = [e2e.PROXY, "doctor", "--json", "--pool", self.pool,
                "--kubeconfig", kubeconfig or self.sim.kubeconfig, *args]
        r = subprocess.run(argv, capture_output=True, text=True, env=env or self.env,
                           timeout=TIMEOUT)
        try:
            checks = json.loads(r.stdout)
        except ValueError:
            self.fail(f"doctor printed no JSON (exit {r.returncode}): {r.stdout}{r.stderr}")
        for c in checks:
            self.assertEqual(set(c), {"name", "ok", "detail", "fix"}, c)
        return r.returncode, {c["name"]: c for c in checks}, r

    def assert_only_failing(self, name, args=(), **kwargs):
        """Doctor with `args` fails exactly the check `name`, with a fix, and exits 1."""
        code, checks, r = self.doctor(*args, **kwargs)
        failing = sorted(n for n, c in checks.items() if not c["ok"])
        self.assertEqual(failing, [name], r.stdout + r.stderr)
        self.assertEqual(code, 1, r.stdout + r.stderr)
        self.assertTrue(checks[name]["fix"], checks[name])
        return checks[name]

    def test_all_pass_on_the_demo(self):
        code, checks, r = self.doctor("--service", "api", "-n", "demo")
        self.assertEqual(code, 0, r.stdout + r.stderr)
        self.assertTrue(all(c["ok"] for c in checks.values()), r.stdout)
        self.assertLessEqual(BASE_CHECKS | {"service", "permission pods/portforward",
                                            "permission configmaps",
                                            "permission deployments.apps"}, set(checks))
        self.assertIn("deployment demo/api", checks["service"]["detail"])
        # The image was tried by the cluster: a pod of it started, and is gone.
        self.assertIn("is pulled and starts in namespace demo", checks["agent image"]["detail"])
        self.assert_no_image_check_pod_left()
        # The text form: one line per check and a summary.
        text = subprocess.run([e2e.PROXY, "doctor", "--service", "api", "-n", "demo",
                               "--kubeconfig", self.sim.kubeconfig, "--pool", self.pool],
                              capture_output=True, text=True, env=self.env, timeout=TIMEOUT)
        self.assertEqual(text.returncode, 0, text.stdout + text.stderr)
        lines = text.stdout.splitlines()
        self.assertEqual(len(lines), len(checks) + 1, text.stdout)
        self.assertTrue(all(re.match(r"^(ok  |warn) \S", l) for l in lines[:-1]), text.stdout)
        self.assertRegex(lines[-1], r"^doctor: all \d+ checks pass")

    def test_outbound_only_checks_its_own_deployment(self):
        code, checks, r = self.doctor("-n", "demo")
        self.assertEqual(code, 0, r.stdout + r.stderr)
        self.assertNotIn("service", checks)
        self.assertIn("create", checks["permission deployments.apps"]["detail"])

    def test_missing_service(self):
        check = self.assert_only_failing("service", ("--service", "nope", "-n", "demo"))
        self.assertIn("service nope not found in namespace demo", check["detail"])
        self.assertIn("kubectl get services -n demo", check["fix"])

    def test_unpullable_agent_image(self):
        check = self.assert_only_failing(
            "agent image", ("--service", "api", "-n", "demo", "--agent-image", "lpk/nowhere:1"))
        self.assertIn("lpk/nowhere:1 cannot be pulled: ErrImagePull", check["detail"])
        self.assertIn("--agent-image", check["fix"])
        self.assert_no_image_check_pod_left()

    def assert_no_image_check_pod_left(self):
        pods = json.loads(self.sim.kubectl("-n", "demo", "get", "pods", "-l",
                                           "lpk.dev/doctor=image-check", "-o", "json").stdout)
        self.assertEqual(pods["items"], [], "doctor's image-check pod was left behind")

    def test_service_held_by_a_live_session(self):
        proxy = self.connect("--service", "api", "-n", "demo", service="api")
        proxy.wait_line(e2e.PROXY_LINES["ready"], timeout=150)
        check = self.assert_only_failing("service", ("--service", "api", "-n", "demo"))
        self.assertRegex(check["detail"], r"deployment demo/api is connected by lpk session "
                                          r"[0-9a-f]+ \(pid \d+ on this machine\)")
        self.assertEqual(check["fix"], "end that session first")

    def test_bad_flag_is_one_line(self):
        r = subprocess.run([e2e.PROXY, "doctor", "--bogus", "x"], capture_output=True,
                           text=True, env=self.env, timeout=TIMEOUT)
        self.assertEqual((r.returncode, r.stdout), (2, ""), r.stderr)
        self.assertEqual(r.stderr, "lpk-proxy: unknown flag --bogus (see lpk-proxy doctor "
                                   "--help)\n")

    def test_wrong_context(self):
        check = self.assert_only_failing("kubeconfig", ("--context", "no-such-context"))
        self.assertIn("no-such-context", check["detail"])
        self.assertIn("kubectl config get-contexts", check["fix"])

    def test_port_53_taken_on_the_slots_stub_address(self):
        _, checks, r = self.doctor("-n", "demo")
        m = re.search(r"listen on (127\.[0-9.]+):53", checks["port 53"]["detail"])
        self.assertTrue(m, r.stdout)
        holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(holder.close)
        holder.bind((m.group(1), 53))
        check = self.assert_only_failing("port 53", ("-n", "demo"))
        self.assertIn(m.group(1) + ":53", check["detail"])
        self.assertIn("ss -lunp", check["fix"])

    def test_dead_session_left_behind(self):
        gone = subprocess.Popen(["true"])
        gone.wait()
        session = uuid.uuid4().hex[:8]
        folder = os.path.join(self.env["XDG_STATE_HOME"], "lpk", "sessions")
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, session + ".json")
        record = {"owner": {"id": session, "host": socket.gethostname(), "pid": gone.pid,
                            "started": "2026-01-01T00:00:00Z", "process_start": "1"},
                  "workload": {"kind": "Deployment", "namespace": "demo", "name": "api"},
                  "kubeconfig": self.sim.kubeconfig, "context": ""}
        with open(path, "w") as f:
            json.dump(record, f)
        self.addCleanup(os.remove, path)
        check = self.assert_only_failing("dead sessions", ("--service", "api", "-n", "demo"))
        self.assertIn(f"session {session}", check["detail"])
        self.assertIn("deployment demo/api", check["detail"])
        self.assertIn("lpk-proxy restore", check["fix"])

    def kubeconfig_with_token(self, name, token):
        """The kubesim's kubeconfig with its user replaced by a bearer token."""
        config = json.loads(self.sim.kubectl("config", "view", "--raw", "--minify", "-o",
                                             "json").stdout)
        config["users"] = [{"name": name, "user": {"token": token}}]
        config["contexts"][0]["context"]["user"] = name
        path = os.path.join(self.tmp, name + ".kubeconfig")
        with open(path, "w") as f:
            json.dump(config, f)
        return path

    def test_refused_credentials(self):
        check = self.assert_only_failing("credentials", ("-n", "demo"),
                                         kubeconfig=self.kubeconfig_with_token("bad", "nope"))
        self.assertIn("401", check["detail"])

    def robot_kubeconfig(self):
        """A kubeconfig for the service account demo/robot, whose Role grants all connect needs
        but pods/portforward."""
        for manifest in (
                {"apiVersion": "v1", "kind": "ServiceAccount",
                 "metadata": {"name": "robot", "namespace": "demo"}},
                {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                 "metadata": {"name": "robot", "namespace": "demo"}, "rules": ROBOT_RULES},
                {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                 "metadata": {"name": "robot", "namespace": "demo"},
                 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                             "name": "robot"},
                 "subjects": [{"kind": "ServiceAccount", "name": "robot",
                               "namespace": "demo"}]}):
            self.sim.kubectl("apply", "-f", "-", input=json.dumps(manifest))
        token = self.sim.kubectl("-n", "demo", "create", "token", "robot").stdout.strip()
        return self.kubeconfig_with_token("robot", token)

    def test_rbac_denial(self):
        robot = self.robot_kubeconfig()
        check = self.assert_only_failing("permission pods/portforward",
                                         ("--service", "api", "-n", "demo"), kubeconfig=robot)
        self.assertIn("denied: create, get", check["detail"])
        self.assertIn("kubectl create role", check["fix"])
        self.assertIn("--resource=pods/portforward", check["fix"])

    # ---- the kubectl plugin ----------------------------------------------------------------

    def plugin_env(self):
        link = os.path.join(os.path.dirname(os.path.abspath(e2e.PROXY)), "kubectl-lpk")
        if not os.access(link, os.X_OK):
            self.skipTest(f"{link} is not built (the lpk-proxy target makes it)")
        return dict(self.env, PATH=os.path.dirname(link) + ":" + os.environ["PATH"]), link

    def kubectl(self, *args, env):
        return subprocess.run(["kubectl", *args], capture_output=True, text=True, env=env,
                              timeout=TIMEOUT)

    def test_kubectl_finds_the_plugin_and_it_answers(self):
        env, link = self.plugin_env()
        listed = self.kubectl("plugin", "list", env=env)
        self.assertIn(link, listed.stdout, listed.stdout + listed.stderr)
        usage = self.kubectl("lpk", env=env)
        self.assertEqual(usage.returncode, 0, usage.stderr)
        self.assertTrue(usage.stdout.startswith("usage: kubectl lpk connect"), usage.stdout)
        status = self.kubectl("lpk", "status", env=env)
        self.assertEqual(status.returncode, 1, status.stdout + status.stderr)
        self.assertEqual(len(status.stderr.splitlines()), 1, status.stderr)
        self.assertIn("no lpk session is running", status.stderr)
        cluster = self.kubectl("lpk", "--cluster", "x", "connect", env=env)
        self.assertEqual(cluster.returncode, 2, cluster.stderr)
        self.assertEqual(len(cluster.stderr.splitlines()), 1, cluster.stderr)
        self.assertIn("--cluster is not supported", cluster.stderr)

    def test_kubectl_lpk_doctor_takes_kubectls_flags_before_or_after(self):
        env, _ = self.plugin_env()
        before = self.kubectl("lpk", "--kubeconfig", self.sim.kubeconfig, "-n", "demo", "doctor",
                              "--service", "api", "--pool", self.pool, "--json", env=env)
        self.assertEqual(before.returncode, 0, before.stdout + before.stderr)
        self.assertIn("namespace demo", json.loads(before.stdout)[0]["detail"])
        after = self.kubectl("lpk", "doctor", f"--kubeconfig={self.sim.kubeconfig}",
                             "--context=no-such-context", "--pool", self.pool, "--json", env=env)
        self.assertEqual(after.returncode, 1, after.stdout + after.stderr)
        failing = [c["name"] for c in json.loads(after.stdout) if not c["ok"]]
        self.assertEqual(failing, ["kubeconfig"], after.stdout)

    def test_kubectl_lpk_connect_outbound(self):
        env, _ = self.plugin_env()
        argv = ["kubectl", "lpk", "connect", "-n", "demo", "--kubeconfig", self.sim.kubeconfig,
                "--", "curl", "-sS", "-m", "20", "http://web.demo/"]
        proxy = e2e.Proc(argv, name="kubectl lpk connect", env=env)
        self.addCleanup(proxy.stop, signal.SIGTERM, 150)
        proxy.logs.append(os.path.join(self.sim.dir, "pods", "demo_*", "*.log"))
        self.assertEqual(proxy.wait_exit(timeout=240), 0, proxy.describe())
        self.assertIn("web ok", proxy.lines, proxy.describe())
        left = self.sim.kubectl("-n", "demo", "get", "deployments", "-o", "name").stdout
        self.assertNotIn("lpk-outbound-", left, proxy.describe())


if __name__ == "__main__":
    main()

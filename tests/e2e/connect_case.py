"""What the `connect` e2e suites share: a kubesim running the demo (web -> api x2 -> redis) for
the test class, lpk-proxy connect started with its stop and the restore check registered, and
kubectl helpers. Needs root (kubesim makes network namespaces)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

import lpk_e2e as e2e

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "kubesim"))
import e2e_kubesim  # noqa: E402  (the Kubesim harness, shared with kubesim's own e2e)

DEMO_DIR = os.path.join(HERE, "..", "..", "tools", "kubesim", "demo")
KUBESIM = ""

LOCAL_API = os.path.join(DEMO_DIR, "local_api.py")  # also what the quick start runs


def reason_to_skip():
    if os.geteuid() != 0:
        return "needs root: kubesim makes network namespaces"
    if not KUBESIM or not os.access(KUBESIM, os.X_OK):
        return "lpk-kubesim is not built"
    for tool in ("kubectl", "redis-server", "nginx", "curl", "unshare"):
        if not e2e.shutil.which(tool):
            return f"{tool} is not installed (run tools/install-deps.sh)"
    return None


class ConnectCase(unittest.TestCase):
    """One kubesim running the demo for the class; connect() starts lpk-proxy connect and
    registers its stop and the restore check."""
    kubesim_args = ()  # more flags for `lpk-kubesim up`, for a subclass

    @classmethod
    def setUpClass(cls):
        reason = reason_to_skip()
        if reason:
            raise unittest.SkipTest(reason)
        cls.sim = e2e_kubesim.Kubesim("--manifests", DEMO_DIR, *cls.kubesim_args)
        cls.addClassCleanup(cls.sim.stop)  # kubesim must exit 0 on SIGTERM
        for d in ("redis", "api", "web"):
            cls.sim.kubectl("-n", "demo", "rollout", "status", "deployment/" + d, "--timeout=90s",
                            timeout=120)
        cls.tmp = tempfile.mkdtemp(prefix="lpk-connect-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.env = dict(os.environ, XDG_STATE_HOME=os.path.join(cls.tmp, "state"),
                       XDG_RUNTIME_DIR=os.path.join(cls.tmp, "run"))

    def deployment(self, name, ns="demo"):
        return json.loads(self.sim.kubectl("-n", ns, "get", "deployment", name, "-o",
                                           "json").stdout)

    def connect(self, *args, command=(), service=None, ns="demo"):
        """lpk-proxy connect; whatever happens in the test, it is asked to stop (SIGTERM: it
        must restore and exit 0) unless the test collected its exit, and `service`'s deployment
        (in `ns`) is then checked to be as before."""
        argv = [e2e.PROXY, "connect", "--kubeconfig", self.sim.kubeconfig, *args]
        if command:
            argv += ["--", *command]
        if service:
            self.addCleanup(self.assert_restored, self.deployment(service, ns), service, ns)
        proxy = e2e.Proc(argv, name=f"lpk-proxy connect ({ns})", env=self.env)
        self.addCleanup(proxy.stop, signal.SIGTERM, 150)
        # The agents' own output, from kubesim's pod logs, shows with the proxy's on failure.
        proxy.logs.append(os.path.join(self.sim.dir, "pods", f"{ns}_*", "*.log"))
        return proxy

    def in_pod(self, name, script, ns="demo"):
        """Runs `script` in a new pod of the cluster; returns its log (asserts success)."""
        manifest = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
                    "spec": {"restartPolicy": "Never",
                             "containers": [{"name": "c", "image": "busybox",
                                             "command": ["sh", "-c", script]}]}}
        self.sim.kubectl("apply", "-f", "-", input=json.dumps(manifest))
        r = self.sim.kubectl("-n", ns, "wait", "--for=jsonpath={.status.phase}=Succeeded",
                             "pod/" + name, "--timeout=60s", check=False, timeout=90)
        logs = [p for p in os.listdir(os.path.join(self.sim.dir, "pods"))
                if p.startswith(f"{ns}_{name}_")]
        text = ""
        for p in logs:
            with open(os.path.join(self.sim.dir, "pods", p, "c.log")) as f:
                text += f.read()
        self.assertEqual(r.returncode, 0, f"pod {name} did not succeed: {text}")
        return text

    def assert_restored(self, before, name, ns="demo"):
        after = self.deployment(name, ns)
        self.assertEqual(after["spec"], before["spec"])
        annotations = after["metadata"].get("annotations", {})
        self.assertFalse([k for k in annotations if k.startswith("lpk.dev/")], annotations)
        self.sim.kubectl("-n", ns, "rollout", "status", "deployment/" + name, "--timeout=90s",
                         timeout=120)

    def agent_pods(self, service="api"):
        pods = json.loads(self.sim.kubectl("-n", "demo", "get", "pods", "-l", f"app={service}",
                                           "-o", "json").stdout)["items"]
        return {p["metadata"]["name"]: p for p in pods if "deletionTimestamp" not in p["metadata"]
                and p["status"].get("phase") == "Running"}

    def status(self):
        """`lpk-proxy status --json` of the running session: its result object."""
        r = subprocess.run([e2e.PROXY, "status", "--json"], capture_output=True, text=True,
                           env=self.env, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        st = json.loads(r.stdout)
        return st.get("result", st)


def main():
    """Takes --kubesim=PATH, then runs the calling script's tests (lpk_e2e.main)."""
    global KUBESIM
    args = [a for a in sys.argv[1:]]
    for a in list(args):
        if a.startswith("--kubesim="):
            KUBESIM = a.split("=", 1)[1]
            args.remove(a)
    sys.argv[1:] = args
    e2e_kubesim.KUBESIM = KUBESIM
    e2e.main()

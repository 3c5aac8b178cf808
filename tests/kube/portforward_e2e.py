#!/usr/bin/python3
"""lpk-proxy run --agent-pod against lpk-kubesim with real pods: the tunnel rides a pod
port-forward WebSocket (v4.channel.k8s.io) through kubesim's API server to an lpk-agent pod,
and curl and redis-cli reach nginx and redis pods through it.

Usage: portforward_e2e.py --kubesim PATH --agent PATH --proxy PATH
Needs root (kubesim pods are network namespaces); skipped with the reason otherwise."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import lpk_e2e as e2e  # noqa: E402

KUBESIM = ""
KUBECTL = shutil.which("kubectl")
TIMEOUT = 60


def skip_reason():
    if os.geteuid() != 0:
        return "kubesim pods need root for network namespaces"
    if not KUBESIM or not os.access(KUBESIM, os.X_OK):
        return "lpk-kubesim is not built (pass --kubesim)"
    missing = [t for t in ("kubectl", "nginx", "redis-server", "redis-cli", "curl")
               if shutil.which(t) is None]
    if missing:
        return "missing tools: " + ", ".join(missing)
    return None


class Kubesim:
    """lpk-kubesim up with an image map that runs the lpk-agent under test."""

    def __init__(self, agent):
        self.dir = tempfile.mkdtemp(prefix="kubesim-pf-")
        images = os.path.join(self.dir, "images.yaml")
        with open(images, "w") as f:
            json.dump({"nginx": ["nginx", "-g", "daemon off;"],
                       "redis": ["redis-server", "--save", "", "--appendonly", "no",
                                 "--protected-mode", "no"],
                       "busybox": ["sh"],
                       "lpk/lpk-agent": [agent]}, f)  # JSON is YAML
        self.proc = e2e.Proc([KUBESIM, "up", "--state", os.path.join(self.dir, "state"),
                              "--images", images], name="lpk-kubesim")
        m = self.proc.wait_line(r"serving https://127.0.0.1:(\d+) kubeconfig (\S+)", timeout=60)
        self.kubeconfig = m.group(2)

    def kubectl(self, *args, input=None, check=True):
        r = subprocess.run([KUBECTL, "--kubeconfig", self.kubeconfig, *args], input=input,
                           capture_output=True, text=True, timeout=TIMEOUT)
        if check and r.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {r.stderr}")
        return r.stdout

    def run_pod(self, name, image, args=(), port=None):
        container = {"name": "c", "image": image}
        if args:
            container["args"] = list(args)
        if port:
            container["readinessProbe"] = {"tcpSocket": {"port": port}, "periodSeconds": 1}
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
               "spec": {"containers": [container]}}
        self.kubectl("apply", "-f", "-", input=json.dumps(pod))
        self.kubectl("wait", "--for=condition=Ready", "pod/" + name, f"--timeout={TIMEOUT}s")
        return json.loads(self.kubectl("get", "pod", name, "-o", "json"))["status"]["podIP"]

    def stop(self):
        """kubesim must exit 0 within 30 s of SIGTERM (raises with its output otherwise)."""
        try:
            self.proc.stop(timeout=30)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


class AgentPodTunnel(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        reason = skip_reason()
        if reason:
            raise unittest.SkipTest(reason)
        cls.sim = Kubesim(e2e.AGENT)
        cls.addClassCleanup(cls.sim.stop)
        # The agent listens on the pod's loopback only: nothing but a port-forward reaches it.
        cls.sim.run_pod("agent", "lpk/lpk-agent:dev", ["--listen", "127.0.0.1:4590"])
        cls.sim.run_pod("web", "nginx", port=80)
        cls.redis_ip = cls.sim.run_pod("cache", "redis", port=6379)
        cls.sim.kubectl("expose", "pod", "web", "--port", "8080", "--target-port", "80")

    def proxy(self, pod, *maps, wait_ready=True, log_level="info"):
        argv = [e2e.PROXY, "run", "--agent-pod", pod, "--kubeconfig", self.sim.kubeconfig,
                "--log-level", log_level]
        for m in maps:
            argv += ["--map", m]
        p = e2e.Proc(argv, name="lpk-proxy")
        self.addCleanup(p.stop)  # exit 0 on SIGTERM, whatever the link went through
        p.logs.append(os.path.join(self.sim.dir, "state", "pods", "*", "*.log"))
        listens = [e2e.split_hostport(m.group(1))
                   for m in p.wait_lines(e2e.PROXY_LINES["listen"], len(maps), timeout=10)]
        if wait_ready:
            p.wait_line(e2e.PROXY_LINES["ready"], timeout=30)
        return p, listens

    def test_curl_and_redis_through_the_port_forward(self):
        p, (web, cache) = self.proxy("default/agent:4590",
                                     "127.0.0.1:0=web.default.svc.cluster.local:8080",
                                     f"127.0.0.1:0={self.redis_ip}:6379")
        for _ in range(3):  # several streams over the one WebSocket
            r = subprocess.run(["curl", "-sS", "-m", "10", f"http://{web[0]}:{web[1]}/"],
                               capture_output=True, text=True, timeout=20)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("Welcome to nginx", r.stdout)
        big = "x" * (3 << 20)
        cli = ["redis-cli", "-h", cache[0], "-p", str(cache[1])]
        r = subprocess.run(cli + ["-x", "SET", "k"], input=big, capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.stdout.strip(), "OK", r.stderr)
        r = subprocess.run(cli + ["GET", "k"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.stdout.rstrip("\n"), big)

    def test_pod_port_without_an_agent_says_what_the_server_said(self):
        # nginx's pod has nothing on 4590: kubesim writes the kubelet's text on the error
        # channel, and the proxy keeps retrying without crashing.
        p, _ = self.proxy("default/web:4590", "127.0.0.1:0=127.0.0.1:1", wait_ready=False,
                          log_level="debug")
        self.assertTrue(wait_for_stderr(p, r"error forwarding port 4590 to pod web.*(?i:connection "
                                           r"refused)"), "\n".join(p.err))
        # The same failure is a warning once; the retries repeat it at debug level only.
        self.assertTrue(wait_for_stderr(p, r"debug .*error forwarding port 4590"), "\n".join(p.err))
        self.assertEqual(sum(bool(re.search(r"warn.*error forwarding port", l)) for l in p.err), 1,
                         "\n".join(p.err))
        self.assertTrue(p.alive())

    def test_missing_pod_is_a_status_message(self):
        p, _ = self.proxy("default/nosuchpod", "127.0.0.1:0=127.0.0.1:1", wait_ready=False)
        self.assertTrue(wait_for_stderr(p, r'pods "nosuchpod" not found'), "\n".join(p.err))

    def test_bad_flags_are_one_line(self):
        for args, word in ((["--agent-pod", "no-slash"], "--agent-pod"),
                           (["--agent-pod", "ns/pod:99999"], "--agent-pod"),
                           (["--agent-pod", "ns/Pod"], "--agent-pod"),
                           (["--agent-pod", "a/b", "--agent", "127.0.0.1:1"], "exclude"),
                           (["--agent", "127.0.0.1:1", "--kubeconfig", "x"], "--agent-pod"),
                           (["--agent-pod", "a/b", "--kubeconfig", "/nonexistent/kc"],
                            "/nonexistent/kc")):
            r = subprocess.run([e2e.PROXY, "run", *args], capture_output=True, text=True,
                               timeout=20)
            self.assertNotEqual(r.returncode, 0, args)
            lines = r.stderr.strip().splitlines()
            self.assertEqual(len(lines), 1, (args, r.stderr))
            self.assertIn(word, lines[0])


def wait_for_stderr(proc, pattern, timeout=30.0):
    """Waits for a stderr line of `proc` matching pattern; False at the deadline."""
    try:
        proc.wait_line(pattern, timeout, stderr=True)
        return True
    except AssertionError:
        return False


def isolate(script=__file__):
    """kubesim names its network namespaces kubesim-node, kubesim-pN: another kubesim on the
    machine would remove ours. Re-run this script in private network and mount namespaces with
    its own /run/netns (root only; without root the tests skip anyway)."""
    if os.geteuid() != 0:
        return
    if not os.environ.get("LPK_PF_ISOLATED"):
        os.environ["LPK_PF_ISOLATED"] = "1"
        os.execvp("unshare", ["unshare", "--mount", "--net", "--fork", sys.executable,
                              os.path.abspath(script)] + sys.argv[1:])
    for cmd in (["mount", "--make-rprivate", "/"], ["mkdir", "-p", "/run/netns"],
                ["mount", "-t", "tmpfs", "lpk-pf-netns", "/run/netns"],
                ["ip", "link", "set", "lo", "up"]):
        subprocess.run(cmd, check=True)


if __name__ == "__main__":
    isolate()
    for a in list(sys.argv):
        if a.startswith("--kubesim="):
            KUBESIM = a.split("=", 1)[1]
            sys.argv.remove(a)
    e2e.main()

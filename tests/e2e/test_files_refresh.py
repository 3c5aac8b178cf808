#!/usr/bin/python3
"""Imported files stay current (issue 9 item 9): while `lpk-proxy connect` runs, a configMap
that changes, gains a key or loses one, and a projected service-account token that the kubelet
rotates, reach the developer's copies under $LPK_FILES_ROOT, each file replaced in one step.

kubesim runs the demo with its kubelet's volume sync every second (`--sync-frequency 1s`,
a real kubelet's is one minute) and tokens replaced once 4 s old (`--token-refresh-after 4s`,
a real kubelet waits for 80% of their lifetime). Needs root (kubesim makes network namespaces)."""

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import lpk_e2e as e2e

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "kubesim"))
import e2e_kubesim  # noqa: E402

DEMO_DIR = os.path.join(HERE, "..", "..", "tools", "kubesim", "demo")
KUBESIM = ""
TOKEN = "var/run/secrets/kubernetes.io/serviceaccount/token"


def reason_to_skip():
    if os.geteuid() != 0:
        return "needs root: kubesim makes network namespaces"
    if not KUBESIM or not os.access(KUBESIM, os.X_OK):
        return "lpk-kubesim is not built"
    for tool in ("kubectl", "redis-server", "nginx"):
        if not shutil.which(tool):
            return f"{tool} is not installed (run tools/install-deps.sh)"
    return None


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def issued_at(token):
    payload = token.split(b".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4)))["iat"]


class FilesRefresh(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        reason = reason_to_skip()
        if reason:
            raise unittest.SkipTest(reason)
        cls.sim = e2e_kubesim.Kubesim("--manifests", DEMO_DIR, "--sync-frequency", "1s",
                                      "--token-refresh-after", "4s")
        cls.addClassCleanup(cls.sim.stop)
        for d in ("redis", "api", "web"):
            cls.sim.kubectl("-n", "demo", "rollout", "status", "deployment/" + d,
                            "--timeout=90s", timeout=120)
        cls.tmp = tempfile.mkdtemp(prefix="lpk-files-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.env = dict(os.environ, XDG_STATE_HOME=os.path.join(cls.tmp, "state"),
                       XDG_RUNTIME_DIR=os.path.join(cls.tmp, "run"))

    def set_config(self, data):
        patch = os.path.join(self.tmp, "patch.json")  # larger than one argument may be
        with open(patch, "w") as f:
            json.dump({"data": data}, f)
        self.sim.kubectl("-n", "demo", "patch", "configmap", "api-config", "--type=merge",
                         "--patch-file", patch)

    def wait_for(self, what, check, timeout=30):
        deadline = time.monotonic() + timeout * e2e.SLACK
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.1)
        self.fail(f"{what}: not within {timeout} s")

    def test_changed_files_reach_the_local_copies(self):
        before = json.loads(self.sim.kubectl("-n", "demo", "get", "deployment", "api", "-o",
                                             "json").stdout)
        proxy = e2e.Proc([e2e.PROXY, "connect", "--kubeconfig", self.sim.kubeconfig,
                          "-n", "demo", "--service", "api", "--dns", "127.0.0.1:0"],
                         name="lpk-proxy connect", env=self.env)
        self.addCleanup(proxy.stop, signal.SIGTERM, 150)
        proxy.logs.append(os.path.join(self.sim.dir, "pods", "demo_api-*", "*.log"))
        lines = e2e.PROXY_LINES
        proxy.wait_line(lines["ready"], timeout=150)
        root = proxy.wait_line(lines["environment"]).groups()[4]
        greeting = os.path.join(root, "etc/demo/greeting")
        self.assertEqual(read(greeting), b"hello from kubesim")
        first_token = read(os.path.join(root, TOKEN))
        self.assertIsNotNone(first_token, os.listdir(root))

        with self.subTest("a changed key is rewritten in one step"):
            # A reader that never stops: every read must be one whole version, never a mix
            # or a missing file (the copy is renamed over the old one).
            versions = {b"hello from kubesim"}
            seen, bad, stop = set(), [], threading.Event()

            def reader():
                while not stop.is_set():
                    content = read(greeting)
                    if content not in versions:
                        bad.append(content)
                    seen.add(content)
            thread = threading.Thread(target=reader)
            thread.start()
            try:
                for i in range(3):
                    text = f"version {i} " + chr(ord("a") + i) * 300_000
                    versions.add(text.encode())
                    self.set_config({"greeting": text})
                    self.wait_for(f"version {i} locally", lambda: read(greeting) == text.encode())
            finally:
                stop.set()
                thread.join()
            self.assertEqual(bad[:1], [], "a reader saw a file that is no version of it")
            self.assertGreaterEqual(len(seen), 3)
            self.assertTrue(proxy.matching(lines["files_updated"]))

        with self.subTest("a key added, then one removed"):
            self.set_config({"extra.yaml": "added: true\n"})
            extra = os.path.join(root, "etc/demo/extra.yaml")
            self.wait_for("the new key's file", lambda: read(extra) == b"added: true\n")
            self.sim.kubectl("-n", "demo", "patch", "configmap", "api-config", "--type=json",
                             "-p", '[{"op":"remove","path":"/data/extra.yaml"}]')
            self.wait_for("the removed key's file to go", lambda: read(extra) is None)
            self.assertIsNotNone(read(greeting))

        with self.subTest("a rotated service-account token"):
            token_file = os.path.join(root, TOKEN)
            self.wait_for("a new token", lambda: read(token_file) not in (None, first_token))
            self.assertGreater(issued_at(read(token_file)), issued_at(first_token))

        r = subprocess.run([e2e.PROXY, "status", "--json"], capture_output=True, text=True,
                           env=self.env, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        status = json.loads(r.stdout)
        status = status.get("result", status)
        self.assertGreaterEqual(status["files"]["updates"], 5, status["files"])
        proxy.stop(signal.SIGTERM, 150)  # exit 0, or it raises with the output
        after = json.loads(self.sim.kubectl("-n", "demo", "get", "deployment", "api", "-o",
                                            "json").stdout)
        self.assertEqual(after["spec"], before["spec"])


def main():
    global KUBESIM
    args = list(sys.argv[1:])
    for a in list(args):
        if a.startswith("--kubesim="):
            KUBESIM = a.split("=", 1)[1]
            args.remove(a)
    sys.argv[1:] = args
    e2e_kubesim.KUBESIM = KUBESIM
    e2e.main()


if __name__ == "__main__":
    main()

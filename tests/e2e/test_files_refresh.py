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
import threading
import time

import lpk_e2e as e2e
from connect_case import ConnectCase, main

TOKEN = "var/run/secrets/kubernetes.io/serviceaccount/token"


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def issued_at(token):
    payload = token.split(b".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4)))["iat"]


class FilesRefresh(ConnectCase):
    kubesim_args = ("--sync-frequency", "1s", "--token-refresh-after", "4s")

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
        # (connect() registers the stop, which must exit 0, and the check that api is restored.)
        proxy = self.connect("-n", "demo", "--service", "api", "--dns", "127.0.0.1:0",
                             service="api")
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

        self.assertGreaterEqual(self.status()["files"]["updates"], 5)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""A connect session across an API server restart (issue 10 item 3): lpk-kubesim closes its
listening socket and every API connection (port-forwards, watches) and listens again a few
seconds later, as a rolling restart of kube-apiserver does to its clients.

While nginx in a pod serves a 256 MiB file through lpk, kubesim restarts its API listener: both
tunnels lose their port-forwards, dial again once the API server is back and resume, and the
download ends with the file's sha256. The pod and service watches come back too: an agent pod
and a service created after the restart are seen (a tunnel, a name). The session then restores
the workload as usual (ConnectCase's cleanups). Needs root (kubesim makes network namespaces).
"""

import hashlib
import http.client
import json
import os
import tempfile
import threading
import time

import lpk_e2e as e2e
from connect_case import LOCAL_API, ConnectCase, main

SIZE = int(os.environ.get("LPK_E2E_RESTART_BYTES", 256 << 20))
DOWN_SECONDS = 2
LOST = r"tunnel to pod \S+ port \d+ lost \((.*)\); reconnecting"
RESUMED = r"tunnel to pod \S+ port \d+ resumed: (\d+) streams carried on, (\d+) ended"

# nginx serving /data (a hostPath holding the file) on port 8000, in namespace demo.
NGINX_CONF = "server { listen 8000; location / { root /data; } }\n"


def files_manifests(data_dir):
    conf = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "files-conf", "namespace": "demo"},
            "data": {"default.conf": NGINX_CONF}}
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "files", "namespace": "demo"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "files"}},
                 "template": {"metadata": {"labels": {"app": "files"}}, "spec": {
                     "containers": [{
                         "name": "nginx", "image": "nginx:1.27",
                         "ports": [{"containerPort": 8000, "name": "http"}],
                         "readinessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 1},
                         "volumeMounts": [{"name": "conf", "mountPath": "/etc/nginx/sites-enabled"},
                                          {"name": "data", "mountPath": "/data"}]}],
                     "volumes": [{"name": "conf", "configMap": {"name": "files-conf"}},
                                 {"name": "data", "hostPath": {"path": data_dir}}]}}}}
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "files", "namespace": "demo"},
               "spec": {"selector": {"app": "files"},
                        "ports": [{"port": 80, "targetPort": "http", "name": "http"}]}}
    return conf, deployment, service


def write_blob(path, size):
    """`size` random bytes at `path`; returns their sha256."""
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(left, 4 << 20))
            f.write(chunk)
            h.update(chunk)
            left -= len(chunk)
    os.chmod(path, 0o644)
    return h.hexdigest()


class Download(threading.Thread):
    """GET http://ADDR/blob, hashing as it comes; `received` counts the body's bytes."""

    def __init__(self, address):
        super().__init__(daemon=True)
        self.address = address
        self.received = 0
        self.digest = None
        self.error = None
        self.start()

    def run(self):
        try:
            conn = http.client.HTTPConnection(self.address, 80, timeout=120)
            conn.request("GET", "/blob")
            r = conn.getresponse()
            if r.status != 200:
                raise AssertionError(f"HTTP {r.status}")
            h = hashlib.sha256()
            while chunk := r.read(1 << 20):
                h.update(chunk)
                self.received += len(chunk)
            self.digest = h.hexdigest()
            conn.close()
        except Exception as e:  # noqa: BLE001 (the test reports it)
            self.error = repr(e)


class ApiServerRestart(ConnectCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # World-readable: nginx's workers drop root.
        cls.data_dir = tempfile.mkdtemp(prefix="lpk-restart-data-")
        cls.addClassCleanup(e2e.shutil.rmtree, cls.data_dir, True)
        os.chmod(cls.data_dir, 0o755)
        cls.blob_sha = write_blob(os.path.join(cls.data_dir, "blob"), SIZE)
        for manifest in files_manifests(cls.data_dir):
            cls.sim.kubectl("apply", "-f", "-", input=json.dumps(manifest))
        cls.sim.kubectl("-n", "demo", "rollout", "status", "deployment/files", "--timeout=90s",
                        timeout=120)

    def address_of(self, proxy, name):
        found = [m.group(3) for m in proxy.matching(e2e.PROXY_LINES["service"])
                 if m.group(1) == name and m.group(2) == "demo"]
        self.assertEqual(len(found), 1, proxy.describe())
        return found[0]

    def restart_api_server(self):
        code, _, body = self.sim.raw("POST",
                                     f"/kubesim/faults/apiserver/restart?seconds={DOWN_SECONDS}")
        self.assertEqual(code, 200, body)
        answer = json.loads(body)
        # Two port-forwards and at least the pod and service watches.
        self.assertGreaterEqual(answer["closed"], 4, answer)
        self.assertEqual(answer["listening_again_in_seconds"], DOWN_SECONDS)
        return answer

    def test_download_and_watches_survive_an_api_server_restart(self):
        port = e2e.free_port()
        proxy = self.connect("-n", "demo", "--service", "api", "--local-port", f"{port}:8080",
                             command=["/usr/bin/python3", LOCAL_API, str(port)], service="api")
        proxy.wait_line(e2e.PROXY_LINES["ready"], timeout=150)
        self.assertEqual(proxy.wait_line(e2e.PROXY_LINES["tunnels"]).groups(), ("2", "2"))
        download = Download(self.address_of(proxy, "files"))
        deadline = time.monotonic() + 120 * e2e.SLACK
        while download.received < SIZE // 4 and download.is_alive():
            self.assertLess(time.monotonic(), deadline, "the download did not start")
            time.sleep(0.05)
        self.assertIsNone(download.error, proxy.describe())
        self.assertTrue(download.is_alive(), "the download ended before the restart")

        at = self.restart_api_server()
        restarted = time.monotonic()
        drops = proxy.wait_lines(LOST, 2, timeout=10, stderr=True)
        resumed = proxy.wait_lines(RESUMED, 2, timeout=30 + DOWN_SECONDS, stderr=True)
        took = time.monotonic() - restarted
        self.assertEqual([m.group(2) for m in resumed], ["0", "0"], "no stream ended")
        download.join(300 * e2e.SLACK)
        self.assertFalse(download.is_alive(), "the download did not finish")
        self.assertIsNone(download.error, proxy.describe())
        self.assertEqual((download.received, download.digest), (SIZE, self.blob_sha))
        print(f"\n  API server restart ({at['closed']} connections closed, down "
              f"{DOWN_SECONDS} s): both tunnels resumed {took:.2f} s after it "
              f"({[m.group(1) for m in drops]}); {SIZE >> 20} MiB arrived with identical "
              "sha256", flush=True)

        tunnels = self.status()["tunnels"]
        self.assertEqual([t["resumes"] for t in tunnels], [1, 1], tunnels)
        self.assertEqual([t["lost_streams"] for t in tunnels], [0, 0], tunnels)
        self.assert_watches_resumed(proxy)

    def assert_watches_resumed(self, proxy):
        """The pod watch: a third agent pod, made after the restart, gets a tunnel. The service
        watch: a service made after it gets a name."""
        lines = e2e.PROXY_LINES
        ups = len(proxy.matching(lines["tunnel_up"]))
        self.sim.kubectl("-n", "demo", "scale", "deployment/api", "--replicas=3")
        up = proxy.wait_lines(lines["tunnel_up"], ups + 1, timeout=120)[-1]
        self.assertIn(up.group(1), self.agent_pods(), proxy.describe())
        late = {"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "late", "namespace": "demo"},
                "spec": {"selector": {"app": "files"}, "ports": [{"port": 81, "targetPort": 8000}]}}
        self.sim.kubectl("apply", "-f", "-", input=json.dumps(late))
        self.addCleanup(self.sim.kubectl, "-n", "demo", "delete", "service", "late")
        deadline = time.monotonic() + 30 * e2e.SLACK
        while not any(s["name"] == "late" for s in self.status()["services"]):
            self.assertLess(time.monotonic(), deadline, "service late never got a name")
            time.sleep(0.2)
        # Back to the spec the restore check compares with; its pod's tunnel ends.
        self.sim.kubectl("-n", "demo", "scale", "deployment/api", "--replicas=2")
        proxy.wait_line(lines["tunnel_closed"], timeout=60)


if __name__ == "__main__":
    main()

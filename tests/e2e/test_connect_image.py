#!/usr/bin/python3
"""lpk-proxy connect on the kubesim demo with the agent run from its OCI image (issue 11).

The setup builds the agent image (tools/images/agent-image.sh) and the demo api's image
(tools/images/demo-images.sh) from this build tree into an image store of the test's own, and
starts kubesim on it (--image-store): the agent pods run lpk/lpk-agent:dev in crun containers,
and the api pods lpk/demo-api:1. Checked: the agent process's root is the unpacked image and it
runs as the image's non-root user; the demo round trip (web -> agent -> local process, env and
files imported); deleting a demo api pod takes well under its grace period (the demo api ends
on SIGTERM although it is PID 1 of its container).
Needs root, kubectl, buildah, umoci and crun (skipped with the reason otherwise)."""

import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

import lpk_e2e as e2e
from connect_case import LOCAL_API, ConnectCase, main, reason_to_skip

HERE = os.path.dirname(os.path.abspath(__file__))
GREET_IMAGE = "localhost/lpk-greet:1"  # the service of the --keep-image test, built here
GREET_UID = 1234
IMAGES = os.path.join(HERE, "..", "..", "tools", "images")
AGENT_IMAGE = "lpk/lpk-agent:dev"
AGENT_UID = 10001  # agent/Dockerfile's USER


def image_reason_to_skip():
    missing = [t for t in ("buildah", "umoci", "crun", "strip") if not shutil.which(t)]
    if missing:
        return f"missing tools: {', '.join(missing)} (run tools/install-deps.sh)"
    return reason_to_skip()


def build_images(store):
    """The agent's and the demo api's images, from this build tree, as OCI archives in store
    (committed to a containers-storage inside it: nothing of the machine's is touched)."""
    build = os.path.dirname(os.path.dirname(os.path.abspath(e2e.AGENT)))
    env = dict(os.environ, LPK_IMAGE_STORAGE=os.path.join(store, ".storage"))
    for argv in (["agent-image.sh", build, store, AGENT_IMAGE],
                 ["demo-images.sh", build, store, "demo-api"]):
        r = subprocess.run([os.path.join(IMAGES, argv[0]), *argv[1:]], capture_output=True,
                           text=True, env=env, timeout=300 * e2e.SLACK)
        if r.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} failed:\n{r.stdout}{r.stderr}")
        print(r.stdout.strip(), flush=True)


def build_greet_image(store):
    """GREET_IMAGE, from scratch: busybox (static) with ENV GREETING, USER 1234 and WORKDIR
    /srv, as an OCI archive in store."""
    work = tempfile.mkdtemp(prefix="lpk-greet-", dir=store)
    rootfs = os.path.join(work, "rootfs")
    for d in ("bin", "etc", "srv"):
        os.makedirs(os.path.join(rootfs, d))
    shutil.copy(os.path.realpath(shutil.which("busybox")), os.path.join(rootfs, "bin/busybox"))
    for tool in ("sh", "httpd", "sleep"):
        os.symlink("busybox", os.path.join(rootfs, "bin", tool))
    with open(os.path.join(rootfs, "etc/passwd"), "w") as f:
        f.write(f"root:x:0:0:root:/root:/bin/sh\napp:x:{GREET_UID}:{GREET_UID}:app:/srv:/bin/sh\n")
    storage = ["--root", os.path.join(store, ".storage", "root"), "--runroot",
               os.path.join(store, ".storage", "run"), "--storage-driver", "vfs"]

    def buildah(*args):
        r = subprocess.run(["buildah", *storage, *args], capture_output=True, text=True,
                           timeout=120 * e2e.SLACK)
        if r.returncode != 0:
            raise AssertionError(f"buildah {' '.join(args)}: {r.stderr}")
        return r.stdout.strip()

    c = buildah("from", "scratch")
    buildah("copy", c, rootfs + "/", "/")
    buildah("config", "--env", "GREETING=hello from the image", "--user", str(GREET_UID),
            "--workingdir", "/srv", "--cmd", '["httpd", "-f", "-p", "8080", "-h", "/srv"]', c)
    buildah("commit", "-q", "--rm", c, GREET_IMAGE)
    buildah("push", "-q", GREET_IMAGE, f"oci-archive:{os.path.join(store, 'greet.tar')}:{GREET_IMAGE}")
    shutil.rmtree(work)


def greet_manifests(ns):
    """A Deployment of GREET_IMAGE with a Service, and a secret mounted 0400 that only its
    fsGroup can read (root:1234 0440, as the kubelet makes it)."""
    labels = {"app": "greet"}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": ns},
         "stringData": {"password": "s3cret"}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "greet", "namespace": ns},
         "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels}, "spec": {
                      "terminationGracePeriodSeconds": 2,
                      "securityContext": {"fsGroup": GREET_UID},
                      "containers": [{
                          "name": "greet", "image": GREET_IMAGE,
                          "ports": [{"containerPort": 8080, "name": "http"}],
                          "volumeMounts": [{"name": "creds", "mountPath": "/etc/creds"}]}],
                      "volumes": [{"name": "creds", "secret": {"secretName": "creds",
                                                               "defaultMode": 0o400}}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "greet", "namespace": ns},
         "spec": {"selector": labels, "ports": [{"port": 8080, "targetPort": "http"}]}}]


# The local process of the --keep-image test: reports what lpk gave it, then waits.
REPORTER = """
import json, os, signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
path = os.environ["LPK_FILES_ROOT"] + "/etc/creds/password"
st = os.stat(path)
report = {"GREETING": os.environ.get("GREETING"), "uid": st.st_uid, "mode": st.st_mode & 0o7777,
          "password": open(path).read()}
with open(sys.argv[1] + ".tmp", "w") as f:
    json.dump(report, f)
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(3600)
"""


class ConnectFromImages(ConnectCase):
    @classmethod
    def setUpClass(cls):
        reason = image_reason_to_skip()
        if reason:
            raise unittest.SkipTest(reason)
        cls.store = tempfile.mkdtemp(prefix="lpk-connect-images-")
        cls.addClassCleanup(shutil.rmtree, cls.store, True)
        build_images(cls.store)
        build_greet_image(cls.store)
        cls.kubesim_args = ("--image-store", cls.store)
        super().setUpClass()

    def crun_pid(self, pod):
        """The pid (as the host sees it) of the first container of pod, which must be a crun
        container, from crun's own state."""
        cid = pod["status"]["containerStatuses"][0]["containerID"]
        self.assertTrue(cid.startswith("crun://"), f"not run from an image: {cid}")
        state = subprocess.run(["crun", "--root", os.path.join(self.sim.dir, "crun"), "state",
                                cid[len("crun://"):]], capture_output=True, text=True)
        self.assertEqual(state.returncode, 0, state.stderr)
        return json.loads(state.stdout)["pid"]

    def assert_runs_the_agent_image(self, pod):
        name = pod["metadata"]["name"]
        self.assertTrue(pod["status"]["containerStatuses"][0]["imageID"].startswith(
            "lpk/lpk-agent@sha256:"), pod["status"])
        root = f"/proc/{self.crun_pid(pod)}/root"
        # The image's files, not the host's: its own user database and agent, and nothing
        # else the host has.
        with open(f"{root}/etc/passwd") as f:
            self.assertIn(f"lpk:x:{AGENT_UID}:", f.read(), name)
        self.assertTrue(os.access(f"{root}/usr/local/bin/lpk-agent", os.X_OK), name)
        self.assertFalse(os.path.exists(f"{root}/usr/bin/python3"), name)
        with open(f"/proc/{self.crun_pid(pod)}/status") as f:
            status = dict(line.split(":", 1) for line in f.read().splitlines())
        self.assertEqual(status["Uid"].split(), [str(AGENT_UID)] * 4, name)

    def test_agent_runs_from_its_image_and_the_demo_round_trip_passes(self):
        port = e2e.free_port()
        env_file = os.path.join(self.tmp, "api.env")
        proxy = self.connect("-n", "demo", "--service", "api", "--local-port", f"{port}:8080",
                             "--agent-image", AGENT_IMAGE, "--env-file", env_file,
                             command=["/usr/bin/python3", LOCAL_API, str(port)], service="api")
        lines = e2e.PROXY_LINES
        proxy.wait_line(lines["ready"], timeout=150)
        self.assertEqual(proxy.wait_line(lines["tunnels"]).groups(), ("2", "2"))
        e2e.wait_port("127.0.0.1", port, timeout=20)
        variables, _, _, files, _ = proxy.wait_line(lines["environment"]).groups()
        self.assertGreater(int(variables), 0)
        self.assertGreater(int(files), 0)  # the configMap's greeting
        with open(env_file) as f:
            self.assertIn('REDIS_PASSWORD="demo-s3cret"', f.read())

        pods = self.agent_pods()
        self.assertEqual(len(pods), 2)
        for pod in pods.values():
            with self.subTest(pod=pod["metadata"]["name"]):
                self.assertEqual(pod["spec"]["containers"][0]["image"], AGENT_IMAGE)
                self.assert_runs_the_agent_image(pod)

        web = [m.group(3) for m in proxy.matching(lines["service"])
               if m.group(1) == "web" and m.group(2) == "demo"]
        self.assertEqual(len(web), 1, proxy.describe())
        r = subprocess.run(["curl", "-sSf", "-m", "20", f"http://{web[0]}/api/hits"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr + proxy.describe())
        answer = json.loads(r.stdout)
        self.assertEqual(answer["served_by"], "lpk-local-process")
        self.assertEqual(answer["greeting"], "hello from kubesim")  # the imported file
        self.assertTrue(answer["hits"].startswith(":"), answer)      # redis, with the secret

    def pods_of(self, ns, app):
        pods = json.loads(self.sim.kubectl("-n", ns, "get", "pods", "-l", f"app={app}", "-o",
                                           "json").stdout)["items"]
        return [p for p in pods if "deletionTimestamp" not in p["metadata"]
                and p["status"].get("phase") == "Running"]

    def time_to_ready(self, ns, *flags, command=()):
        """connect --service greet with flags: the proxy and the seconds it took to be ready."""
        started = time.monotonic()
        proxy = self.connect("-n", ns, "--service", "greet", *flags, command=command,
                             service="greet", ns=ns)
        proxy.wait_line(e2e.PROXY_LINES["ready"], timeout=150)
        return proxy, time.monotonic() - started

    def test_keep_image_runs_the_agent_in_the_service_image_as_its_user(self):
        ns = "keep"
        for item in greet_manifests(ns):
            self.sim.kubectl("apply", "-f", "-", input=json.dumps(item))
        self.sim.kubectl("-n", ns, "rollout", "status", "deployment/greet", "--timeout=90s",
                         timeout=120)
        # The default mode first, on the same workload, for the time-to-ready comparison.
        proxy, replaced = self.time_to_ready(ns)
        proxy.stop(timeout=150)
        report = os.path.join(self.tmp, "greet-report.json")
        proxy, kept = self.time_to_ready(ns, "--keep-image",
                                         command=["/usr/bin/python3", "-c", REPORTER, report])
        print(f"\n  time to ready on kubesim: agent image {replaced:.2f} s, "
              f"--keep-image {kept:.2f} s", flush=True)
        deadline = time.monotonic() + 30 * e2e.SLACK
        while not os.path.exists(report) and time.monotonic() < deadline and proxy.alive():
            time.sleep(0.05)
        self.assertTrue(os.path.exists(report), proxy.describe())
        with open(report) as f:
            got = json.load(f)
        # The image's ENV reaches the local process; the 0400 secret only the service's user
        # (through the pod's fsGroup: root:1234 0440) can read came through, owned by the
        # developer with the container file's owner bits (0400).
        self.assertEqual(got["GREETING"], "hello from the image")
        self.assertEqual(got["password"], "s3cret")
        self.assertEqual((got["uid"], got["mode"]), (os.getuid(), 0o400))

        pod, = self.pods_of(ns, "greet")
        self.assertEqual(pod["spec"]["containers"][0]["image"], GREET_IMAGE)
        init, = pod["status"]["initContainerStatuses"]
        self.assertEqual(init["state"]["terminated"]["exitCode"], 0, init)
        pid = self.crun_pid(pod)
        with open(f"/proc/{pid}/root/etc/passwd") as f:
            self.assertIn(f"app:x:{GREET_UID}:", f.read())  # the service's image, not the agent's
        with open(f"/proc/{pid}/status") as f:
            status = dict(line.split(":", 1) for line in f.read().splitlines())
        self.assertEqual(status["Uid"].split()[0], str(GREET_UID))
        self.assertEqual(os.readlink(f"/proc/{pid}/cwd"), "/srv")
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            self.assertEqual(f.read().split(b"\0")[:4], [b"/lpk-agent/ld.so", b"--library-path",
                                                         b"/lpk-agent/lib", b"/lpk-agent/lpk-agent"])

    def test_deleting_a_demo_api_pod_takes_well_under_its_grace_period(self):
        pods = self.agent_pods()
        self.assertTrue(pods)
        name, pod = sorted(pods.items())[0]
        self.assertEqual(pod["spec"]["containers"][0]["image"], "lpk/demo-api:1")
        self.crun_pid(pod)  # from the image: PID 1 of a container, where SIGTERM is ignored
        grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
        self.assertGreaterEqual(grace, 30)
        started = time.monotonic()
        self.sim.kubectl("-n", "demo", "delete", "pod", name, "--timeout=90s", timeout=120)
        took = time.monotonic() - started
        print(f"\n  pod {name} deleted in {took:.2f} s (grace period {grace} s)", flush=True)
        self.assertLess(took, 5 * e2e.SLACK)


if __name__ == "__main__":
    main()

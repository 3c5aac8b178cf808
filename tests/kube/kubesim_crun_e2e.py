#!/usr/bin/python3
"""kubesim runs pods from OCI images with crun, as a kubelet would, and leaves nothing behind.
Usage: kubesim_crun_e2e.py /path/to/lpk-kubesim [unittest args]

The test builds its own image with buildah from scratch (busybox and the libraries it needs,
ENV GREETING=x, USER 1234, WORKDIR /srv) in a private containers-storage, exports it to an
OCI archive in an image store directory and starts lpk-kubesim --image-store on it. Checked
with real kubectl: the pod is Running; its process (found through crun's state, read from the
host's /proc) has the image's environment under the pod's, uid 1234 and /srv; a secret volume
with defaultMode 0400 and fsGroup is group-readable as the kubelet makes it; exit codes; init
containers run in order to success before the containers (a failed one fails a Never pod); an
image in neither the store nor the host-binary map shows ErrImagePull/ImagePullBackOff and
`kubectl describe` says why; after a pod is deleted, after a host program's main process exits,
after kubesim stops, and after `lpk-kubesim down` following a SIGKILL of kubesim, no process,
crun state, mount, network namespace or cgroup of it is left, for host-binary fallback pods
too (containers get no cgroup of their own: they stay in kubesim's).
Skipped, with the reason, without root, kubectl, crun, umoci or buildah. Exits 77 when every
test was skipped."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import lpk_e2e as e2e  # noqa: E402
import kubesim_api_e2e as api  # noqa: E402  (Kubesim, namespace(), unique())

KUBESIM = sys.argv.pop(1) if __name__ == "__main__" and len(sys.argv) > 1 else None
TIMEOUT = 60
IMAGE = "localhost/kubesim-crun-test:1"
# Numbers no other process of the machine has on its command line: `sleep MARK...` processes
# are the ones this run started (one number per test), and none may outlive its pods.
MARK_APP, MARK_HOST, MARK_BG, MARK_EXIT, MARK_CRASH = (str(7_000_000 + os.getpid() * 8 + i)
                                                      for i in range(5))


def skip_reason():
    if os.geteuid() != 0:
        return "pods need root for network, mount and PID namespaces"
    for tool in ("kubectl", "crun", "umoci", "buildah"):
        if not shutil.which(tool):
            return f"{tool} is not installed (tools/install-deps.sh installs it)"
    if not shutil.which("busybox"):
        return "busybox is not installed (the test image is built from it)"
    return None


def libraries_of(binary):
    """The files ldd lists for binary (libraries and loader); none for a static one."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    return [w for line in out.splitlines() for w in line.split() if w.startswith("/")]


def build_image(work, store):
    """Builds IMAGE from scratch with buildah (storage private to the test, vfs: nothing
    mounted) and writes it to store/test.tar as an OCI archive."""
    rootfs = os.path.join(work, "rootfs")
    for d in ("bin", "etc", "srv"):
        os.makedirs(os.path.join(rootfs, d))
    busybox = os.path.realpath(shutil.which("busybox"))
    for f in [busybox] + libraries_of(busybox):
        dest = os.path.join(rootfs, "bin/busybox" if f == busybox else f.lstrip("/"))
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copy(f, dest)
    for tool in ("sh", "sleep", "id", "cat", "stat", "env"):
        os.symlink("busybox", os.path.join(rootfs, "bin", tool))
    with open(os.path.join(rootfs, "etc/passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\napp:x:1234:1234:app:/srv:/bin/sh\n")
    storage = ["--root", os.path.join(work, "storage"), "--runroot", os.path.join(work, "run"),
               "--storage-driver", "vfs"]

    def buildah(*args):
        r = subprocess.run(["buildah", *storage, *args], capture_output=True, text=True,
                           timeout=TIMEOUT)
        if r.returncode != 0:
            raise AssertionError(f"buildah {' '.join(args)}: {r.stderr}")
        return r.stdout.strip()

    c = buildah("from", "scratch")
    buildah("copy", c, rootfs + "/", "/")
    buildah("config", "--env", "GREETING=x", "--env", "FROM_IMAGE=image", "--user", "1234",
            "--workingdir", "/srv", "--cmd", '["sh", "-c", "echo no command given"]', c)
    buildah("commit", "-q", c, IMAGE)
    buildah("push", "-q", IMAGE, f"oci-archive:{os.path.join(store, 'test.tar')}:{IMAGE}")
    buildah("rm", c)


def pod(ns, name, image, command, extra_spec=None, container_extra=None):
    container = {"name": "main", "image": image, "command": command}
    container.update(container_extra or {})
    spec = {"terminationGracePeriodSeconds": 2, "containers": [container]}
    spec.update(extra_spec or {})
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
            "spec": spec}


def marked_processes(*marks):
    """pids of the `sleep MARK` processes on the machine (any of marks)."""
    marks = [m.encode() for m in marks or (MARK_APP, MARK_HOST, MARK_BG, MARK_EXIT, MARK_CRASH)]
    found = []
    for p in os.listdir("/proc"):
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
                if argv[0] == b"sleep" and len(argv) > 1 and argv[1] in marks:
                    found.append(int(p))
        except (OSError, ValueError):
            pass
    return found


def cgroups_named(*parts):
    """The cgroup directories of the machine (every hierarchy) whose name contains one of
    parts: crun names a container's cgroup after its id, which holds the pod's namespace."""
    found = []
    for top, dirs, _ in os.walk("/sys/fs/cgroup"):
        found += [os.path.join(top, d) for d in dirs if any(p in d for p in parts)]
    return found


def leftovers(state_dir, tag, work, marks=(), namespaces=()):
    """What a kubesim with this state directory and instance tag left: marked processes,
    crun state, mounts under its directories, its network namespaces, cgroups of its
    containers (pods of `namespaces`)."""
    left = []
    if marked_processes(*marks):
        left.append(f"processes {marked_processes(*marks)}")
    crun = os.path.join(state_dir, "crun")
    if os.path.isdir(crun) and os.listdir(crun):
        left.append(f"crun state {os.listdir(crun)}")
    with open("/proc/mounts") as f:
        left += [m for m in f.read().splitlines() if state_dir in m or work in m]
    left += [n for n in os.listdir("/run/netns") if n.startswith(f"kubesim-{tag}-")]
    left += cgroups_named(f"kubesim-{tag}", *namespaces)
    return left


@unittest.skipIf(skip_reason(), skip_reason())
class ContainersFromImages(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        api.KUBESIM = KUBESIM
        cls.work = tempfile.mkdtemp(prefix="kubesim-crun-")
        cls.addClassCleanup(shutil.rmtree, cls.work, True)
        cls.store = os.path.join(cls.work, "store")
        os.makedirs(cls.store)
        build_image(cls.work, cls.store)
        cls.sim = api.Kubesim("--image-store", cls.store)
        cls.namespaces = []
        cls.addClassCleanup(cls.stop_and_check_nothing_left)

    @classmethod
    def stop_and_check_nothing_left(cls):
        sim = cls.sim
        with open(os.path.join(sim.dir, "instance")) as f:
            tag = f.read().strip()
        try:
            sim.proc.stop(timeout=30)
            left = leftovers(sim.dir, tag, cls.work, namespaces=cls.namespaces)
            if left:
                raise AssertionError(f"left behind after kubesim stopped: {left}")
        finally:
            shutil.rmtree(sim.dir, ignore_errors=True)

    def setUp(self):
        self.ns = api.unique("crun")
        self.namespaces.append(self.ns)
        self.sim.apply(api.namespace(self.ns))

    def k(self, *args, **kw):
        return self.sim.kubectl("-n", self.ns, *args, **kw)

    def wait(self, what, condition):
        self.k("wait", f"--for={condition}", what, f"--timeout={TIMEOUT}s")

    def status(self, name):
        return self.sim.get("-n", self.ns, "pod/" + name)["status"]["containerStatuses"][0]

    def init_pid(self, name):
        """The container's pid 1 as the host sees it, from crun's own state."""
        cid = self.status(name)["containerID"]
        self.assertTrue(cid.startswith("crun://"), cid)
        state = subprocess.run(["crun", "--root", os.path.join(self.sim.dir, "crun"), "state",
                                cid[len("crun://"):]], capture_output=True, text=True)
        self.assertEqual(state.returncode, 0, state.stderr)
        return json.loads(state.stdout)["pid"]

    def test_image_config_security_context_and_secret_volume(self):
        self.sim.apply({"apiVersion": "v1", "kind": "Secret",
                        "metadata": {"name": "creds", "namespace": self.ns},
                        "stringData": {"password": "s3cret"}})
        script = ("echo GREETING=$GREETING FROM_IMAGE=$FROM_IMAGE uid=$(id -u) cwd=$(pwd); "
                  f"cat /etc/creds/password; echo; exec sleep {MARK_APP}")
        self.sim.apply(pod(self.ns, "app", IMAGE, ["sh", "-c", script],
                           extra_spec={"securityContext": {"fsGroup": 3000},
                                       "volumes": [{"name": "creds", "secret": {
                                           "secretName": "creds", "defaultMode": 0o400}}]},
                           container_extra={
                               "env": [{"name": "FROM_IMAGE", "value": "pod"}],
                               "volumeMounts": [{"name": "creds", "mountPath": "/etc/creds"}]}))
        self.wait("pod/app", "condition=Ready")
        phase = self.k("get", "pod", "app", "-o", "jsonpath={.status.phase}").stdout
        self.assertEqual(phase, "Running")
        st = self.status("app")
        self.assertEqual(st["imageID"].split("@")[0], IMAGE.rsplit(":", 1)[0])
        self.assertTrue(st["imageID"].split("@")[1].startswith("sha256:"), st["imageID"])
        pid = self.init_pid("app")
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
        self.assertEqual(env[b"GREETING"], b"x")  # the image's ENV
        self.assertEqual(env[b"FROM_IMAGE"], b"pod")  # the pod's env over the image's
        self.assertEqual(os.readlink(f"/proc/{pid}/cwd"), "/srv")
        # Out of the machine's cgroups: the container's are kubesim's own, none made for it.
        with open(f"/proc/{pid}/cgroup") as a, open(f"/proc/{self.sim.proc.p.pid}/cgroup") as b:
            self.assertEqual(a.read(), b.read())
        with open(f"/proc/{pid}/status") as f:
            status = dict(line.split(":", 1) for line in f.read().splitlines())
        self.assertEqual(status["Uid"].split()[0], "1234")
        self.assertIn("3000", status["Groups"].split())
        # The process's root is the image: its own /etc/passwd, not the host's.
        with open(f"/proc/{pid}/root/etc/passwd") as f:
            self.assertIn("app:x:1234", f.read())
        data = f"/proc/{pid}/root/etc/creds/..data/password"
        st_secret = os.stat(data)
        self.assertEqual((oct(st_secret.st_mode & 0o7777), st_secret.st_gid), ("0o440", 3000))
        self.assertTrue(os.path.islink(f"/proc/{pid}/root/etc/creds/password"))
        logs = self.k("logs", "app").stdout.splitlines()
        self.assertEqual(logs[:2], ["GREETING=x FROM_IMAGE=pod uid=1234 cwd=/srv", "s3cret"])
        # sleep is pid 1 and ignores SIGTERM: the deletion ends by the SIGKILL after the grace.
        self.k("delete", "pod", "app", f"--timeout={TIMEOUT}s")
        self.assertEqual(marked_processes(MARK_APP), [])

    def test_exit_code_in_container_status(self):
        self.sim.apply(pod(self.ns, "fails", IMAGE, ["sh", "-c", "exit 3"],
                           extra_spec={"restartPolicy": "Never"}))
        self.wait("pod/fails", "jsonpath={.status.phase}=Failed")
        term = self.status("fails")["state"]["terminated"]
        self.assertEqual((term["exitCode"], term["reason"]), (3, "Error"))

    def test_read_only_root_filesystem_and_run_as_user(self):
        script = "touch /srv/new 2>/dev/null && echo writable || echo read-only; id -u"
        for name, sc in (("rw", {}), ("ro", {"readOnlyRootFilesystem": True})):
            # runAsUser 0 over the image's USER 1234: root may write /srv unless the root
            # filesystem is read-only.
            self.sim.apply(pod(self.ns, name, IMAGE, ["sh", "-c", script],
                               extra_spec={"restartPolicy": "Never"},
                               container_extra={"securityContext": {"runAsUser": 0, **sc}}))
        for name, expected in (("rw", ["writable", "0"]), ("ro", ["read-only", "0"])):
            self.wait(f"pod/{name}", "jsonpath={.status.phase}=Succeeded")
            self.assertEqual(self.k("logs", name).stdout.split(), expected)

    def test_init_containers_run_in_order_to_success_before_the_containers(self):
        # Each as the image's user (1234) in the shared emptyDir, world-writable as the
        # kubelet makes it.
        def spec(init_scripts):
            return {"restartPolicy": "Never",
                    "volumes": [{"name": "work", "emptyDir": {}}],
                    "initContainers": [{"name": f"init{i}", "image": IMAGE,
                                        "command": ["sh", "-c", script],
                                        "volumeMounts": [{"name": "work", "mountPath": "/work"}]}
                                       for i, script in enumerate(init_scripts)]}
        mount = {"volumeMounts": [{"name": "work", "mountPath": "/work"}]}
        self.sim.apply(pod(self.ns, "inits", IMAGE, ["sh", "-c", "cat /work/order"],
                           extra_spec=spec(["echo one > /work/order",
                                            "echo two >> /work/order"]),
                           container_extra=mount))
        self.sim.apply(pod(self.ns, "badinit", IMAGE, ["sh", "-c", "echo main ran"],
                           extra_spec=spec(["exit 4"]), container_extra=mount))
        self.wait("pod/inits", "jsonpath={.status.phase}=Succeeded")
        self.assertEqual(self.k("logs", "inits").stdout, "one\ntwo\n")
        inits = self.sim.get("-n", self.ns, "pod/inits")["status"]["initContainerStatuses"]
        self.assertEqual([s["state"]["terminated"]["exitCode"] for s in inits], [0, 0])
        # A failed init container with restartPolicy Never fails the pod; its container never
        # starts.
        self.wait("pod/badinit", "jsonpath={.status.phase}=Failed")
        status = self.sim.get("-n", self.ns, "pod/badinit")["status"]
        self.assertEqual(status["initContainerStatuses"][0]["state"]["terminated"]["exitCode"], 4)
        self.assertEqual(status["containerStatuses"][0]["state"]["waiting"]["reason"],
                         "PodInitializing")

    def test_image_not_in_the_store(self):
        self.sim.apply(pod(self.ns, "missing", "localhost/never-built:2", ["sh"]))
        self.wait("pod/missing",
                  "jsonpath={.status.containerStatuses[0].state.waiting.reason}=ImagePullBackOff")
        described = self.k("describe", "pod", "missing").stdout
        self.assertIn('Failed to pull image "localhost/never-built:2": not found in kubesim\'s '
                      f"image store {self.store}", described)
        self.assertIn("Error: ErrImagePull", described)
        self.assertIn("Error: ImagePullBackOff", described)

    def test_host_binary_fallback_is_reported_and_its_children_end_with_it(self):
        # busybox is not in the store: the host-binary map runs the host's sh. A child that
        # leaves the container's process group (setsid, as daemons do) used to outlive the
        # pod, reparented to the host's init; the container's PID namespace ends it now.
        self.sim.apply(pod(self.ns, "host", "busybox",
                           ["sh", "-c", f"setsid sleep {MARK_HOST} & sleep {MARK_HOST} & wait"]))
        self.wait("pod/host", "condition=Ready")
        st = self.status("host")
        self.assertEqual(st["imageID"], "kubesim-host-binary-fallback://busybox")
        self.assertTrue(st["containerID"].startswith("kubesim://"), st)
        deadline = time.monotonic() + TIMEOUT
        while len(marked_processes(MARK_HOST)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(len(marked_processes(MARK_HOST)), 2)
        self.k("delete", "pod", "host", f"--timeout={TIMEOUT}s")
        self.assertEqual(marked_processes(MARK_HOST), [])

    def test_host_program_children_end_when_its_main_process_exits(self):
        # The pod stays (restartPolicy Never): only the container's PID namespace, whose init
        # ends with the main process, can end a child that left its process group.
        self.sim.apply(pod(self.ns, "quits", "busybox",
                           ["sh", "-c", f"setsid sleep {MARK_EXIT} & pid=$!; i=0; "
                            # the main process ends once the child runs sleep (bounded)
                            f"until grep -qs {MARK_EXIT} /proc/$pid/cmdline || [ $i = 99999 ]; "
                            "do i=$((i+1)); done; echo forked"],
                           extra_spec={"restartPolicy": "Never"}))
        self.wait("pod/quits", "jsonpath={.status.phase}=Succeeded")
        self.assertEqual(self.k("logs", "quits").stdout, "forked\n")
        self.assertEqual(marked_processes(MARK_EXIT), [])

    def test_children_of_an_image_container_end_with_the_pod_at_kubesim_stop(self):
        # Left running: the class's cleanup stops kubesim and checks nothing is left.
        self.sim.apply(pod(self.ns, "bg", IMAGE,
                           ["sh", "-c", f"sleep {MARK_BG} & exec sleep {MARK_BG}"]))
        self.wait("pod/bg", "condition=Ready")
        deadline = time.monotonic() + TIMEOUT
        while len(marked_processes(MARK_BG)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(len(marked_processes(MARK_BG)), 2)


@unittest.skipIf(skip_reason(), skip_reason())
class DownAfterACrash(unittest.TestCase):
    """kubesim killed with SIGKILL (nothing of it runs its teardown): `lpk-kubesim down`
    removes what its containers left."""

    def test_down_removes_containers_a_killed_kubesim_left(self):
        api.KUBESIM = KUBESIM
        work = tempfile.mkdtemp(prefix="kubesim-crun-crash-")
        self.addCleanup(shutil.rmtree, work, True)
        store = os.path.join(work, "store")
        os.makedirs(store)
        build_image(work, store)
        sim = api.Kubesim("--image-store", store)
        self.addCleanup(shutil.rmtree, sim.dir, True)
        with open(os.path.join(sim.dir, "instance")) as f:
            tag = f.read().strip()
        ns = api.unique("crash")
        sim.apply(api.namespace(ns))
        sim.apply(pod(ns, "app", IMAGE,
                      ["sh", "-c", f"sleep {MARK_CRASH} & exec sleep {MARK_CRASH}"]))
        sim.kubectl("-n", ns, "wait", "--for=condition=Ready", "pod/app", f"--timeout={TIMEOUT}s")
        sim.proc.p.kill()
        sim.proc.p.wait()
        sim.proc.collected = True
        self.assertEqual(len(marked_processes(MARK_CRASH)), 2)  # the containers outlive it
        down = subprocess.run([KUBESIM, "down", "--state", sim.dir], capture_output=True,
                              text=True, timeout=TIMEOUT)
        self.assertEqual(down.returncode, 0, down.stderr)
        self.assertIn("removed leftovers of a crashed kubesim", down.stdout)
        self.assertEqual(leftovers(sim.dir, tag, work, (MARK_CRASH,), (ns,)), [])


if __name__ == "__main__":
    e2e.run_tests(sys.argv[1:])

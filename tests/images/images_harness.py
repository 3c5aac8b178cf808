"""Shared by the image tests (tests/images): builds images with tools/images, reads OCI
archives, and runs an image with crun in a network namespace the test creates, unpacked by
umoci, as a kubelet would run it (containerd's default capabilities, the image's user, env,
cwd, entrypoint and cmd).

Everything a test makes lives in its own temporary directory: the containers-storage buildah
commits to (LPK_IMAGE_STORAGE), crun's state (--root), the bundles. Network namespaces are
named lpk-img-<pid>-<n>. crun runs in a private mount namespace with /sys/fs/cgroup/unified
unmounted and no cgroup manager (/work/shared/containers.md: this machine's hybrid cgroups).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import lpk_e2e  # noqa: E402
from lpk_e2e import SLACK, Proc, skip_all  # noqa: E402,F401

TOOLS = os.path.join(ROOT, "tools", "images")
BUILD_DIR = ""  # set by main()

# What containerd (and so a kubelet) gives a container that asks for nothing else.
DEFAULT_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
                "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
                "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]
# crun in a mount namespace of its own, where the cgroup2 mount it refuses is gone.
CRUN_WRAPPER = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"', "sh"]


def require_container_tools():
    """Skips the whole script, saying why, where images cannot be built or run."""
    if os.geteuid() != 0:
        skip_all("needs root: crun, network and mount namespaces")
    missing = [t for t in ("buildah", "umoci", "crun", "unshare", "ip", "strip")
               if shutil.which(t) is None]
    if missing:
        skip_all(f"missing tools: {', '.join(missing)} (run tools/install-deps.sh)")
    probe = subprocess.run(CRUN_WRAPPER + ["crun", "--version"], capture_output=True, text=True)
    if probe.returncode != 0:
        skip_all(f"cannot run crun in a private mount namespace here: {probe.stderr.strip()}")


def build_images(script, out_dir, *args):
    """Runs tools/images/SCRIPT BUILD_DIR OUT_DIR ARGS with a storage of the test's own;
    returns its stdout, or fails the test with its output."""
    env = dict(os.environ, LPK_IMAGE_STORAGE=os.path.join(out_dir, "storage"))
    argv = [os.path.join(TOOLS, script), BUILD_DIR, out_dir, *args]
    r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300 * SLACK)
    if r.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    return r.stdout


def storage_images(out_dir):
    """The image names in the containers-storage build_images(out_dir) committed to."""
    store = os.path.join(out_dir, "storage")
    r = subprocess.run(["buildah", "--root", f"{store}/root", "--runroot", f"{store}/run",
                        "--storage-driver", "vfs", "images", "--format", "{{.Name}}:{{.Tag}}"],
                       capture_output=True, text=True, check=True)
    return r.stdout.split()


class Archive:
    """An OCI archive with one image: its ref name, config and the files of its layers."""

    def __init__(self, path):
        self.path = path
        with tarfile.open(path) as t:
            index = json.load(t.extractfile("index.json"))
            entry, = index["manifests"]
            self.ref = entry.get("annotations", {}).get("org.opencontainers.image.ref.name")
            manifest = json.load(self._blob(t, entry["digest"]))
            self.config = json.load(self._blob(t, manifest["config"]["digest"]))["config"]
            self.layers = [layer["digest"] for layer in manifest["layers"]]
            self.files = {}
            for layer in manifest["layers"]:
                with tarfile.open(fileobj=self._blob(t, layer["digest"])) as lt:
                    for m in lt.getmembers():
                        self.files["/" + m.name.strip("./").rstrip("/")] = (
                            m.type, oct(m.mode & 0o7777), m.uid, m.gid, m.size if m.isfile() else 0,
                            m.linkname)

    @staticmethod
    def _blob(t, digest):
        return t.extractfile("blobs/sha256/" + digest.split(":", 1)[1])

    def read(self, path):
        """The text of the file PATH ("/etc/passwd") as the image's last layer holding it has it."""
        text = None
        with tarfile.open(self.path) as t:
            for digest in self.layers:
                with tarfile.open(fileobj=self._blob(t, digest)) as lt:
                    names = {"/" + n.strip("./"): n for n in lt.getnames()}
                    if path in names:
                        text = lt.extractfile(names[path]).read().decode()
        return text

    def size(self):
        return os.path.getsize(self.path)

    def unpacked_size(self):
        return sum(f[4] for f in self.files.values())


class NetNs:
    """A network namespace of the test's own with loopback up; delete() removes it."""
    count = 0

    def __init__(self):
        NetNs.count += 1
        self.name = f"lpk-img-{os.getpid()}-{NetNs.count}"
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        self.run("ip", "link", "set", "lo", "up")

    def run(self, *argv, timeout=10, check=True):
        return subprocess.run(["ip", "netns", "exec", self.name, *argv], capture_output=True,
                              text=True, timeout=timeout * SLACK, check=check)

    def delete(self):
        subprocess.run(["ip", "netns", "delete", self.name], check=False)

    def add_address(self, cidr):
        """An address other than loopback's (on lo): a client connecting to it from inside the
        namespace is not a loopback client, as one in another pod would not be."""
        self.run("ip", "addr", "add", cidr, "dev", "lo")


def configure_bundle(bundle, image, netns=None, args=None, env=(), binds=(), read_only=False):
    """Edits umoci's config.json the way a kubelet would run the container: no terminal, the
    pod's args after the image's entrypoint (replacing its cmd), the pod's env after the
    image's, containerd's default capabilities (effective only for root), read-only binds
    (volumes), the network namespace NETNS, and readOnlyRootFilesystem as READ_ONLY."""
    path = os.path.join(bundle, "config.json")
    with open(path) as f:
        c = json.load(f)
    p = c["process"]
    p["terminal"] = False
    if args is not None:
        p["args"] = (image.config.get("Entrypoint") or []) + list(args)
    p["env"] += [f"{k}={v}" for k, v in env]
    effective = DEFAULT_CAPS if p["user"]["uid"] == 0 else []
    p["capabilities"] = {"bounding": DEFAULT_CAPS, "effective": effective,
                         "permitted": effective, "inheritable": [], "ambient": []}
    p["noNewPrivileges"] = False  # allowPrivilegeEscalation defaults to true
    for ns in c["linux"]["namespaces"]:
        if ns["type"] == "network" and netns:
            ns["path"] = f"/var/run/netns/{netns.name}"
    c["mounts"] += [{"destination": dst, "source": src, "type": "bind",
                     "options": ["rbind", "ro"]} for src, dst in binds]
    c["root"]["readonly"] = read_only
    with open(path, "w") as f:
        json.dump(c, f)


class Container:
    """One run of an image with crun. start() runs it in the background (a Proc keeps its
    output and stop() wants exit 0 after SIGTERM); run() waits for its exit. cleanup() deletes
    what is left of it (crun's state, the bundle)."""
    count = 0

    def __init__(self, image, workdir, **config):
        Container.count += 1
        self.image = image
        self.id = f"lpk-img-{os.getpid()}-{Container.count}"
        self.state = os.path.join(workdir, "crun-state")
        self.bundle = os.path.join(workdir, self.id)
        layout = self.bundle + "-layout"
        with tarfile.open(image.path) as t:
            t.extractall(layout)
        r = subprocess.run(["umoci", "unpack", "--image", f"{layout}:{image.ref}", self.bundle],
                           capture_output=True, text=True)
        shutil.rmtree(layout)
        if r.returncode != 0:
            raise AssertionError(f"umoci unpack {image.ref} failed: {r.stderr}")
        configure_bundle(self.bundle, image, **config)
        self.proc = None

    def crun(self, *args):
        return CRUN_WRAPPER + ["crun", "--root", self.state, "--cgroup-manager=disabled", *args]

    def start(self):
        self.proc = Proc(self.crun("run", "--bundle", self.bundle, self.id),
                         name=f"crun {self.image.ref}")
        return self

    def run(self, timeout=10):
        """Runs to the end; returns the exit code (None: still running after timeout)."""
        self.start()
        return self.proc.wait_exit(timeout)

    def pid(self, timeout=10):
        """The container's first process, once crun says it is running."""
        deadline = time.monotonic() + timeout * SLACK
        while time.monotonic() < deadline:
            if not self.proc.alive():
                raise AssertionError(f"{self.image.ref} ended early\n{self.proc.describe()}")
            r = subprocess.run(self.crun("state", self.id), capture_output=True, text=True)
            if r.returncode == 0 and json.loads(r.stdout)["status"] == "running":
                return json.loads(r.stdout)["pid"]
            time.sleep(0.05)
        raise AssertionError(f"{self.image.ref} not running after {timeout}s\n"
                             f"{self.proc.describe()}")

    def kill(self):
        """SIGKILL, as a kubelet sends after the grace period; returns crun's exit code."""
        subprocess.run(self.crun("kill", self.id, "KILL"), capture_output=True)
        rc = self.proc.wait_exit(10)
        if rc is None:
            raise AssertionError(f"{self.image.ref} survived SIGKILL\n{self.proc.describe()}")
        return rc

    def terminate(self, timeout=5):
        """SIGTERM, as a kubelet sends first; returns the exit code, None when the container
        still runs after timeout (it would wait out the grace period for the SIGKILL)."""
        subprocess.run(self.crun("kill", self.id, "TERM"), capture_output=True)
        return self.proc.wait_exit(timeout)

    def left(self):
        """The containers crun still knows of in this test's state directory."""
        r = subprocess.run(self.crun("list", "-q"), capture_output=True, text=True)
        return r.stdout.split()

    def cleanup(self):
        if self.id in self.left():
            subprocess.run(self.crun("delete", "-f", self.id), capture_output=True)
        shutil.rmtree(self.bundle, ignore_errors=True)


def wait_serving(netns, port, container, timeout=10):
    """Waits until something listens on PORT in NETNS; fails with the container's output if
    it ended or the deadline passed."""
    deadline = time.monotonic() + timeout * SLACK
    while time.monotonic() < deadline:
        if not container.proc.alive():
            raise AssertionError(f"{container.image.ref} ended\n{container.proc.describe()}")
        if netns.run("ss", "-Hltn", f"sport = :{port}").stdout.strip():
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port} after {timeout}s\n"
                         f"{container.proc.describe()}")


def proc_ids(pid):
    """The real, effective, saved and filesystem uids of a process, from /proc."""
    with open(f"/proc/{pid}/status") as f:
        line = next(l for l in f if l.startswith("Uid:"))
    return [int(x) for x in line.split()[1:]]


def children(pid):
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(x) for x in f.read().split()]


def main(*binaries):
    """Parses --build-dir (the CMake build tree holding BINARIES, paths relative to it, which
    the images are made of), skips when they are not built or images cannot be built or run
    here, and runs the tests of __main__."""
    global BUILD_DIR
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--build-dir", required=True)
    args, rest = ap.parse_known_args()
    BUILD_DIR = os.path.abspath(args.build_dir)
    missing = [b for b in binaries if not os.access(os.path.join(BUILD_DIR, b), os.X_OK)]
    if missing:
        skip_all(f"not built in {BUILD_DIR}: {', '.join(missing)}")
    require_container_tools()
    lpk_e2e.run_tests(rest)

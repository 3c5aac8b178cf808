#!/usr/bin/python3
"""lpk's Debian packages (tools/package/package.cmake), built with cpack from the build tree
and installed on this machine inside a private mount namespace whose /usr and /var/lib/dpkg are
overlays on a throwaway folder, so that the machine's own files are never touched: the packages'
contents, Depends that cover every library the binaries link (dpkg-shlibdeps), and after
`dpkg -i`: `lpk-proxy --version`, kubectl-lpk, `man -l` on both man pages, the bash completion
through its function, and the postinst's cap_net_bind_service: lpk-proxy run as `nobody` serves
its stub DNS on port 53 (a copy without the capability cannot), through the installed
lpk-agent. Then `dpkg -r` and `dpkg -P` leave nothing. Needs root (mount namespaces)."""

import glob
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
sys.path.insert(0, os.path.join(HERE, "..", "kubesim"))
import e2e_kubesim  # noqa: E402  (the Kubesim harness)
import lpk_e2e as e2e  # noqa: E402

BUILD_DIR = ""
DEMO_DIR = os.path.join(HERE, "..", "..", "tools", "kubesim", "demo")
TOOLS = ("cpack", "dpkg-deb", "dpkg-shlibdeps", "unshare", "nsenter", "man", "setpriv",
         "getcap", "ldd", "objdump")
# Mounted over with an overlay in the test's namespace: what dpkg -i writes.
OVERLAID = ("/usr", "/var/lib/dpkg")
# Holds the namespace open: mounts the overlays, says so, then waits for its stdin to close.
HOLDER = r'''
set -e
for d in "$@"; do
  mkdir -p "$ROOT/upper$d" "$ROOT/work$d"
  mount -t overlay overlay -o "lowerdir=$d,upperdir=$ROOT/upper$d,workdir=$ROOT/work$d" "$d"
done
echo mounted
read -r _
'''


def reason_to_skip():
    if os.geteuid() != 0:
        return "needs root: installs into a private mount namespace"
    missing = [t for t in TOOLS if not shutil.which(t)]
    if missing:
        return f"missing tools: {', '.join(missing)} (run tools/install-deps.sh)"
    cache = os.path.join(BUILD_DIR, "CMakeCache.txt")
    if not os.path.exists(cache):
        return f"no CMake build tree at {BUILD_DIR!r} (pass --build-dir)"
    with open(cache) as f:
        if "LPK_SANITIZE:BOOL=ON" in f.read():
            return "a sanitizer build is not packaged"
    return None


def linked_packages(binary):
    """(soname, package) for each library `binary` links directly (its NEEDED entries, what
    dpkg-shlibdeps reads; ldd would add their own dependencies)."""
    needed = re.findall(r"NEEDED\s+(\S+)", subprocess.run(
        ["objdump", "-p", binary], capture_output=True, text=True, check=True).stdout)
    paths = dict(re.findall(r"^\s*(\S+) => (/\S+)", subprocess.run(
        ["ldd", binary], capture_output=True, text=True, check=True).stdout, re.M))
    for soname in needed:
        path = os.path.realpath(paths[soname])
        # Merged /usr: dpkg may know the file under /lib rather than /usr/lib.
        for spelling in (path, path.replace("/usr/lib/", "/lib/", 1)):
            owner = subprocess.run(["dpkg", "-S", spelling], capture_output=True, text=True)
            if owner.returncode == 0:
                yield soname, owner.stdout.split(":")[0]
                break
        else:
            yield soname, f"no package ({path})"


def package_names(package):
    """The package's name and the virtual packages it Provides."""
    r = subprocess.run(["dpkg-query", "-W", "-f=${Provides}", package], capture_output=True,
                       text=True)
    return {package} | {p.strip().split()[0] for p in r.stdout.split(",") if p.strip()}


class Deb(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        reason = reason_to_skip()
        if reason:
            raise unittest.SkipTest(reason)
        cls.tmp = tempfile.mkdtemp(prefix="lpk-deb-")
        os.chmod(cls.tmp, 0o755)  # nobody runs a copy of lpk-proxy from under it
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        r = subprocess.run(["cpack", "-G", "DEB", "-B", os.path.join(cls.tmp, "out")],
                           cwd=BUILD_DIR, capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise AssertionError(f"cpack failed:\n{r.stdout}{r.stderr}")
        cls.deb = cls.one(os.path.join(cls.tmp, "out", "lpk_*.deb"))
        cls.kubesim_deb = cls.one(os.path.join(cls.tmp, "out", "lpk-kubesim_*.deb"))
        cls.start_namespace()

    @classmethod
    def one(cls, pattern):
        found = glob.glob(pattern)
        if len(found) != 1:
            raise AssertionError(f"want one {pattern}, found {found}")
        return found[0]

    @classmethod
    def start_namespace(cls):
        root = os.path.join(cls.tmp, "root")
        cls.holder = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "bash", "-c", HOLDER, "holder",
             *OVERLAID], env=dict(os.environ, ROOT=root), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        cls.addClassCleanup(cls.stop_namespace)
        line = cls.holder.stdout.readline()
        if line.strip() != "mounted":
            raise unittest.SkipTest(f"cannot mount overlays in a mount namespace: "
                                    f"{cls.holder.stderr.read()}")

    @classmethod
    def stop_namespace(cls):
        cls.holder.stdin.close()  # `read` ends, the namespace and its overlays go with it
        cls.holder.wait(timeout=10)

    def inside(self, *argv, check=True, user=None, timeout=60, env=None):
        """Runs argv in the test's mount namespace (as `user` when given)."""
        cmd = ["nsenter", "-t", str(self.holder.pid), "-m"]
        if user:
            cmd += ["setpriv", f"--reuid={user}", f"--regid={pwd.getpwnam(user).pw_gid}",
                    "--clear-groups"]
        r = subprocess.run(cmd + list(argv), capture_output=True, text=True, timeout=timeout,
                           env=env)
        if check:
            self.assertEqual(r.returncode, 0, f"{' '.join(argv)}:\n{r.stdout}{r.stderr}")
        return r

    def dpkg(self, *args):
        return self.inside("dpkg", "--log=/dev/null", *args)

    def contents(self, deb):
        r = subprocess.run(["dpkg-deb", "-c", deb], capture_output=True, text=True, check=True)
        return {line.split()[5] + (" -> " + line.split()[7] if " -> " in line else "")
                for line in r.stdout.splitlines()}

    def test_1_contents(self):
        files = self.contents(self.deb)
        for want in ("./usr/bin/lpk-proxy", "./usr/bin/lpk-agent",
                     "./usr/bin/kubectl-lpk -> lpk-proxy",
                     "./usr/share/man/man1/lpk-proxy.1.gz", "./usr/share/man/man5/lpk.yaml.5.gz",
                     "./usr/share/bash-completion/completions/lpk-proxy",
                     "./usr/share/zsh/vendor-completions/_lpk-proxy"):
            self.assertIn(want, files)
        self.assertNotIn("./usr/bin/lpk-kubesim", files)
        self.assertIn("./usr/bin/lpk-kubesim", self.contents(self.kubesim_deb))
        image = os.path.join(BUILD_DIR, "images", "lpk-agent.tar")
        self.assertEqual("./usr/share/lpk/images/lpk-agent.tar" in files, os.path.exists(image))

    def test_1_depends_cover_the_linked_libraries(self):
        depends = subprocess.run(["dpkg-deb", "-f", self.deb, "Depends"], capture_output=True,
                                 text=True, check=True).stdout
        named = {d.strip().split()[0] for d in depends.split(",")}
        self.assertIn("libcap2-bin", named)  # setcap, for the postinst
        for binary in ("proxy/lpk-proxy", "agent/lpk-agent"):
            for soname, package in linked_packages(os.path.join(BUILD_DIR, binary)):
                with self.subTest(binary=binary, soname=soname):
                    # Depends may name the package or what it Provides (libspdlog1.10-fmt9).
                    self.assertTrue(package_names(package) & named,
                                    f"{soname} is {package}'s; Depends: {depends}")

    def test_2_install_use_remove(self):
        self.dpkg("-i", self.deb)
        version = self.inside("/usr/bin/lpk-proxy", "--version").stdout.strip()
        self.assertRegex(version, r"^lpk-proxy [0-9]+\.[0-9]+\.[0-9]+$")
        self.assertEqual(self.inside("readlink", "/usr/bin/kubectl-lpk").stdout.strip(),
                         "lpk-proxy")
        for page, words in (("man1/lpk-proxy.1.gz", "cap_net_bind_service"),
                            ("man5/lpk.yaml.5.gz", "FORMAT")):
            r = self.inside("man", "-l", f"/usr/share/man/{page}")
            self.assertIn(words, r.stdout, r.stdout)
        self.assertIn("cap_net_bind_service=ep",
                      self.inside("getcap", "/usr/bin/lpk-proxy").stdout)
        completion = self.inside("bash", "--norc", "-c",
                                 "source /usr/share/bash-completion/completions/lpk-proxy; "
                                 "complete -p lpk-proxy; COMP_WORDS=(lpk-proxy doctor --js); "
                                 "COMP_CWORD=2; _lpk_proxy; echo \"${COMPREPLY[@]}\"").stdout
        self.assertEqual(completion, "complete -F _lpk_proxy lpk-proxy\n--json\n")
        self.check_port_53_as_nobody()
        self.dpkg("-i", self.kubesim_deb)
        self.assertIn("usage: lpk-kubesim up",
                      self.inside("/usr/bin/lpk-kubesim", "--help", check=False).stderr)
        self.dpkg("-r", "lpk-kubesim", "lpk")
        self.dpkg("-P", "lpk")
        for path in ("/usr/bin/lpk-proxy", "/usr/bin/kubectl-lpk", "/usr/bin/lpk-kubesim",
                     "/usr/share/man/man1/lpk-proxy.1.gz"):
            self.assertNotEqual(self.inside("test", "-e", path, check=False).returncode, 0, path)

    def test_3_connect_as_nobody(self):
        """After install, `lpk-proxy connect` run by nobody against kubesim serves its stub DNS
        on port 53 (the default: the slot's own address), then ends cleanly."""
        kubesim = os.path.join(BUILD_DIR, "tools", "kubesim", "lpk-kubesim")
        if not os.access(kubesim, os.X_OK) or not shutil.which("kubectl"):
            self.skipTest("lpk-kubesim is not built or kubectl is missing")
        e2e_kubesim.KUBESIM = kubesim
        sim = e2e_kubesim.Kubesim("--manifests", DEMO_DIR)
        self.addCleanup(sim.stop)
        self.dpkg("-i", self.deb)
        self.addCleanup(self.dpkg, "-r", "lpk")
        home = self.nobody_home("connect")
        kubeconfig = os.path.join(home, "kubeconfig")
        with open(kubeconfig, "w") as f:  # certificates inline: nobody cannot read kubesim's
            f.write(sim.kubectl("config", "view", "--raw", "--flatten").stdout)
        shutil.chown(kubeconfig, "nobody")
        proxy = e2e.Proc(self.as_nobody("/usr/bin/lpk-proxy", "connect", "-n", "demo",
                                        "--kubeconfig", kubeconfig, "--pool", e2e.private_pool()),
                         name="lpk-proxy connect (installed, nobody)", env=self.env_of(home))
        self.addCleanup(proxy.stop, signal.SIGTERM, 120)
        proxy.wait_line(e2e.PROXY_LINES["ready"], timeout=180 * e2e.SLACK)
        self.assertEqual(proxy.wait_line(e2e.PROXY_LINES["dns"]).group(2), "53", proxy.err)
        proxy.stop(signal.SIGTERM, 120)

    def nobody_home(self, name):
        home = os.path.join(self.tmp, name)
        os.makedirs(home)
        shutil.chown(home, "nobody")
        return home

    def env_of(self, home):
        return dict(os.environ, TMPDIR=home, XDG_STATE_HOME=home, XDG_RUNTIME_DIR=home,
                    HOME=home)

    def as_nobody(self, *argv):
        """argv, run in the test's mount namespace as nobody."""
        return ["nsenter", "-t", str(self.holder.pid), "-m", "setpriv", "--reuid=nobody",
                f"--regid={pwd.getpwnam('nobody').pw_gid}", "--clear-groups", *argv]

    def check_port_53_as_nobody(self):
        """The installed lpk-proxy, run as nobody, serves its stub DNS on port 53 of a private
        address, tunnelled through the installed lpk-agent; a copy without the capability
        cannot bind there."""
        home = self.nobody_home("run")
        ns = ["nsenter", "-t", str(self.holder.pid), "-m"]
        agent = e2e.Proc(ns + ["/usr/bin/lpk-agent", "--listen", "127.0.0.1:0", "--log-level",
                               "warn"], name="lpk-agent (installed)")
        self.addCleanup(agent.stop)
        tunnel = agent.wait_line(e2e.AGENT_LINES["tunnel"]).group(1)
        dns = e2e.private_address()
        env = self.env_of(home)
        run = ["run", "--agent", tunnel, "--pool", e2e.private_pool(), "--dns", f"{dns}:53",
               "--log-level", "warn"]
        proxy = e2e.Proc(self.as_nobody("/usr/bin/lpk-proxy", *run),
                         name="lpk-proxy (installed, nobody)", env=env)
        self.addCleanup(proxy.stop)
        proxy.wait_line(e2e.PROXY_LINES["ready"], timeout=10 * e2e.SLACK)
        self.assertEqual(proxy.wait_line(e2e.PROXY_LINES["dns"]).group(2), "53")
        proxy.stop()
        # The same binary without the file capability: binding port 53 is refused.
        plain = os.path.join(home, "lpk-proxy")
        shutil.copy(os.path.join(BUILD_DIR, "proxy", "lpk-proxy"), plain)
        r = self.inside(plain, *run, user="nobody", check=False, timeout=30, env=env)
        self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotIn(f"dns {dns}:53", r.stdout)


def main():
    global BUILD_DIR
    args = sys.argv[1:]
    for a in list(args):
        if a.startswith("--build-dir="):
            BUILD_DIR = a.split("=", 1)[1]
            args.remove(a)
    sys.argv[1:] = args
    e2e.main()


if __name__ == "__main__":
    main()

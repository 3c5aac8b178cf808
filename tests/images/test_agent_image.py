#!/usr/bin/env python3
"""The lpk-agent image (tools/images/agent-image.sh): named as `connect` patches it in, under
30 MB, runs under crun as uid 10001 from its own root filesystem, and agent/Dockerfile's final
stage builds the same image.

    tests/images/test_agent_image.py --build-dir BUILD
"""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

import images_harness as h

MB = 1 << 20
AGENT = "/usr/local/bin/lpk-agent"


def default_agent_image():
    """The image `lpk-proxy connect --agent-image` defaults to (proxy/app/options.hpp)."""
    with open(os.path.join(h.ROOT, "proxy", "app", "options.hpp")) as f:
        return re.search(r'agent_image = "([^"]+)"', f.read()).group(1)


def dockerfile_stages(path):
    """agent/Dockerfile as [(FROM line, [instructions])], continuation lines joined."""
    with open(path) as f:
        text = re.sub(r"\\\n", " ", f.read())
    stages = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append((line, []))
        else:
            stages[-1][1].append(line)
    return stages


class AgentImage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="lpk-agent-image-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        print(h.build_images("agent-image.sh", cls.tmp).strip(), flush=True)
        cls.image = h.Archive(os.path.join(cls.tmp, "lpk-agent.tar"))

    def container(self, **config):
        c = h.Container(self.image, self.tmp, **config)
        self.addCleanup(c.cleanup)
        return c

    def test_named_as_connect_patches_it_in(self):
        ref = default_agent_image()
        self.assertEqual(self.image.ref, ref)
        self.assertIn(f"localhost/{ref}", h.storage_images(self.tmp))

    def test_under_30_mb(self):
        print(f"agent image: archive {self.image.size() / MB:.1f} MB, "
              f"files {self.image.unpacked_size() / MB:.1f} MB", flush=True)
        self.assertLess(self.image.size(), 30 * MB)
        self.assertLess(self.image.unpacked_size(), 30 * MB)

    def test_layout(self):
        files, config = self.image.files, self.image.config
        self.assertEqual(files[AGENT][1:4], ("0o755", 0, 0))
        self.assertIn("/lib64/ld-linux-x86-64.so.2", files)
        self.assertIn("/lib/x86_64-linux-gnu/libc.so.6", files)
        self.assertEqual({f[2:4] for f in files.values()}, {(0, 0)}, "every file is root's")
        self.assertEqual(config["User"], "10001:10001")
        self.assertEqual(config["Entrypoint"], [AGENT])
        self.assertIsNone(config.get("Cmd"))
        self.assertIn("lpk:x:10001:10001:", self.image.read("/etc/passwd"))

    def test_help_exits_0_from_the_entrypoint(self):
        c = self.container(args=["--help"])
        self.assertEqual(c.run(), 0, c.proc.describe())
        self.assertTrue(any(l.startswith("usage: lpk-agent") for l in c.proc.lines + c.proc.err),
                        c.proc.describe())

    def test_runs_as_10001_from_the_image(self):
        # Read-only: a pod with readOnlyRootFilesystem keeps it when lpk patches in the agent.
        ns = h.NetNs()
        self.addCleanup(ns.delete)
        c = self.container(netns=ns, read_only=True).start()
        c.proc.wait_line(r"^tunnel 127\.0\.0\.1:4590$", timeout=10)
        pid = c.pid()
        self.assertEqual(h.proc_ids(pid), [10001] * 4)
        # The running program is the image's file, not the host's build output.
        self.assertEqual(os.stat(f"/proc/{pid}/exe").st_ino,
                         os.stat(os.path.join(c.bundle, "rootfs", AGENT[1:])).st_ino)
        with open(f"/proc/{pid}/mountinfo") as f:
            root = next(l.split() for l in f if l.split()[4] == "/")
        self.assertIn("ro", root[5].split(","), root)
        self.assertIn("127.0.0.1:4590", ns.run("ss", "-Hltn").stdout)
        c.proc.stop()
        self.assertEqual(c.left(), [])

    def test_missing_tool_or_argument_is_one_line(self):
        # A PATH with what the script runs before it looks for its tools, and no buildah.
        bin_dir = os.path.join(self.tmp, "bin-without-buildah")
        os.makedirs(bin_dir, exist_ok=True)
        for tool in ("bash", "dirname", "sed"):
            if not os.path.exists(os.path.join(bin_dir, tool)):
                os.symlink(shutil.which(tool), os.path.join(bin_dir, tool))
        script = os.path.join(h.TOOLS, "agent-image.sh")
        for args, env, line in (
                ([h.BUILD_DIR, self.tmp], {"PATH": bin_dir},
                 "images: buildah is missing: run tools/install-deps.sh"),
                ([], None, "images: usage: agent-image.sh BUILD_DIR OUT_DIR [REF]")):
            r = subprocess.run(["bash", script, *args], capture_output=True, text=True, env=env)
            self.assertEqual((r.returncode, r.stdout, r.stderr), (1, "", line + "\n"))

    def test_dockerfile_final_stage_builds_the_same_image(self):
        stages = dockerfile_stages(os.path.join(h.ROOT, "agent", "Dockerfile"))
        build = next(body for head, body in stages if head.lower().endswith(" as build"))
        head, final = stages[-1]
        self.assertEqual(head, "FROM scratch")
        self.assertIn("COPY --from=build /rootfs/ /", final)
        self.assertTrue(any("tools/images/agent-rootfs.sh /build/agent/lpk-agent /rootfs" in i
                            for i in build if i.startswith("RUN ")), build)
        docker = self.build_final_stage(final)
        self.assertEqual(docker.files, self.image.files)
        for key in ("Entrypoint", "Cmd", "User", "Env", "ExposedPorts", "WorkingDir", "Volumes"):
            self.assertEqual(docker.config.get(key), self.image.config.get(key), key)

    def build_final_stage(self, final):
        """The Dockerfile's final stage built by buildah, over a build stage that holds what
        agent-rootfs.sh stages from this build's lpk-agent (as the Dockerfile's build stage
        stages it from its own)."""
        ctx = os.path.join(self.tmp, "dockerfile")
        os.makedirs(ctx)
        subprocess.run([os.path.join(h.TOOLS, "agent-rootfs.sh"),
                        os.path.join(h.BUILD_DIR, "agent", "lpk-agent"),
                        os.path.join(ctx, "rootfs")], check=True)
        with open(os.path.join(ctx, "Dockerfile"), "w") as f:
            f.write("FROM scratch AS build\nCOPY rootfs/ /rootfs/\n\nFROM scratch\n")
            f.write("\n".join(final) + "\n")
        store = os.path.join(self.tmp, "storage")
        b = ["buildah", "--root", f"{store}/root", "--runroot", f"{store}/run",
             "--storage-driver", "vfs"]
        tag = "localhost/lpk-agent-dockerfile:test"
        archive = os.path.join(ctx, "docker.tar")
        for argv in (b + ["bud", "--quiet", "-f", f"{ctx}/Dockerfile", "-t", tag, ctx],
                     b + ["push", "--quiet", tag, f"oci-archive:{archive}:{tag}"]):
            r = subprocess.run(argv, capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, f"{' '.join(argv)}: {r.stdout}{r.stderr}")
        return h.Archive(archive)


if __name__ == "__main__":
    h.main("agent/lpk-agent")

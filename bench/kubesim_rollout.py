#!/usr/bin/python3
"""Pods per second of a 20-replica rollout on lpk-kubesim: containers from an OCI image run
with crun (--image-store) against the host-binary fallback, side by side in one run.

Usage: bench/kubesim_rollout.py BUILD_DIR [--replicas N] [--reps N] [--out FILE.json]

The demo api (lpk-kubesim-demo-api of BUILD_DIR) is packed into an image from scratch with
buildah (binary, the libraries ldd lists, the loader; storage private to the run), exported
to an OCI archive in an image store. Each rep starts a kubesim, applies a Deployment of
lpk/demo-api with an httpGet readiness probe (periodSeconds 1, as tools/kubesim/demo), and
times `kubectl apply` to `kubectl rollout status` done: once with --image-store (crun), once
without it (the same image name runs the host binary). Needs root, kubectl, crun, umoci and
buildah. Floor (issue 11): the container rollout of 20 replicas in under 10 s."""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "kube"))
import lpk_e2e as e2e  # noqa: E402
import kubesim_crun_e2e as crun_test  # noqa: E402  (libraries_of)
import plots  # noqa: E402

IMAGE = "lpk/demo-api:bench"


def build_demo_api_image(demo_api, work, store):
    rootfs = os.path.join(work, "rootfs")
    os.makedirs(os.path.join(rootfs, "app"))
    shutil.copy(demo_api, os.path.join(rootfs, "app", "demo-api"))
    for lib in crun_test.libraries_of(demo_api):
        dest = os.path.join(rootfs, lib.lstrip("/"))
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copy(lib, dest)
    storage = ["--root", os.path.join(work, "storage"), "--runroot", os.path.join(work, "run"),
               "--storage-driver", "vfs"]

    def buildah(*args):
        return subprocess.run(["buildah", *storage, *args], check=True, capture_output=True,
                              text=True).stdout.strip()

    c = buildah("from", "scratch")
    buildah("copy", c, rootfs + "/", "/")
    buildah("config", "--entrypoint", '["/app/demo-api"]', "--user", "10001", c)
    buildah("commit", "-q", c, IMAGE)
    buildah("push", "-q", IMAGE, f"oci-archive:{os.path.join(store, 'demo-api.tar')}:{IMAGE}")
    buildah("rm", c)


def deployment(replicas):
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "default"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "api"}},
                 "template": {"metadata": {"labels": {"app": "api"}}, "spec": {
                     "containers": [{
                         "name": "api", "image": IMAGE,
                         "env": [{"name": "PORT", "value": "8080"}],
                         "ports": [{"containerPort": 8080, "name": "http"}],
                         "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"},
                                            "periodSeconds": 1}}]}}}})


def rollout_seconds(kubesim, replicas, store):
    state = tempfile.mkdtemp(prefix="kubesim-bench-")
    args = [kubesim, "up", "--port", "0", "--state", state] + (
        ["--image-store", store] if store else [])
    sim = e2e.Proc(args, name="lpk-kubesim")
    try:
        m = sim.wait_line(r"serving https://127.0.0.1:(\d+) kubeconfig (\S+)", timeout=120)
        kubectl = ["kubectl", "--kubeconfig", m.group(2), "--cache-dir",
                   os.path.join(state, "cache")]
        subprocess.run(kubectl + ["get", "ns"], check=True, capture_output=True)  # warm discovery
        start = time.monotonic()
        subprocess.run(kubectl + ["apply", "-f", "-"], input=deployment(replicas), text=True,
                       check=True, capture_output=True)
        subprocess.run(kubectl + ["rollout", "status", "deployment/api", "--timeout=120s"],
                       check=True, capture_output=True)
        seconds = time.monotonic() - start
        pods = json.loads(subprocess.run(kubectl + ["get", "pods", "-o", "json"], check=True,
                                         capture_output=True, text=True).stdout)["items"]
        ids = {p["status"]["containerStatuses"][0]["containerID"].split(":")[0] for p in pods}
        return seconds, sorted(ids)
    finally:
        sim.stop(timeout=60)
        shutil.rmtree(state, ignore_errors=True)


def run_facts():
    """When and where it ran, for the results file and its chart's caption."""
    commit = subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    return {"measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "nproc": os.cpu_count(), "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            "commit": commit}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build_dir")
    ap.add_argument("--replicas", type=int, default=20)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out")
    a = ap.parse_args()
    reason = crun_test.skip_reason()
    if reason:
        print(f"SKIPPED: kubesim_rollout: {reason}")
        sys.exit(e2e.SKIP_CODE)
    if a.out and os.path.basename(a.out) == "kubesim_rollout.json":
        plots.check_or_exit("kubesim_rollout.py")
    kubesim = os.path.join(a.build_dir, "tools", "kubesim", "lpk-kubesim")
    demo_api = os.path.join(a.build_dir, "tools", "kubesim", "lpk-kubesim-demo-api")
    work = tempfile.mkdtemp(prefix="kubesim-bench-img-")
    try:
        store = os.path.join(work, "store")
        os.makedirs(store)
        build_demo_api_image(demo_api, work, store)
        results = {"crun": [], "host-binary": []}
        for _ in range(a.reps):  # interleaved, so that the machine's load hits both alike
            for name, s in (("crun", store), ("host-binary", None)):
                seconds, ids = rollout_seconds(kubesim, a.replicas, s)
                results[name].append(seconds)
                print(f"{name}: {a.replicas} pods ready in {seconds:.2f} s "
                      f"({a.replicas / seconds:.1f} pods/s; container ids {ids})", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = {k: {"median_s": statistics.median(v),
                   "pods_per_s": a.replicas / statistics.median(v), "runs_s": v}
               for k, v in results.items()}
    summary["replicas"] = a.replicas
    summary["floor_met"] = summary["crun"]["median_s"] < 10
    summary.update(run_facts())
    print(json.dumps(summary, indent=1))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(summary, f, indent=1)
        # The charts read the file by its name: another name gets none.
        if os.path.basename(a.out) == "kubesim_rollout.json":
            plots.regenerate(os.path.dirname(os.path.abspath(a.out)), "kubesim_rollout")


if __name__ == "__main__":
    main()

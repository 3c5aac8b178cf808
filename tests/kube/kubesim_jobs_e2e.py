#!/usr/bin/python3
"""batch/v1 Jobs and coordination.k8s.io/v1 Leases in lpk-kubesim, driven by kubectl as against
a real cluster: `kubectl create job` runs to completion and `kubectl logs job/NAME` reads it, a
failing Job stops at its backoffLimit, ttlSecondsAfterFinished deletes a finished Job, deletion
with propagation removes its pods, the Job strategy refuses restartPolicy Always, and Leases are
stored, listed, explained and renewed with kubectl. Jobs run real pods (root); Lease tests need
no pods. Usage: kubesim_jobs_e2e.py /path/to/lpk-kubesim [unittest args]."""

import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kubesim_api_e2e as api  # noqa: E402  (its Kubesim, names and helpers)

if __name__ == "__main__" and len(sys.argv) > 1:
    api.KUBESIM = sys.argv.pop(1)

e2e, TIMEOUT = api.e2e, api.TIMEOUT


def job(ns, name, command, restart="Never", **spec):
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": ns},
            "spec": {**spec, "template": {"spec": {
                "restartPolicy": restart,
                "containers": [{"name": "main", "image": "busybox", "command": command}]}}}}


def wait_until(predicate, what, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout} s")


@unittest.skipIf(api.KUBECTL is None, "kubectl is not installed")
class Leases(unittest.TestCase):
    """Leases are stored objects: no pods, no root."""

    @classmethod
    def setUpClass(cls):
        cls.sim = api.Kubesim("--no-runtime")
        cls.addClassCleanup(cls.sim.stop)

    def setUp(self):
        self.ns = api.unique("lease")
        self.sim.apply(api.namespace(self.ns))

    def test_lease_with_kubectl(self):
        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                 "metadata": {"name": "hb", "namespace": self.ns},
                 "spec": {"holderIdentity": "laptop_1", "leaseDurationSeconds": 20,
                          "renewTime": "2026-12-06T10:00:00.000000Z"}}
        self.sim.kubectl("create", "-f", "-", input=json.dumps(lease))
        table = self.sim.kubectl("-n", self.ns, "get", "lease").stdout.split("\n")
        self.assertEqual(table[0].split(), ["NAME", "HOLDER", "AGE"], table)
        self.assertEqual(table[1].split()[:2], ["hb", "laptop_1"], table)
        self.sim.kubectl("-n", self.ns, "patch", "lease", "hb", "--type=merge", "-p",
                         '{"spec":{"renewTime":"2026-12-06T10:00:05.500000Z"}}')
        got = self.sim.get("-n", self.ns, "lease", "hb")
        self.assertEqual(got["spec"]["renewTime"], "2026-12-06T10:00:05.500000Z")
        self.assertEqual(got["spec"]["leaseDurationSeconds"], 20)
        resources = self.sim.kubectl("api-resources", "--api-group=coordination.k8s.io",
                                     "-o", "name").stdout.split()
        self.assertEqual(resources, ["leases.coordination.k8s.io"])
        explained = self.sim.kubectl("explain", "lease.spec.renewTime").stdout
        self.assertIn("renewTime", explained)
        self.sim.kubectl("-n", self.ns, "delete", "lease", "hb")
        self.assertEqual(self.sim.kubectl("-n", self.ns, "get", "lease", "-o", "name").stdout, "")

    def test_job_restart_policy_always_is_refused(self):
        r = self.sim.kubectl("apply", "-f", "-", check=False,
                             input=json.dumps(job(self.ns, "bad", ["true"], restart="Always")))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('spec.template.spec.restartPolicy: Unsupported value: "Always"', r.stderr)


@unittest.skipIf(api.KUBECTL is None, "kubectl is not installed")
class Jobs(unittest.TestCase):
    """Jobs with real pods (processes in network namespaces: root)."""

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root: kubesim runs pods in network namespaces")
        cls.sim = api.Kubesim()
        cls.addClassCleanup(cls.sim.stop)

    def setUp(self):
        self.ns = api.unique("job")
        self.sim.apply(api.namespace(self.ns))

    def pods_of(self, name):
        return self.sim.get("-n", self.ns, "pods", "-l", f"job-name={name}")["items"]

    def test_create_job_completes_logs_and_delete_removes_its_pods(self):
        self.sim.kubectl("-n", self.ns, "create", "job", "hello", "--image=busybox", "--",
                         "sh", "-c", "echo hello from a job")
        self.sim.kubectl("-n", self.ns, "wait", "--for=condition=complete", "job/hello",
                         f"--timeout={TIMEOUT}s")
        got = self.sim.get("-n", self.ns, "job", "hello")
        self.assertEqual(got["status"]["succeeded"], 1, got)
        self.assertIn("completionTime", got["status"])
        uid = got["metadata"]["uid"]
        self.assertEqual(got["spec"]["selector"]["matchLabels"],
                         {"batch.kubernetes.io/controller-uid": uid})
        table = self.sim.kubectl("-n", self.ns, "get", "jobs").stdout.split("\n")
        self.assertEqual(table[1].split()[:3], ["hello", "Complete", "1/1"], table)
        pods = self.pods_of("hello")
        self.assertEqual([p["status"]["phase"] for p in pods], ["Succeeded"])
        self.assertEqual(pods[0]["metadata"]["ownerReferences"][0]["uid"], uid)
        self.assertEqual(self.sim.kubectl("-n", self.ns, "logs", "job/hello").stdout,
                         "hello from a job\n")
        self.sim.kubectl("-n", self.ns, "delete", "job", "hello", "--cascade=background")
        wait_until(lambda: not self.pods_of("hello"), "the Job's pods go with it")

    def test_failing_job_stops_at_its_backoff_limit(self):
        self.sim.apply(job(self.ns, "fails", ["sh", "-c", "exit 3"], backoffLimit=1))
        self.sim.kubectl("-n", self.ns, "wait", "--for=condition=failed", "job/fails",
                         f"--timeout={TIMEOUT}s")
        got = self.sim.get("-n", self.ns, "job", "fails")
        self.assertEqual(got["status"]["failed"], 2, got)
        failed = [c for c in got["status"]["conditions"] if c["type"] == "Failed"]
        self.assertEqual(failed[0]["reason"], "BackoffLimitExceeded", got)
        self.assertEqual(sorted(p["status"]["phase"] for p in self.pods_of("fails")),
                         ["Failed", "Failed"])

    def test_ttl_after_finished_deletes_the_job_and_its_pods(self):
        self.sim.apply(job(self.ns, "brief", ["true"], ttlSecondsAfterFinished=1))
        wait_until(lambda: self.sim.kubectl("-n", self.ns, "get", "job", "brief",
                                            check=False).returncode != 0,
                   "the finished Job is deleted after its TTL")
        wait_until(lambda: not self.pods_of("brief"), "its pods go with it")


if __name__ == "__main__":
    if not api.KUBESIM:
        e2e.skip_all("usage: kubesim_jobs_e2e.py /path/to/lpk-kubesim")
    e2e.run_tests(sys.argv[1:])

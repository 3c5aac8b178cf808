#!/usr/bin/python3
"""kubesim's controllers as a real cluster runs them, driven with kubectl: Deployment
annotations copied to ReplicaSets, ProgressDeadlineExceeded, evictions (the pods/eviction
subresource, and a kubelet eviction's Failed pod that controllers ignore), StatefulSet
OnDelete, partition and OrderedReady with their revisions.
Usage: kubesim_controllers_e2e.py /path/to/lpk-kubesim [unittest args]
kubesim runs with --no-runtime (no root: pods are reported Running, Ready unless a
readinessGate says otherwise). Every wait is a watch (kubectl wait, rollout status, get -w)
with a deadline. Exits 77 when every test was skipped (no kubectl)."""

import json
import os
import selectors
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import lpk_e2e as e2e  # noqa: E402  (processes that must end cleanly, skips, exit codes)

KUBECTL = shutil.which("kubectl")
KUBESIM = sys.argv.pop(1) if __name__ == "__main__" and len(sys.argv) > 1 else None
SLACK = int(os.environ.get("LPK_E2E_SLACK", "1"))
TIMEOUT = 60 * SLACK
GATE = "kubesim.test/ready"  # a readinessGate: the pod is Ready only once a test says so


class Kubesim:
    """One lpk-kubesim --no-runtime on port 0 with its own state directory."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="kubesim-ctl-")
        self.proc = e2e.Proc([KUBESIM, "up", "--no-runtime", "--state", self.dir],
                             name="lpk-kubesim")
        try:
            m = self.proc.wait_line(r"serving https://127.0.0.1:(\d+) kubeconfig (\S+)",
                                    timeout=120)
        except AssertionError:
            self.stop()
            raise
        self.port = int(m.group(1))
        self.kubeconfig = m.group(2)

    def cmd(self, *args):
        return [KUBECTL, "--kubeconfig", self.kubeconfig, "--cache-dir",
                os.path.join(self.dir, "kubectl-cache"), *args]

    def kubectl(self, *args, check=True, input=None, timeout=TIMEOUT):
        r = subprocess.run(self.cmd(*args), capture_output=True, text=True, input=input,
                           timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {r.stderr}")
        return r

    def get(self, *args):
        return json.loads(self.kubectl("get", "-o", "json", *args).stdout)

    def watch_until(self, args, template, done, timeout=TIMEOUT):
        """Runs `kubectl get ARGS -w -o jsonpath=TEMPLATE` (one line per object seen, the
        list first) and feeds each line to done(line) until it returns true; raises with the
        lines seen when the deadline passes first."""
        p = subprocess.Popen(self.cmd("get", *args, "-w", "-o", "jsonpath=" + template + "\n"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        seen, buf = [], ""
        deadline = time.monotonic() + timeout
        sel = selectors.DefaultSelector()
        sel.register(p.stdout, selectors.EVENT_READ)
        try:
            while (left := deadline - time.monotonic()) > 0:
                if not sel.select(left):
                    continue
                chunk = os.read(p.stdout.fileno(), 65536).decode()
                if not chunk:
                    break
                buf += chunk
                while "\n" in buf:
                    line, buf = buf.split("\n", 1)
                    seen.append(line)
                    if done(line):
                        return line
        finally:
            p.kill()
            p.wait()
            sel.close()
        raise AssertionError(f"get {' '.join(args)}: not done within {timeout}s; saw {seen}")

    def stop(self):
        try:
            return self.proc.stop(timeout=30)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def deployment(name, ns, replicas=1, image="nginx:1", extra_spec="", annotations="{}",
               pod_extra=""):
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {ns}, annotations: {annotations}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}{extra_spec}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:{pod_extra}
      containers: [{{name: app, image: "{image}"}}]
"""


def statefulset(name, ns, replicas, strategy, pod_extra=""):
    return f"""
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: {name}, namespace: {ns}}}
spec:
  replicas: {replicas}
  serviceName: {name}
  selector: {{matchLabels: {{app: {name}}}}}
  updateStrategy: {strategy}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:{pod_extra}
      containers: [{{name: app, image: "nginx:1"}}]
"""


GATED = f"\n      readinessGates: [{{conditionType: {GATE}}}]"


class KubesimTestCase(unittest.TestCase):
    """One kubesim per class, a fresh namespace per test, kubectl helpers; no tests of its
    own (kubesim_kubectl_e2e.py builds on it too)."""
    sim = None

    @classmethod
    def setUpClass(cls):
        cls.sim = Kubesim()

    @classmethod
    def tearDownClass(cls):
        if cls.sim:
            cls.sim.stop()

    def setUp(self):
        self.ns = "ctl-" + uuid.uuid4().hex[:8]
        self.sim.kubectl("create", "namespace", self.ns)

    def tearDown(self):
        if any(e for _, e in (self._outcome.result.errors + self._outcome.result.failures)
               if e):
            print(self.sim.proc.describe(), flush=True)
        self.sim.kubectl("delete", "namespace", self.ns, "--wait=false", check=False)

    def k(self, *args, **kw):
        return self.sim.kubectl("-n", self.ns, *args, **kw)

    def apply(self, text):
        return self.k("apply", "-f", "-", input=text)

    def rollout(self, what, check=True):
        return self.k("rollout", "status", what, f"--timeout={TIMEOUT}s", check=check)

    def set_gate(self, pod, status="True"):
        cond = {"type": GATE, "status": status, "lastTransitionTime": "2026-01-01T00:00:00Z"}
        self.k("patch", "pod", pod, "--subresource=status", "--type=json", "-p",
               json.dumps([{"op": "add", "path": "/status/conditions/-", "value": cond}]))

    def replicasets(self, app):
        items = self.sim.get("-n", self.ns, "replicasets", "-l", f"app={app}")["items"]
        return sorted(items, key=lambda rs: int(
            rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]))

    def pods(self, app):
        return self.sim.get("-n", self.ns, "pods", "-l", f"app={app}")["items"]


@unittest.skipUnless(KUBESIM and KUBECTL, "needs lpk-kubesim (argument) and kubectl on PATH")
class ControllersTest(KubesimTestCase):

    # Deployment annotations reach its ReplicaSets but for last-applied-configuration and the
    # revision annotations (copyDeploymentAnnotationsToReplicaSet / skipCopyAnnotation).
    def test_deployment_annotations_are_copied_to_replicasets(self):
        ann = '{team: shop, lpk.dev/original-template: "{\\"spec\\":{}}"}'
        self.apply(deployment("web", self.ns, replicas=2, annotations=ann))
        self.rollout("deployment/web")
        [rs] = self.replicasets("web")
        a = rs["metadata"]["annotations"]
        self.assertEqual(a.get("team"), "shop")
        self.assertEqual(a.get("lpk.dev/original-template"), '{"spec":{}}')
        self.assertEqual(a.get("deployment.kubernetes.io/revision"), "1")
        self.assertEqual(a.get("deployment.kubernetes.io/desired-replicas"), "2")
        self.assertEqual(a.get("deployment.kubernetes.io/max-replicas"), "3")
        self.assertNotIn("kubectl.kubernetes.io/last-applied-configuration", a)
        # A later annotation reaches the current set on the next sync.
        self.k("annotate", "deployment/web", "extra=yes")
        self.k("wait", f"--timeout={TIMEOUT}s", "--for=jsonpath={.metadata.annotations.extra}=yes",
               "rs/" + rs["metadata"]["name"])
        # A new template: a second set with revision 2 and the same annotations.
        self.k("set", "image", "deployment/web", "app=nginx:2")
        self.rollout("deployment/web")
        old, new = self.replicasets("web")
        self.assertEqual(new["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "2")
        self.assertEqual(new["metadata"]["annotations"].get("lpk.dev/original-template"),
                         '{"spec":{}}')
        self.assertNotIn("kubectl.kubernetes.io/last-applied-configuration",
                         new["metadata"]["annotations"])
        self.assertEqual(old["spec"]["replicas"], 0)

    # A rollout that makes no progress for spec.progressDeadlineSeconds gets Progressing=False
    # reason ProgressDeadlineExceeded, which kubectl rollout status reports as a failure.
    def test_progress_deadline_exceeded(self):
        self.apply(deployment("stuck", self.ns, extra_spec="\n  progressDeadlineSeconds: 2",
                              pod_extra=GATED))
        r = self.rollout("deployment/stuck", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('deployment "stuck" exceeded its progress deadline', r.stderr)
        d = self.sim.get("-n", self.ns, "deployment/stuck")
        [p] = [c for c in d["status"]["conditions"] if c["type"] == "Progressing"]
        self.assertEqual((p["status"], p["reason"]), ("False", "ProgressDeadlineExceeded"))
        self.assertIn("has timed out progressing", p["message"])
        # The default deadline is 600 s, as the apiserver's defaulting sets it.
        self.apply(deployment("plain", self.ns))
        self.assertEqual(self.sim.get("-n", self.ns, "deployment/plain")["spec"]
                         ["progressDeadlineSeconds"], 600)
        # Once the pod gets ready the rollout completes and the condition says so.
        [pod] = self.pods("stuck")
        self.set_gate(pod["metadata"]["name"])
        self.rollout("deployment/stuck")
        d = self.sim.get("-n", self.ns, "deployment/stuck")
        [p] = [c for c in d["status"]["conditions"] if c["type"] == "Progressing"]
        self.assertEqual((p["status"], p["reason"]), ("True", "NewReplicaSetAvailable"))

    # POST pods/NAME/eviction deletes the pod as the apiserver does; its ReplicaSet replaces it.
    def test_eviction_subresource_deletes_the_pod(self):
        self.apply(deployment("ev", self.ns, replicas=2))
        self.rollout("deployment/ev")
        victim = self.pods("ev")[0]["metadata"]["name"]
        body = {"apiVersion": "policy/v1", "kind": "Eviction",
                "metadata": {"name": victim, "namespace": self.ns}}
        self.k("create", "--raw", f"/api/v1/namespaces/{self.ns}/pods/{victim}/eviction",
               "-f", "-", input=json.dumps(body))
        self.k("wait", "--for=delete", f"--timeout={TIMEOUT}s", "pod/" + victim)
        self.rollout("deployment/ev")
        names = [p["metadata"]["name"] for p in self.pods("ev")]
        self.assertEqual(len(names), 2)
        self.assertNotIn(victim, names)
        # An Eviction that names another pod is refused, as the registry refuses it.
        body["metadata"]["name"] = "other"
        r = self.k("create", "--raw", f"/api/v1/namespaces/{self.ns}/pods/{names[0]}/eviction",
                   "-f", "-", input=json.dumps(body), check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("name in URL does not match name in Eviction object", r.stderr)

    # A pod the kubelet evicted stays, phase Failed reason Evicted; controllers count only
    # active pods, so the ReplicaSet makes a replacement and the counts leave it out.
    def test_failed_evicted_pod_is_ignored_by_controllers(self):
        self.apply(deployment("fl", self.ns, replicas=2))
        self.apply(f"""
apiVersion: v1
kind: Service
metadata: {{name: fl, namespace: {self.ns}}}
spec: {{selector: {{app: fl}}, ports: [{{port: 80}}]}}
""")
        self.rollout("deployment/fl")
        victim = self.pods("fl")[0]["metadata"]["name"]
        status = {"status": {"phase": "Failed", "reason": "Evicted",
                             "message": "The node was low on resource: memory."}}
        self.k("patch", "pod", victim, "--subresource=status", "--type=merge", "-p",
               json.dumps(status))
        # Three pods: the Failed one and two active ones, both Running.
        phases = {}

        def three(line):
            name, phase = (line.split() + ["", ""])[:2]
            phases[name] = phase
            return len(phases) == 3 and list(phases.values()).count("Running") == 2
        self.sim.watch_until(["-n", self.ns, "pods", "-l", "app=fl"],
                             "{.metadata.name} {.status.phase}", three)
        self.assertEqual(phases[victim], "Failed")
        self.rollout("deployment/fl")
        [rs] = self.replicasets("fl")
        self.assertEqual(rs["status"]["replicas"], 2)
        d = self.sim.get("-n", self.ns, "deployment/fl")
        self.assertEqual((d["status"]["replicas"], d["status"]["availableReplicas"]), (2, 2))
        ep = self.sim.get("-n", self.ns, "endpoints/fl")
        ips = [a["ip"] for s in ep.get("subsets", []) for a in s.get("addresses", [])]
        self.assertEqual(len(ips), 2)
        got = self.sim.get("-n", self.ns, "pod/" + victim)
        self.assertEqual((got["status"]["phase"], got["status"]["reason"]), ("Failed", "Evicted"))

    def revisions(self, name):
        st = self.sim.get("-n", self.ns, "statefulset/" + name)["status"]
        return st.get("currentRevision"), st.get("updateRevision")

    def pod_revision(self, pod):
        return self.sim.get("-n", self.ns, "pod/" + pod)["metadata"]["labels"][
            "controller-revision-hash"]

    def wait_sts(self, name, template, want):
        return self.sim.watch_until(["-n", self.ns, "statefulset/" + name], template,
                                    lambda line: line == want)

    def wait_pod(self, name, template, want):
        """Until pod `name` prints `want`; a field selector, since the pod may not exist yet
        (get pod/NAME -w would end with NotFound)."""
        return self.sim.watch_until(["-n", self.ns, "pods", "--field-selector",
                                     "metadata.name=" + name], template,
                                    lambda line: line == want)

    def wait_generation_seen(self, name):
        gen = self.sim.get("-n", self.ns, "statefulset/" + name)["metadata"]["generation"]
        self.wait_sts(name, "{.status.observedGeneration}", str(gen))

    # OnDelete: a new template changes updateRevision only; a pod is made at the new revision
    # when someone deletes it.
    def test_statefulset_on_delete(self):
        self.apply(statefulset("od", self.ns, 2, "{type: OnDelete}"))
        self.wait_sts("od", "{.status.readyReplicas}", "2")
        cur, upd = self.revisions("od")
        self.assertEqual(cur, upd)
        self.assertEqual(self.pod_revision("od-1"), cur)
        self.k("set", "image", "statefulset/od", "app=nginx:2")
        self.wait_generation_seen("od")
        cur2, upd2 = self.revisions("od")
        self.assertEqual(cur2, cur)
        self.assertNotEqual(upd2, cur)
        self.assertTrue(upd2.startswith("od-"))
        st = self.sim.get("-n", self.ns, "statefulset/od")["status"]
        self.assertEqual(st.get("updatedReplicas", 0), 0)
        self.assertEqual([self.pod_revision(p) for p in ("od-0", "od-1")], [cur, cur])
        self.k("delete", "pod", "od-1")
        self.wait_pod("od-1", "{.metadata.labels.controller-revision-hash} {.status.phase}",
                      upd2 + " Running")
        self.assertEqual(self.pod_revision("od-0"), cur)
        self.wait_sts("od", "{.status.updatedReplicas}", "1")
        self.assertEqual(len(self.sim.get("-n", self.ns, "controllerrevisions")["items"]), 2)

    # RollingUpdate with a partition updates ordinals >= partition only; kubectl rollout
    # status reports the partitioned rollout done; partition 0 finishes it.
    def test_statefulset_partition(self):
        self.apply(statefulset("pt", self.ns, 3,
                               "{type: RollingUpdate, rollingUpdate: {partition: 2}}"))
        self.rollout("statefulset/pt")
        cur, _ = self.revisions("pt")
        self.k("set", "image", "statefulset/pt", "app=nginx:2")
        r = self.rollout("statefulset/pt")
        self.assertIn("partitioned roll out complete", r.stdout)
        cur2, upd = self.revisions("pt")
        self.assertEqual(cur2, cur)
        self.assertNotEqual(upd, cur)
        self.assertEqual([self.pod_revision(f"pt-{i}") for i in range(3)], [cur, cur, upd])
        self.k("patch", "statefulset/pt", "-p", '{"spec":{"updateStrategy":{"rollingUpdate":'
               '{"partition":0}}}}')
        self.rollout("statefulset/pt")
        self.wait_sts("pt", "{.status.currentRevision}", upd)
        self.assertEqual([self.pod_revision(f"pt-{i}") for i in range(3)], [upd] * 3)

    # OrderedReady: a pod that never gets ready blocks the next ordinal; once ready, the next
    # one is made.
    def test_statefulset_ordered_ready_blocks_on_an_unready_pod(self):
        self.apply(statefulset("or", self.ns, 3, "{type: RollingUpdate}", pod_extra=GATED))
        self.wait_pod("or-0", "{.status.phase}", "Running")
        self.wait_generation_seen("or")
        st = self.sim.get("-n", self.ns, "statefulset/or")["status"]
        self.assertEqual((st.get("replicas"), st.get("readyReplicas", 0)), (1, 0))
        self.assertEqual([p["metadata"]["name"] for p in self.pods("or")], ["or-0"])
        self.set_gate("or-0")
        self.wait_pod("or-1", "{.status.phase}", "Running")
        self.assertEqual(sorted(p["metadata"]["name"] for p in self.pods("or")),
                         ["or-0", "or-1"])
        self.set_gate("or-1")
        self.wait_pod("or-2", "{.status.phase}", "Running")


if __name__ == "__main__":
    e2e.run_tests(sys.argv[1:])

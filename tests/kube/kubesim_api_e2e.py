#!/usr/bin/python3
"""kubectl against lpk-kubesim's API: what a real apiserver answers kubectl auth can-i,
kubectl explain, kubectl logs, and the pods its admission mutates (the service-account token
volume, the IRSA-style hook). Each test uses a namespace of its own; kubesim listens on a
port the kernel picks. Usage: kubesim_api_e2e.py /path/to/lpk-kubesim [unittest args].
Exits 77 (ctest's SKIP_RETURN_CODE) when every test was skipped, with the reasons printed."""

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import lpk_e2e as e2e  # noqa: E402  (processes that must end cleanly, skips, exit codes)

KUBECTL = shutil.which("kubectl")
KUBESIM = sys.argv.pop(1) if __name__ == "__main__" and len(sys.argv) > 1 else None
TIMEOUT = 60
_names = itertools.count()


def unique(prefix):
    """A name no other test of this run (nor a leftover of another run) uses."""
    return f"{prefix}-{os.getpid()}-{next(_names)}"


class Kubesim:
    """One lpk-kubesim on a port the kernel picks, with its own state directory; stop() wants
    it to exit 0 on SIGTERM."""

    def __init__(self, *args):
        self.dir = tempfile.mkdtemp(prefix="kubesim-api-")
        self.proc = e2e.Proc([KUBESIM, "up", "--port", "0", "--state", self.dir, *args],
                             name="lpk-kubesim")
        try:
            m = self.proc.wait_line(r"serving https://127.0.0.1:(\d+) kubeconfig (\S+)",
                                    timeout=120)
        except AssertionError:
            self.stop()
            raise
        self.server = "https://127.0.0.1:" + m.group(1)
        self.kubeconfig = m.group(2)

    def kubectl(self, *args, check=True, input=None, token=None):
        """kubectl as the admin, or as the bearer of token (and nothing else)."""
        cache = os.path.join(self.dir, "kubectl-cache")
        if token is None:
            auth = ["--kubeconfig", self.kubeconfig]
        else:
            auth = ["--kubeconfig", os.devnull, "--server", self.server, "--token", token,
                    "--certificate-authority", os.path.join(self.dir, "ca.crt")]
        r = subprocess.run([KUBECTL, *auth, "--cache-dir", cache, *args], capture_output=True,
                           text=True, input=input, timeout=TIMEOUT)
        if check and r.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({r.returncode}): {r.stderr}"
                                 f"\nkubesim:\n{self.proc.describe()}")
        return r

    def apply(self, manifest):
        docs = manifest if isinstance(manifest, list) else [manifest]
        # JSON documents are YAML ones; the leading "---" makes kubectl read a YAML stream.
        self.kubectl("apply", "-f", "-", input="".join("---\n" + json.dumps(d) + "\n"
                                                      for d in docs))

    def get(self, *args):
        return json.loads(self.kubectl("get", "-o", "json", *args).stdout)

    def stop(self):
        try:
            return self.proc.stop(timeout=30)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def namespace(name):
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def service_account(ns, name, annotations=None):
    return {"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": ns, "annotations": annotations or {}}}


def pod(ns, name, command, account=None, restart="Always"):
    spec = {"restartPolicy": restart,
            "containers": [{"name": "main", "image": "busybox", "command": command}]}
    if account:
        spec["serviceAccountName"] = account
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
            "spec": spec}


def deployment(ns, name, replicas=1, account=None):
    spec = pod(ns, name, ["sleep", "inf"], account)["spec"]
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}}


def first_line_of_watch(sim, *args):
    """Starts `kubectl get --watch ARGS -o name` and returns the first line it prints: the
    first object that matches, whether it existed already or appears later."""
    cache = os.path.join(sim.dir, "kubectl-cache")
    watch = subprocess.Popen([KUBECTL, "--kubeconfig", sim.kubeconfig, "--cache-dir", cache,
                              "get", "--watch", "-o", "name", *args],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = watch.stdout.readline()
    finally:
        watch.kill()
        _, err = watch.communicate()
    if not line:
        raise AssertionError(f"kubectl get --watch {' '.join(args)} ended: {err}")
    return line.strip()


@unittest.skipIf(KUBECTL is None, "kubectl is not installed")
class Api(unittest.TestCase):
    """The API alone (--no-runtime: pods are reported running, no processes, no root)."""

    @classmethod
    def setUpClass(cls):
        cls.sim = Kubesim("--no-runtime")
        cls.addClassCleanup(cls.sim.stop)

    def setUp(self):
        self.ns = unique("api")
        self.sim.apply(namespace(self.ns))

    def token_of(self, account):
        self.sim.apply(service_account(self.ns, account))
        return self.sim.kubectl("-n", self.ns, "create", "token", account).stdout.strip()

    def test_auth_can_i_follows_rbac(self):
        self.assertEqual(self.sim.kubectl("auth", "can-i", "create", "pods").stdout.strip(),
                         "yes")
        token = self.token_of("robot")
        no = self.sim.kubectl("auth", "can-i", "get", "pods", "-n", self.ns, token=token,
                              check=False)
        self.assertEqual((no.returncode, no.stdout.strip()), (1, "no"), no.stderr)
        denied = self.sim.kubectl("get", "pods", "-n", self.ns, token=token, check=False)
        self.assertNotEqual(denied.returncode, 0)
        self.assertIn(f'Error from server (Forbidden): pods is forbidden: User '
                      f'"system:serviceaccount:{self.ns}:robot" cannot list resource "pods" in '
                      f'API group "" in the namespace "{self.ns}"', denied.stderr)
        self.sim.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                        "metadata": {"name": "robot-view", "namespace": self.ns},
                        "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                    "kind": "ClusterRole", "name": "view"},
                        "subjects": [{"kind": "ServiceAccount", "name": "robot",
                                      "namespace": self.ns}]})
        yes = self.sim.kubectl("auth", "can-i", "list", "pods", "-n", self.ns, token=token)
        self.assertEqual(yes.stdout.strip(), "yes")
        still_no = self.sim.kubectl("auth", "can-i", "delete", "pods", "-n", self.ns,
                                    token=token, check=False)
        self.assertEqual(still_no.stdout.strip(), "no")
        self.sim.kubectl("get", "pods", "-n", self.ns, token=token)

    def test_explain_deployment_spec_replicas(self):
        out = self.sim.kubectl("explain", "deployment.spec.replicas").stdout
        self.assertRegex(out, r"GROUP:\s+apps")
        self.assertRegex(out, r"KIND:\s+Deployment")
        self.assertIn("FIELD: replicas <integer>", out)
        self.assertIn("Number of desired pods", out)
        containers = self.sim.kubectl("explain", "pod.spec.containers").stdout
        self.assertIn("FIELD: containers <[]Container>", containers)

    def test_admission_adds_the_service_account_volume_to_the_pod_only(self):
        self.sim.apply({"apiVersion": "apps/v1", "kind": "Deployment",
                        "metadata": {"name": "web", "namespace": self.ns},
                        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                                 "template": {"metadata": {"labels": {"app": "web"}},
                                              "spec": pod(self.ns, "x", ["sleep", "inf"])["spec"]}}})
        self.sim.kubectl("-n", self.ns, "rollout", "status", "deployment/web",
                         f"--timeout={TIMEOUT}s")
        template = self.sim.get("-n", self.ns, "deployment/web")["spec"]["template"]["spec"]
        self.assertNotIn("volumes", template)
        self.assertNotIn("volumeMounts", template["containers"][0])
        pods = self.sim.get("-n", self.ns, "pods", "-l", "app=web")["items"]
        self.assertEqual(len(pods), 1)
        spec = pods[0]["spec"]
        self.assertEqual(spec["serviceAccountName"], "default")
        volume = spec["volumes"][0]
        self.assertRegex(volume["name"], r"^kube-api-access-[a-z0-9]{5}$")
        sources = volume["projected"]["sources"]
        self.assertEqual(sources[0], {"serviceAccountToken": {"expirationSeconds": 3607,
                                                              "path": "token"}})
        self.assertEqual(sources[1]["configMap"]["name"], "kube-root-ca.crt")
        self.assertEqual(sources[2]["downwardAPI"]["items"][0]["fieldRef"]["fieldPath"],
                         "metadata.namespace")
        self.assertEqual(spec["containers"][0]["volumeMounts"],
                         [{"name": volume["name"], "readOnly": True,
                           "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}])
        # automountServiceAccountToken: false on the pod leaves it alone.
        bare = pod(self.ns, "bare", ["sleep", "inf"])
        bare["spec"]["automountServiceAccountToken"] = False
        self.sim.apply(bare)
        self.assertNotIn("volumes", self.sim.get("-n", self.ns, "pod/bare")["spec"])

    def test_pod_of_a_missing_service_account_is_refused(self):
        r = self.sim.kubectl("apply", "-f", "-", check=False,
                             input=json.dumps(pod(self.ns, "p", ["sleep", "inf"], "ghost")))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(f'error looking up service account {self.ns}/ghost: serviceaccount '
                      f'"ghost" not found', r.stderr)

    def test_irsa_hook_adds_the_role_variables_and_token_volume(self):
        arn = "arn:aws:iam::111122223333:role/lpk-test"
        self.sim.apply([service_account(self.ns, "s3-reader",
                                        {"eks.amazonaws.com/role-arn": arn}),
                        service_account(self.ns, "plain")])
        self.sim.apply([pod(self.ns, "with-role", ["sleep", "inf"], "s3-reader"),
                        pod(self.ns, "without", ["sleep", "inf"], "plain")])
        spec = self.sim.get("-n", self.ns, "pod/with-role")["spec"]
        env = {e["name"]: e["value"] for e in spec["containers"][0]["env"]}
        token_dir = "/var/run/secrets/eks.amazonaws.com/serviceaccount"
        self.assertEqual(env["AWS_ROLE_ARN"], arn)
        self.assertEqual(env["AWS_WEB_IDENTITY_TOKEN_FILE"], token_dir + "/token")
        volumes = {v["name"]: v for v in spec["volumes"]}
        self.assertEqual(volumes["aws-iam-token"]["projected"]["sources"],
                         [{"serviceAccountToken": {"audience": "sts.amazonaws.com",
                                                   "expirationSeconds": 86400,
                                                   "path": "token"}}])
        mounts = {m["mountPath"]: m["name"] for m in spec["containers"][0]["volumeMounts"]}
        self.assertEqual(mounts[token_dir], "aws-iam-token")
        plain = self.sim.get("-n", self.ns, "pod/without")["spec"]
        self.assertNotIn("env", plain["containers"][0])
        self.assertEqual([v["name"] for v in plain["volumes"] if v["name"] == "aws-iam-token"],
                         [])

    def test_failed_create_is_an_event_that_describe_shows(self):
        self.sim.apply(deployment(self.ns, "web", account="ghost"))
        name = first_line_of_watch(self.sim, "events", "-n", self.ns, "--field-selector",
                                   "reason=FailedCreate")
        self.assertRegex(name, r"^event/web-[a-z0-9]+\.[0-9a-f]+$")
        event = self.sim.get("-n", self.ns, name)
        self.assertEqual((event["type"], event["source"]["component"]),
                         ("Warning", "replicaset-controller"))
        self.assertEqual(event["involvedObject"]["kind"], "ReplicaSet")
        self.assertRegex(event["message"],
                         r'^Error creating: pods "web-[a-z0-9]+-[a-z0-9]*" is forbidden: error '
                         f'looking up service account {self.ns}/ghost: serviceaccount "ghost" '
                         r'not found$')
        table = self.sim.kubectl("get", "events", "-n", self.ns).stdout
        self.assertRegex(table, r"LAST SEEN\s+TYPE\s+REASON\s+OBJECT\s+MESSAGE")
        self.assertRegex(table, r"Warning\s+FailedCreate\s+replicaset/web-")
        described = self.sim.kubectl("describe", "replicaset", "-n", self.ns, "-l",
                                     "app=web").stdout
        self.assertRegex(described, r"Warning\s+FailedCreate\s+.*replicaset-controller\s+"
                                    r"Error creating: pods")

    def test_scheduled_event_of_a_pod(self):
        self.sim.apply(pod(self.ns, "p", ["sleep", "inf"]))
        self.sim.kubectl("-n", self.ns, "wait", "--for=condition=Ready", "pod/p",
                         f"--timeout={TIMEOUT}s")
        described = self.sim.kubectl("-n", self.ns, "describe", "pod", "p").stdout
        self.assertRegex(described, r"Normal\s+Scheduled\s+.*default-scheduler\s+"
                                    f"Successfully assigned {self.ns}/p to kubesim-node")

    def test_kubectl_scale_through_the_scale_subresource(self):
        self.sim.apply(deployment(self.ns, "web"))
        self.sim.kubectl("-n", self.ns, "scale", "deployment/web", "--replicas=3")
        scale = json.loads(self.sim.kubectl(
            "get", "--raw", f"/apis/apps/v1/namespaces/{self.ns}/deployments/web/scale").stdout)
        self.assertEqual((scale["kind"], scale["apiVersion"]), ("Scale", "autoscaling/v1"))
        self.assertEqual(scale["spec"], {"replicas": 3})
        self.assertEqual(scale["status"]["selector"], "app=web")
        self.sim.kubectl("-n", self.ns, "rollout", "status", "deployment/web",
                         f"--timeout={TIMEOUT}s")
        self.assertEqual(len(self.sim.get("-n", self.ns, "pods", "-l", "app=web")["items"]), 3)
        # An autoscaler's write: a patch of the subresource alone.
        self.sim.kubectl("-n", self.ns, "patch", "deployment/web", "--subresource=scale",
                         "--type=merge", "-p", '{"spec":{"replicas":1}}')
        self.assertEqual(self.sim.get("-n", self.ns, "deployment/web")["spec"]["replicas"], 1)
        stale = self.sim.kubectl("-n", self.ns, "scale", "deployment/web", "--replicas=2",
                                 "--current-replicas=3", check=False)
        self.assertNotEqual(stale.returncode, 0)
        self.assertIn("Expected replicas to be 3, was 1", stale.stderr)
        missing = self.sim.kubectl("-n", self.ns, "scale", "deployment/nope", "--replicas=2",
                                   check=False)
        self.assertIn('deployments.apps "nope" not found', missing.stderr)

    def test_kubectl_scale_statefulset_and_replicaset(self):
        sts = deployment(self.ns, "db")
        sts["kind"] = "StatefulSet"
        sts["spec"]["serviceName"] = "db"
        self.sim.apply(sts)
        self.sim.kubectl("-n", self.ns, "scale", "statefulset/db", "--replicas=2")
        self.assertEqual(self.sim.get("-n", self.ns, "statefulset/db")["spec"]["replicas"], 2)
        rs = deployment(self.ns, "bare")
        rs["kind"] = "ReplicaSet"
        self.sim.apply(rs)
        self.sim.kubectl("-n", self.ns, "scale", "replicaset/bare", "--replicas=0")
        self.assertEqual(self.sim.get("-n", self.ns, "replicaset/bare")["spec"]["replicas"], 0)


def root_reason():
    if os.geteuid() != 0:
        return "pods need root for network and mount namespaces"
    return None


@unittest.skipIf(KUBECTL is None or root_reason(), root_reason() or "kubectl is not installed")
class RealPods(unittest.TestCase):
    """Pods that are processes: their output, their mounted token."""

    @classmethod
    def setUpClass(cls):
        cls.sim = Kubesim()
        cls.addClassCleanup(cls.sim.stop)

    def setUp(self):
        self.ns = unique("pods")
        self.sim.apply(namespace(self.ns))

    def test_logs_of_a_finished_pod(self):
        script = "echo first line; echo to stderr >&2; echo last line"
        self.sim.apply(pod(self.ns, "talker", ["sh", "-c", script], restart="Never"))
        self.sim.kubectl("-n", self.ns, "wait", "--for=jsonpath={.status.phase}=Succeeded",
                         "pod/talker", f"--timeout={TIMEOUT}s")
        logs = self.sim.kubectl("-n", self.ns, "logs", "talker").stdout
        # stdout and stderr are two pipes read apart, as containerd reads them: each keeps its
        # own order, but there is none between them (the stderr line may come first when the
        # machine is busy).
        lines = logs.splitlines()
        self.assertEqual([l for l in lines if l != "to stderr"], ["first line", "last line"])
        self.assertEqual(sorted(lines), ["first line", "last line", "to stderr"])
        tail = self.sim.kubectl("-n", self.ns, "logs", "talker", "--tail=1").stdout
        self.assertEqual(tail, logs.splitlines(keepends=True)[-1])
        stamped = self.sim.kubectl("-n", self.ns, "logs", "talker", "--timestamps").stdout
        first = [l for l in stamped.splitlines() if l.endswith(" first line")]
        self.assertEqual(len(first), 1, stamped)
        self.assertRegex(first[0], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z first line$")
        wrong = self.sim.kubectl("-n", self.ns, "logs", "talker", "-c", "nope", check=False)
        self.assertNotEqual(wrong.returncode, 0)
        self.assertIn("container nope is not valid for pod talker", wrong.stderr)

    def test_logs_follow_streams_until_the_container_ends(self):
        self.sim.apply(pod(self.ns, "long", ["sh", "-c", "echo one; exec sleep 3600"]))
        self.sim.kubectl("-n", self.ns, "wait", "--for=condition=Ready", "pod/long",
                         f"--timeout={TIMEOUT}s")
        cache = os.path.join(self.sim.dir, "kubectl-cache")
        follow = subprocess.Popen([KUBECTL, "--kubeconfig", self.sim.kubeconfig, "--cache-dir",
                                   cache, "-n", self.ns, "logs", "-f", "long"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            self.assertEqual(follow.stdout.readline(), "one\n")
            self.sim.kubectl("-n", self.ns, "delete", "pod", "long", "--wait=false")
            out, err = follow.communicate(timeout=TIMEOUT)
        finally:
            if follow.poll() is None:
                follow.kill()
                follow.wait()
        self.assertEqual((follow.returncode, out), (0, ""), err)

    def test_mounted_token_authenticates_as_the_service_account(self):
        self.sim.apply(pod(self.ns, "reader", ["sh", "-c",
                                               "cat /var/run/secrets/kubernetes.io/"
                                               "serviceaccount/namespace; echo; "
                                               "cat /var/run/secrets/kubernetes.io/"
                                               "serviceaccount/token"], restart="Never"))
        self.sim.kubectl("-n", self.ns, "wait", "--for=jsonpath={.status.phase}=Succeeded",
                         "pod/reader", f"--timeout={TIMEOUT}s")
        ns, token = self.sim.kubectl("-n", self.ns, "logs", "reader").stdout.split()
        self.assertEqual(ns, self.ns)
        who = self.sim.kubectl("auth", "can-i", "list", "pods", "-n", self.ns, token=token,
                               check=False)
        self.assertEqual(who.stdout.strip(), "no")
        self.assertEqual(who.stderr, "")


    def test_kubelet_events_started_and_killing(self):
        self.sim.apply(pod(self.ns, "ev", ["sleep", "inf"]))
        self.sim.kubectl("-n", self.ns, "wait", "--for=condition=Ready", "pod/ev",
                         f"--timeout={TIMEOUT}s")
        self.sim.kubectl("-n", self.ns, "delete", "pod", "ev", f"--timeout={TIMEOUT}s")
        events = self.sim.get("events", "-n", self.ns, "--field-selector",
                              "involvedObject.name=ev")["items"]
        reasons = [e["reason"] for e in sorted(events, key=lambda e: e["metadata"]["name"])]
        self.assertEqual(reasons, ["Scheduled", "Pulled", "Created", "Started", "Killing"])
        killing = events[[e["reason"] for e in events].index("Killing")]
        self.assertEqual(killing["involvedObject"]["fieldPath"], "spec.containers{main}")
        self.assertEqual(killing["message"], "Stopping container main")


if __name__ == "__main__":
    e2e.run_tests(sys.argv[1:])

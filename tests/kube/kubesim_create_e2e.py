#!/usr/bin/python3
"""kubectl's imperative `create` subcommands against lpk-kubesim, as a tutorial runs them: kubectl
sends their bodies as protobuf (application/vnd.kubernetes.protobuf), and each must create its
object with the fields its flags set, as `kubectl get -o json` shows them. ConfigMaps from
literals, files and env files; Secrets (generic with bytes that are not UTF-8, docker-registry,
tls); namespaces, service accounts and their tokens; Deployments; Services (ClusterIP, headless,
NodePort, LoadBalancer, ExternalName); Roles, ClusterRoles and their bindings, which then
authorise. Most tests need no pods (--no-runtime); the Deployment's pods run for real with root.
Usage: kubesim_create_e2e.py /path/to/lpk-kubesim [unittest args]."""

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kubesim_api_e2e as api  # noqa: E402  (its Kubesim, names and helpers)

if __name__ == "__main__" and len(sys.argv) > 1:
    api.KUBESIM = sys.argv.pop(1)

e2e, TIMEOUT = api.e2e, api.TIMEOUT
NOT_UTF8 = bytes([0xff, 0xfe, 0x00, 0x01, 0x80, 0xc3, 0x28, 0x0a])


@unittest.skipIf(api.KUBECTL is None, "kubectl is not installed")
class Create(unittest.TestCase):
    """Objects only: kubesim --no-runtime (no root)."""

    @classmethod
    def setUpClass(cls):
        cls.sim = api.Kubesim("--no-runtime")
        cls.addClassCleanup(cls.sim.stop)

    def setUp(self):
        self.ns = api.unique("create")
        self.sim.kubectl("create", "namespace", self.ns)
        self.files = tempfile.mkdtemp(prefix="kubectl-create-")
        self.addCleanup(shutil.rmtree, self.files, True)

    def create(self, *args):
        self.sim.kubectl("-n", self.ns, "create", *args)

    def get(self, *args):
        return self.sim.get("-n", self.ns, *args)

    def file(self, name, content):
        path = os.path.join(self.files, name)
        with open(path, "wb" if isinstance(content, bytes) else "w") as f:
            f.write(content)
        return path

    def test_namespace(self):
        got = self.sim.get("namespace", self.ns)
        self.assertEqual(got["metadata"]["name"], self.ns)
        self.assertEqual(got["status"]["phase"], "Active")

    def test_configmap_from_literal_file_and_env_file(self):
        self.create("configmap", "lit", "--from-literal=a=b", "--from-literal=greeting=hi there")
        self.assertEqual(self.get("configmap", "lit")["data"], {"a": "b", "greeting": "hi there"})
        text = self.file("app.properties", "color=blue\nsize: 3\n")
        blob = self.file("blob.bin", NOT_UTF8)
        self.create("configmap", "files", f"--from-file={text}", f"--from-file=raw={blob}")
        got = self.get("configmap", "files")
        self.assertEqual(got["data"], {"app.properties": "color=blue\nsize: 3\n"})
        self.assertEqual(base64.b64decode(got["binaryData"]["raw"]), NOT_UTF8)
        env = self.file("app.env", "# settings\nMODE=prod\nGREETING=hello world\n")
        self.create("configmap", "env", f"--from-env-file={env}")
        self.assertEqual(self.get("configmap", "env")["data"],
                         {"MODE": "prod", "GREETING": "hello world"})

    def test_secret_generic_bytes_round_trip(self):
        every_byte = bytes(range(256)) + NOT_UTF8
        blob = self.file("key.bin", every_byte)
        self.create("secret", "generic", "gen", "--from-literal=user=admin",
                    f"--from-file=key={blob}", "--type=example.com/custom")
        got = self.get("secret", "gen")
        self.assertEqual(got["type"], "example.com/custom")
        self.assertEqual(base64.b64decode(got["data"]["user"]), b"admin")
        self.assertEqual(base64.b64decode(got["data"]["key"]), every_byte)
        env = self.file("db.env", "PASSWORD=s3cr3t\n")
        self.create("secret", "generic", "env", f"--from-env-file={env}")
        got = self.get("secret", "env")
        self.assertEqual(got["type"], "Opaque")
        self.assertEqual(base64.b64decode(got["data"]["PASSWORD"]), b"s3cr3t")

    def test_secret_docker_registry(self):
        self.create("secret", "docker-registry", "reg", "--docker-server=registry.example",
                    "--docker-username=dev", "--docker-password=pw",
                    "--docker-email=dev@example.com")
        got = self.get("secret", "reg")
        self.assertEqual(got["type"], "kubernetes.io/dockerconfigjson")
        config = json.loads(base64.b64decode(got["data"][".dockerconfigjson"]))
        auth = config["auths"]["registry.example"]
        self.assertEqual((auth["username"], auth["password"], auth["email"]),
                         ("dev", "pw", "dev@example.com"))
        self.assertEqual(base64.b64decode(auth["auth"]), b"dev:pw")

    @unittest.skipIf(shutil.which("openssl") is None, "openssl is not installed")
    def test_secret_tls(self):
        key, cert = os.path.join(self.files, "tls.key"), os.path.join(self.files, "tls.crt")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                        "/CN=web.example", "-keyout", key, "-out", cert],
                       check=True, capture_output=True)
        self.create("secret", "tls", "web-tls", f"--cert={cert}", f"--key={key}")
        got = self.get("secret", "web-tls")
        self.assertEqual(got["type"], "kubernetes.io/tls")
        for name, path in (("tls.crt", cert), ("tls.key", key)):
            with open(path, "rb") as f:
                self.assertEqual(base64.b64decode(got["data"][name]), f.read())

    def token(self, account):
        return self.sim.kubectl("-n", self.ns, "create", "token", account).stdout.strip()

    def test_serviceaccount_and_its_token(self):
        self.create("serviceaccount", "builder")
        self.assertEqual(self.get("serviceaccount", "builder")["metadata"]["name"], "builder")
        denied = self.sim.kubectl("-n", self.ns, "get", "pods", token=self.token("builder"),
                                  check=False)
        self.assertIn(f'User "system:serviceaccount:{self.ns}:builder" cannot list', denied.stderr)

    def test_deployment_with_replicas_and_port(self):
        self.create("deployment", "web", "--image=nginx", "--replicas", "2", "--port", "80")
        spec = self.get("deployment", "web")["spec"]
        self.assertEqual(spec["replicas"], 2)
        self.assertEqual(spec["selector"], {"matchLabels": {"app": "web"}})
        container = spec["template"]["spec"]["containers"][0]
        self.assertEqual((container["name"], container["image"]), ("nginx", "nginx"))
        self.assertEqual(container["ports"], [{"containerPort": 80, "protocol": "TCP"}])
        self.sim.kubectl("-n", self.ns, "rollout", "status", "deployment/web",
                         f"--timeout={TIMEOUT}s")
        self.create("deployment", "cmd", "--image=busybox", "--", "sleep", "inf")
        container = self.get("deployment", "cmd")["spec"]["template"]["spec"]["containers"][0]
        self.assertEqual(container["command"], ["sleep", "inf"])

    def test_services(self):
        self.create("service", "clusterip", "api", "--tcp=80:8080", "--tcp=443")
        spec = self.get("service", "api")["spec"]
        self.assertEqual(spec["type"], "ClusterIP")
        self.assertEqual([(p["name"], p["port"], p["targetPort"]) for p in spec["ports"]],
                         [("80-8080", 80, 8080), ("443", 443, 443)])
        self.assertNotIn(spec["clusterIP"], ("", "None"))
        self.assertEqual(spec["selector"], {"app": "api"})
        self.create("service", "clusterip", "headless", "--clusterip=None")
        self.assertEqual(self.get("service", "headless")["spec"]["clusterIP"], "None")
        self.create("service", "nodeport", "np", "--tcp=80:8080", "--node-port=30080")
        spec = self.get("service", "np")["spec"]
        self.assertEqual(spec["type"], "NodePort")
        self.assertEqual((spec["ports"][0]["targetPort"], spec["ports"][0]["nodePort"]),
                         (8080, 30080))
        self.create("service", "loadbalancer", "lb", "--tcp=80:http")
        spec = self.get("service", "lb")["spec"]
        self.assertEqual((spec["type"], spec["ports"][0]["targetPort"]), ("LoadBalancer", "http"))
        self.create("service", "externalname", "db", "--external-name=db.example.com")
        spec = self.get("service", "db")["spec"]
        self.assertEqual((spec["type"], spec["externalName"]), ("ExternalName", "db.example.com"))

    def can_i(self, token, *args):
        return self.sim.kubectl("auth", "can-i", *args, check=False, token=token).stdout.strip()

    def test_role_and_rolebinding_authorise(self):
        self.create("serviceaccount", "reader")
        self.create("role", "pod-reader", "--verb=get", "--verb=list", "--resource=pods",
                    "--resource=deployments.apps", "--resource-name=web")
        rules = self.get("role", "pod-reader")["rules"]
        self.assertEqual(rules, [
            {"apiGroups": [""], "resources": ["pods"], "resourceNames": ["web"],
             "verbs": ["get", "list"]},
            {"apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": ["web"],
             "verbs": ["get", "list"]}])
        self.create("rolebinding", "read-pods", "--role=pod-reader", "--user=alice",
                    "--group=devs", f"--serviceaccount={self.ns}:reader")
        got = self.get("rolebinding", "read-pods")
        self.assertEqual(got["roleRef"], {"apiGroup": "rbac.authorization.k8s.io",
                                          "kind": "Role", "name": "pod-reader"})
        self.assertEqual([(s["kind"], s["name"]) for s in got["subjects"]],
                         [("User", "alice"), ("Group", "devs"), ("ServiceAccount", "reader")])
        self.assertEqual(got["subjects"][2]["namespace"], self.ns)
        token = self.token("reader")
        self.assertEqual(self.can_i(token, "get", "pods/web", "-n", self.ns), "yes")
        self.assertEqual(self.can_i(token, "get", "pods/other", "-n", self.ns), "no")
        self.assertEqual(self.can_i(token, "delete", "pods/web", "-n", self.ns), "no")

    def test_clusterrole_and_clusterrolebinding_authorise(self):
        role, user = api.unique("ns-reader"), api.unique("bob")
        self.create("serviceaccount", "lister")
        token = self.token("lister")
        self.sim.kubectl("create", "clusterrole", role, "--verb=get", "--resource=namespaces",
                         "--non-resource-url=/healthz")
        rules = self.sim.get("clusterrole", role)["rules"]
        self.assertEqual(rules, [
            {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]},
            {"nonResourceURLs": ["/healthz"], "verbs": ["get"]}])
        self.assertEqual(self.can_i(token, "get", "namespaces"), "no")
        binding = api.unique("ns-readers")
        self.sim.kubectl("create", "clusterrolebinding", binding, f"--clusterrole={role}",
                         f"--user={user}", f"--serviceaccount={self.ns}:lister")
        got = self.sim.get("clusterrolebinding", binding)
        self.assertEqual(got["roleRef"]["kind"], "ClusterRole")
        self.assertEqual([(s["kind"], s["name"]) for s in got["subjects"]],
                         [("User", user), ("ServiceAccount", "lister")])
        self.assertEqual(self.can_i(token, "get", "namespaces"), "yes")
        self.assertEqual(self.can_i(token, "delete", "namespaces"), "no")
        aggregated = api.unique("aggregated")
        self.sim.kubectl("create", "clusterrole", aggregated,
                         "--aggregation-rule=rbac.example.com/aggregate=true")
        got = self.sim.get("clusterrole", aggregated)
        self.assertEqual(got["aggregationRule"]["clusterRoleSelectors"],
                         [{"matchLabels": {"rbac.example.com/aggregate": "true"}}])
        for name in (binding, role, aggregated):
            kind = "clusterrolebinding" if name == binding else "clusterrole"
            self.sim.kubectl("delete", kind, name)


@unittest.skipIf(api.KUBECTL is None, "kubectl is not installed")
class CreateWithPods(unittest.TestCase):
    """`kubectl create deployment` runs its pods for real (network namespaces: root)."""

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root: kubesim runs pods in network namespaces")
        if shutil.which("nginx") is None:
            raise unittest.SkipTest("nginx is not installed (Debian package nginx)")
        cls.sim = api.Kubesim()
        cls.addClassCleanup(cls.sim.stop)

    def test_deployment_becomes_two_ready_pods(self):
        ns = api.unique("create-pods")
        self.sim.kubectl("create", "namespace", ns)
        self.sim.kubectl("-n", ns, "create", "deployment", "web", "--image=nginx",
                         "--replicas", "2", "--port", "80")
        self.sim.kubectl("-n", ns, "rollout", "status", "deployment/web",
                         f"--timeout={TIMEOUT}s")
        got = self.sim.get("-n", ns, "deployment", "web")
        self.assertEqual(got["status"]["readyReplicas"], 2, got["status"])
        pods = self.sim.get("-n", ns, "pods", "-l", "app=web")["items"]
        self.assertEqual(len(pods), 2)
        for p in pods:
            self.assertEqual(p["status"]["phase"], "Running")
            self.assertTrue(all(c["ready"] for c in p["status"]["containerStatuses"]), p)
        self.sim.kubectl("delete", "namespace", ns, "--wait=false")


if __name__ == "__main__":
    if not api.KUBESIM:
        e2e.skip_all("usage: kubesim_create_e2e.py /path/to/lpk-kubesim")
    e2e.run_tests(sys.argv[1:])

#!/usr/bin/python3
"""kubesim Services as a real cluster treats them (issue 14: lpk points a Service's selector at
its router's pods and back). Real servers in pods (nginx, a python3-grpcio server), clients in a
client pod's network namespace, kubectl and curl against one kubesim:
- a selector changed by patch, apply, replace or a PUT is reflected at once in Endpoints and
  EndpointSlices; new connections to the ClusterIP go only to the new selector's ready pods, an
  established keep-alive connection keeps flowing, a selector matching nothing refuses new
  connections;
- a stale resourceVersion in a PUT or a patch is 409 Conflict; annotations set by patch stay;
- HTTP/2 through the ClusterIP: curl --http2-prior-knowledge, many streams on one connection,
  gRPC calls, a long bidirectional call that outlives selector changes;
- a named targetPort is resolved per pod; a pod without that port name is no endpoint.
Usage: e2e_services.py /path/to/lpk-kubesim [unittest args]
Exits 77 (ctest's SKIP_RETURN_CODE) when every test was skipped; each skip is printed."""

import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
sys.path.insert(0, HERE)
import lpk_e2e as e2e  # noqa: E402
import e2e_kubesim  # noqa: E402  (Kubesim: one instance with its own state and port)

if __name__ == "__main__" and len(sys.argv) > 1:
    e2e_kubesim.KUBESIM = sys.argv.pop(1)
PYTHON = "/usr/bin/python3"  # Debian's, with python3-grpcio
GRPC_ECHO = os.path.join(HERE, "grpc_echo.py")
NS = "svc"


def skip_reason():
    if os.geteuid() != 0:
        return "pods need root for network and mount namespaces"
    for tool in ("kubectl", "nginx", "curl", "ip", "h2load"):
        if shutil.which(tool) is None:
            return f"{tool} is needed (h2load: Debian's nghttp2-client)"
    if subprocess.run([PYTHON, "-c", "import grpc"], capture_output=True).returncode != 0:
        return "python3-grpcio is needed (Debian package) for the gRPC server and client"
    if "HTTP2" not in subprocess.run(["curl", "-V"], capture_output=True, text=True).stdout:
        return "curl without HTTP/2"
    return None


# Every nginx pod answers with the address it was reached on: its pod IP names the pod.
def nginx_conf(port):
    return (f"server {{\n  listen {port};\n  listen {port + 1} http2;\n"
            "  keepalive_timeout 300s;\n  keepalive_requests 1000000;\n"
            "  location / { return 200 \"$server_addr\\n\"; }\n}\n")


def pod(name, labels, container, volumes=()):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NS, "labels": labels},
            "spec": {"terminationGracePeriodSeconds": 1, "containers": [container],
                     "volumes": list(volumes)}}


def nginx_pod(name, labels, conf, ports, probe="http"):
    c = {"name": "nginx", "image": "nginx",
         "ports": [{"name": n, "containerPort": p} for n, p in ports],
         "readinessProbe": {"tcpSocket": {"port": probe}, "periodSeconds": 1},
         "volumeMounts": [{"name": "conf", "mountPath": "/etc/nginx/conf.d"}]}
    return pod(name, labels, c, [{"name": "conf", "configMap": {"name": conf}}])


# Answers each UDP datagram on 9000 with "<pod name> <datagram>"; listens on TCP 9001 once the
# UDP socket is bound, for the readiness probe.
UDP_WHO = """import os, socket
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("0.0.0.0", 9000))
t = socket.socket()
t.bind(("0.0.0.0", 9001))
t.listen()
while True:
    data, peer = u.recvfrom(65536)
    u.sendto(os.environ["HOSTNAME"].encode() + b" " + data, peer)
"""


def grpc_pod(name, color):
    """A gRPC server (grpc_echo.py) and a UDP one, both answering with the pod's name."""
    c = {"name": "echo", "image": "busybox", "command": [PYTHON, "/app/grpc_echo.py", "serve",
                                                         "9090"],
         "ports": [{"name": "grpc", "containerPort": 9090}],
         "readinessProbe": {"tcpSocket": {"port": "grpc"}, "periodSeconds": 1},
         "volumeMounts": [{"name": "app", "mountPath": "/app"}]}
    p = pod(name, {"app": "grpc", "color": color}, c,
            [{"name": "app", "configMap": {"name": "grpc-echo"}}])
    p["spec"]["containers"].append(
        {"name": "udp", "image": "busybox", "command": [PYTHON, "-c", UDP_WHO],
         "ports": [{"name": "udp", "containerPort": 9000, "protocol": "UDP"}],
         "readinessProbe": {"tcpSocket": {"port": 9001}, "periodSeconds": 1}})
    return p


def service(name, selector, ports):
    """ports: (name, port, targetPort[, protocol])."""
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": NS},
            "spec": {"selector": selector,
                     "ports": [{"name": p[0], "port": p[1], "targetPort": p[2],
                                "protocol": p[3] if len(p) > 3 else "TCP"} for p in ports]}}


WEB_PORTS = [("http", 80, "http"), ("h2c", 81, "h2c")]
READY = ["blue-1", "blue-2", "green-1", "alt", "noname", "grpc-a", "grpc-b", "client"]


def manifest():
    with open(GRPC_ECHO) as f:
        echo = f.read()
    cm = lambda name, data: {"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": {"name": name, "namespace": NS}, "data": data}
    web = [("http", 8080), ("h2c", 8081)]
    items = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
        cm("web-conf", {"default.conf": nginx_conf(8080)}),
        cm("alt-conf", {"default.conf": nginx_conf(8090)}),
        cm("grpc-echo", {"grpc_echo.py": echo}),
        nginx_pod("blue-1", {"color": "blue", "tier": "named"}, "web-conf", web),
        nginx_pod("blue-2", {"color": "blue"}, "web-conf", web),
        nginx_pod("green-1", {"color": "green"}, "web-conf", web),
        # Selected with green-1 but never ready (its probe's port is closed): no endpoint.
        nginx_pod("green-unready", {"color": "green"}, "web-conf", web + [("closed", 9999)],
                  probe="closed"),
        # Service "named": the same port name on another number, and a pod without the name.
        nginx_pod("alt", {"tier": "named"}, "alt-conf", [("http", 8090), ("h2c", 8091)]),
        nginx_pod("noname", {"tier": "named"}, "web-conf", [("web", 8080), ("other", 8081)],
                  probe="web"),
        grpc_pod("grpc-a", "a"),
        grpc_pod("grpc-b", "b"),
        pod("client", {}, {"name": "c", "image": "busybox", "command": ["sleep", "3600"]}),
        service("web", {"color": "blue"}, WEB_PORTS),
        service("named", {"tier": "named"}, [("http", 80, "http")]),
        service("grpc", {"app": "grpc", "color": "a"},
                [("grpc", 9090, "grpc"), ("udp", 9000, "udp", "UDP")]),
    ]
    return "\n".join(json.dumps(i) for i in items)  # a stream of JSON objects


class KeepAlive:
    """One HTTP/1.1 connection from the client pod, reused for every request (never reopened:
    auto_open is off, so a closed connection fails the request)."""

    def __init__(self, netns, addr):
        self.conn = http.client.HTTPConnection(*addr, timeout=10 * e2e.SLACK)
        self.conn.sock = e2e.connect(addr, netns=netns)
        self.conn.auto_open = 0

    def get(self):
        self.conn.request("GET", "/")
        r = self.conn.getresponse()
        body = r.read().decode().strip()
        if r.status != 200 or r.will_close:
            raise AssertionError(f"keep-alive answer {r.status} {body!r} will_close={r.will_close}")
        return body

    def close(self):
        self.conn.close()


@unittest.skipIf(skip_reason(), skip_reason() or "")
class Services(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sim = e2e_kubesim.Kubesim()
        cls.addClassCleanup(cls.sim.stop)
        cls.sim.kubectl("apply", "-f", "-", input=manifest())
        cls.sim.kubectl("-n", NS, "wait", "--for=condition=Ready", "--timeout=60s",
                        *["pod/" + p for p in READY])
        cls.sim.kubectl("-n", NS, "wait", "--for=jsonpath={.status.phase}=Running",
                        "pod/green-unready", "--timeout=60s")
        pods = cls.get("pods")["items"]
        cls.pod_of = {p["status"]["podIP"]: p["metadata"]["name"] for p in pods}
        cls.vip = {s["metadata"]["name"]: s["spec"]["clusterIP"] for s in cls.get("svc")["items"]}
        client = next(p for p in pods if p["metadata"]["name"] == "client")
        pid = client["status"]["containerStatuses"][0]["containerID"].split("://")[1]
        name = subprocess.run(["ip", "netns", "identify", pid], capture_output=True, text=True,
                              check=True).stdout.strip()
        cls.client = e2e.Netns(name)

    @classmethod
    def get(cls, *what):
        return json.loads(cls.sim.kubectl("-n", NS, "get", *what, "-o", "json").stdout)

    # ------------------------------------------------------------------ helpers

    def answer(self, svc="web", port=80):
        """The pod that answers a new connection to the ClusterIP (from the client pod)."""
        with e2e.connect((self.vip[svc], port), netns=self.client) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n")
            data = e2e.recv_all(s)
        self.assertTrue(data.startswith(b"HTTP/1.1 200"), data)
        return self.pod_of[data.split(b"\r\n\r\n", 1)[1].decode().strip()]

    def answers(self, n, svc="web", port=80):
        return {self.answer(svc, port) for _ in range(n)}

    def endpoint_pods(self, svc):
        """Endpoints: {ready pod names}, {not ready pod names}."""
        ep = self.get("endpoints", svc)
        names = lambda key: {a["targetRef"]["name"] for s in ep.get("subsets") or []
                             for a in s.get(key, [])}
        return names("addresses"), names("notReadyAddresses")

    def slices(self, svc):
        """EndpointSlices: {((port name, number), ...): {pod name: ready}}."""
        out = {}
        for s in self.get("endpointslices", "-l", "kubernetes.io/service-name=" + svc)["items"]:
            ports = tuple(sorted((p["name"], p["port"]) for p in s.get("ports") or []))
            eps = out.setdefault(ports, {})
            for e in s["endpoints"] or []:
                eps[e["targetRef"]["name"]] = e["conditions"]["ready"]
        return out

    def ready_in_slices(self, svc):
        return {n for eps in self.slices(svc).values() for n, ready in eps.items() if ready}

    def curl_api(self, method, path, body=None):
        """curl against kubesim's API with the admin certificate: (status, JSON body)."""
        d = self.sim.dir
        r = subprocess.run(["curl", "-sS", "--cacert", f"{d}/ca.crt", "--cert", f"{d}/admin.crt",
                            "--key", f"{d}/admin.key", "-X", method, "-H",
                            "Content-Type: application/json", "-w", "\n%{http_code}",
                            f"https://127.0.0.1:{self.sim.port}{path}"] +
                           (["--data-binary", "@-"] if body is not None else []),
                           input=None if body is None else json.dumps(body),
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        text, _, code = r.stdout.rpartition("\n")
        return int(code), json.loads(text)

    def set_selector(self, how, selector, svc="web", ports=WEB_PORTS):
        """Changes the Service's selector the way a user or lpk would."""
        if how == "patch":  # strategic merge: the selectors here all have the same keys
            self.sim.kubectl("-n", NS, "patch", "svc", svc,
                             "-p", json.dumps({"spec": {"selector": selector}}))
        elif how in ("apply", "replace"):
            self.sim.kubectl(how, "-f", "-", input=json.dumps(service(svc, selector, ports)))
        else:  # a PUT of the current object with its resourceVersion
            path = f"/api/v1/namespaces/{NS}/services/{svc}"
            code, cur = self.curl_api("GET", path)
            cur["spec"]["selector"] = selector
            code, body = self.curl_api("PUT", path, cur)
            self.assertEqual(code, 200, body)

    # ------------------------------------------------------------------ tests

    def test_selector_change_steers_new_connections_only(self):
        blue, green = {"blue-1", "blue-2"}, {"green-1"}
        kept = KeepAlive(self.client, (self.vip["web"], 80))
        self.addCleanup(kept.close)
        first = self.pod_of[kept.get()]
        self.assertIn(first, blue)
        for how in ("patch", "apply", "replace", "put"):
            with self.subTest(how=how):
                # No waiting: the endpoints follow the Service event itself.
                self.set_selector(how, {"color": "green"})
                self.assertEqual(self.endpoint_pods("web"), (green, {"green-unready"}))
                self.assertEqual(self.ready_in_slices("web"), green)
                self.assertEqual(self.answers(4), green)
                self.assertEqual(self.pod_of[kept.get()], first, "the established connection")
                self.set_selector(how, {"color": "none"})
                self.assertEqual(self.endpoint_pods("web"), (set(), set()))
                self.assertEqual(self.slices("web"), {(): {}}, "the placeholder slice")
                with self.assertRaises(ConnectionRefusedError):
                    self.answer()
                self.assertEqual(self.pod_of[kept.get()], first)
                self.set_selector(how, {"color": "blue"})
                self.assertEqual(self.endpoint_pods("web")[0], blue)
                self.assertEqual(self.answers(4), blue)  # round robin over both
                self.assertEqual(self.pod_of[kept.get()], first)

    def test_stale_resource_version_conflicts_and_annotations_stay(self):
        path = f"/api/v1/namespaces/{NS}/services/web"
        stale = self.get("svc", "web")["metadata"]["resourceVersion"]
        self.sim.kubectl("-n", NS, "annotate", "svc", "web", "lpk.dev/router=on")
        conflict = "the object has been modified"
        # A PUT with a stale resourceVersion, of every kind at hand (core, discovery, a status
        # subresource, cluster-scoped).
        for kind_path in (path, f"/api/v1/namespaces/{NS}/configmaps/web-conf",
                          f"/api/v1/namespaces/{NS}/pods/client",
                          f"/api/v1/namespaces/{NS}/pods/client/status", f"/api/v1/namespaces/{NS}",
                          f"/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices/" +
                          next(iter(self.get("endpointslices")["items"]))["metadata"]["name"]):
            with self.subTest(put=kind_path):
                _, cur = self.curl_api("GET", kind_path)
                old = dict(cur, metadata=dict(cur["metadata"], resourceVersion=str(
                    int(cur["metadata"]["resourceVersion"]) - 1)))
                code, body = self.curl_api("PUT", kind_path, old)
                self.assertEqual((code, body.get("reason")), (409, "Conflict"), body)
                self.assertIn(conflict, body["message"])
        # kubectl: replace and every kind of patch carrying the stale resourceVersion.
        svc = self.get("svc", "web")
        svc["metadata"]["resourceVersion"] = stale
        r = self.sim.kubectl("replace", "-f", "-", input=json.dumps(svc), check=False)
        self.assertIn(conflict, r.stderr)
        change = {"metadata": {"resourceVersion": stale}, "spec": {"selector": {"color": "x"}}}
        for kind in ("strategic", "merge"):
            r = self.sim.kubectl("-n", NS, "patch", "svc", "web", "--type", kind,
                                 "-p", json.dumps(change), check=False)
            self.assertIn(conflict, r.stderr, kind)
        ops = [{"op": "replace", "path": "/metadata/resourceVersion", "value": stale},
               {"op": "replace", "path": "/spec/selector", "value": {"color": "x"}}]
        r = self.sim.kubectl("-n", NS, "patch", "svc", "web", "--type=json", "-p",
                             json.dumps(ops), check=False)
        self.assertIn(conflict, r.stderr, "json patch")
        r = self.sim.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", check=False,
                             input=json.dumps({**service("web", {"color": "x"}, WEB_PORTS),
                                               "metadata": {"name": "web", "namespace": NS,
                                                            "resourceVersion": stale}}))
        self.assertIn(conflict, r.stderr, "server-side apply")
        self.assertEqual(self.endpoint_pods("web")[0], {"blue-1", "blue-2"}, "nothing changed")
        # The current resourceVersion goes through, and the annotation stays through patches
        # and a client-side apply that does not mention it.
        current = self.get("svc", "web")["metadata"]["resourceVersion"]
        self.sim.kubectl("-n", NS, "patch", "svc", "web", "--type=merge", "-p", json.dumps(
            {"metadata": {"resourceVersion": current}, "spec": {"selector": {"color": "green"}}}))
        self.assertEqual(self.endpoint_pods("web")[0], {"green-1"})
        self.set_selector("apply", {"color": "blue"})
        meta = self.get("svc", "web")["metadata"]
        self.assertEqual(meta["annotations"].get("lpk.dev/router"), "on", meta)
        self.assertEqual(self.answers(2), {"blue-1", "blue-2"})

    def test_named_target_port_is_resolved_per_pod(self):
        ep = self.get("endpoints", "named")
        subsets = {tuple((p["name"], p["port"]) for p in s["ports"]):
                   {a["targetRef"]["name"] for a in s.get("addresses", [])}
                   for s in ep["subsets"]}
        self.assertEqual(subsets, {(("http", 8080),): {"blue-1"}, (("http", 8090),): {"alt"}})
        self.assertNotIn("noname", json.dumps(ep))
        # One slice per port mapping; noname, without the port, has a slice with no ports.
        self.assertEqual(self.slices("named"), {(("http", 8080),): {"blue-1": True},
                                                (("http", 8090),): {"alt": True},
                                                (): {"noname": True}})
        # kubectl's table, as printEndpointSlice makes it.
        ip = {name: ip for ip, name in self.pod_of.items()}
        table = self.sim.kubectl("-n", NS, "get", "endpointslices", "-l",
                                 "kubernetes.io/service-name=named").stdout
        self.assertRegex(table, r"NAME\s+ADDRESSTYPE\s+PORTS\s+ENDPOINTS\s+AGE")
        self.assertRegex(table, rf"named-\S+\s+IPv4\s+8090\s+{re.escape(ip['alt'])}\s")
        self.assertRegex(table, rf"named-\S+\s+IPv4\s+<unset>\s+{re.escape(ip['noname'])}\s")
        # Through the ClusterIP: each pod on its own number; never noname (it listens on 8080).
        self.assertEqual(self.answers(6, "named"), {"blue-1", "alt"})

    def test_http2_prior_knowledge_through_cluster_ip(self):
        r = self.in_client("curl", "-sS", "-m", "20", "--http2-prior-knowledge", "-w",
                           "%{http_version} %{response_code}", f"http://{self.vip['web']}:81/")
        body, done = r.stdout.splitlines()
        self.assertEqual(done, "2 200")
        self.assertIn(self.pod_of[body], {"blue-1", "blue-2"})
        # 640 requests on one connection (-c 1), 64 streams at a time. (curl 7.88's --parallel
        # with --http2-prior-knowledge fails all but one transfer, even straight to the pod.)
        r = self.in_client("h2load", "-n", "640", "-c", "1", "-m", "64",
                           f"http://{self.vip['web']}:81/")
        self.assertIn("requests: 640 total, 640 started, 640 done, 640 succeeded", r.stdout)
        self.assertIn("status codes: 640 2xx", r.stdout)

    def in_client(self, *argv):
        """A program run in the client pod's network namespace; it must exit 0."""
        r = subprocess.run(["ip", "netns", "exec", self.client.name, *argv],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r

    def test_grpc_through_cluster_ip_outlives_selector_changes(self):
        target = f"{self.vip['grpc']}:9090"
        old = GrpcClient(self.client, target)
        # 200 concurrent calls on one channel: one connection (one peer), one pod.
        who = old.ask("who 200")["answers"]
        self.assertEqual(len(who), 200)
        self.assertEqual({w.split()[0] for w in who}, {"grpc-a"})
        self.assertEqual(len({w.split()[1] for w in who}), 1, "connections the calls came on")
        self.assertEqual(old.ask("open"), {"open": True})
        said = [old.ask(f"chat m{i}") for i in range(100)]
        self.assertEqual(said, [{"answer": f"grpc-a m{i}"} for i in range(100)])
        self.set_selector("patch", {"app": "grpc", "color": "b"}, "grpc")
        new = GrpcClient(self.client, target)
        self.assertEqual({w.split()[0] for w in new.ask("who 20")["answers"]}, {"grpc-b"})
        # The call and the connection it is on go on with the pod they had.
        said = [old.ask(f"chat n{i}") for i in range(100)]
        self.assertEqual(said, [{"answer": f"grpc-a n{i}"} for i in range(100)])
        self.assertEqual({w.split()[0] for w in old.ask("who 10")["answers"]}, {"grpc-a"})
        self.set_selector("patch", {"app": "grpc", "color": "a"}, "grpc")
        self.assertEqual(old.ask("chat last"), {"answer": "grpc-a last"})
        self.assertEqual(old.ask("close"), {"closed": True})
        for c in (old, new):
            c.end()


    def test_udp_flow_moves_with_the_selector_and_is_refused_without_endpoints(self):
        sock = self.client.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        sock.settimeout(10 * e2e.SLACK)
        sock.connect((self.vip["grpc"], 9000))  # one flow: the same source port throughout

        def ask(text):
            sock.send(text.encode())
            return sock.recv(65536).decode()

        self.assertEqual(ask("one"), "grpc-a one")
        # kube-proxy deletes the conntrack entries of a UDP endpoint that left the Service:
        # the flow's next datagram goes to a current endpoint. (Each kubectl get below is
        # answered after kubesim has acted on the change: its proxy reacts on the same event
        # loop, before the next request; a test on a real cluster would wait for kube-proxy.)
        self.set_selector("patch", {"app": "grpc", "color": "b"}, "grpc")
        self.assertEqual(self.endpoint_pods("grpc")[0], {"grpc-b"})
        self.assertEqual(ask("two"), "grpc-b two")
        self.set_selector("patch", {"app": "grpc", "color": "none"}, "grpc")
        self.assertEqual(self.endpoint_pods("grpc"), (set(), set()))
        sock.send(b"three")
        with self.assertRaises(ConnectionRefusedError):  # ICMP port unreachable (REJECT)
            sock.recv(65536)
        self.set_selector("patch", {"app": "grpc", "color": "a"}, "grpc")
        self.assertEqual(self.endpoint_pods("grpc")[0], {"grpc-a"})
        self.assertEqual(ask("four"), "grpc-a four")


class GrpcClient:
    """grpc_echo.py client in the client pod's namespace, one command and answer at a time."""

    def __init__(self, netns, target):
        self.proc = e2e.Proc([PYTHON, GRPC_ECHO, "client", target], name="grpc client",
                             netns=netns, stdin=True)
        self.asked = 0

    def ask(self, command):
        self.proc.p.stdin.write(command + "\n")
        self.proc.p.stdin.flush()
        self.asked += 1
        answer = json.loads(self.proc.wait_lines(r"^\{", self.asked, timeout=30)[-1].string)
        if "error" in answer:
            raise AssertionError(f"{command}: {answer['error']}\n{self.proc.describe()}")
        return answer

    def end(self):
        self.proc.p.stdin.close()
        rc = self.proc.wait_exit(10)
        if rc != 0:
            raise AssertionError(f"grpc client: {e2e.exit_text(rc)}\n{self.proc.describe()}")


if __name__ == "__main__":
    e2e.run_tests(sys.argv[1:])

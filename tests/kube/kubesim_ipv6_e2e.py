#!/usr/bin/python3
"""lpk-kubesim up --ip-family ipv6: a single-stack IPv6 cluster, as kubectl and clients inside
its pods see it. Pods and services get addresses of the instance's ULA prefix; services carry
ipFamilies [IPv6] (admission refuses IPv4 and dual-stack as a real apiserver of one family
does); EndpointSlices have addressType IPv6; the cluster DNS answers AAAA and, for A, NODATA;
pod names (<dashed address>.<ns>.pod.<zone>) get AAAA too; ClusterIPs forward; a port-forward reaches a pod that listens on ::1 only.
Every client runs in a pod of the cluster: pod and service addresses are never reached from
the host. Usage: kubesim_ipv6_e2e.py /path/to/lpk-kubesim [unittest args]. Exits 77 when
every test was skipped (no kubectl; pods need root), with the reasons printed."""

import ipaddress
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import lpk_e2e as e2e  # noqa: E402
import kubesim_api_e2e as api  # noqa: E402  (Kubesim on a kernel-picked port, helpers)

if __name__ == "__main__" and len(sys.argv) > 1:
    api.KUBESIM = sys.argv.pop(1)
TIMEOUT = api.TIMEOUT


def reason_to_skip():
    if os.geteuid() != 0:
        return "pods need root for network and mount namespaces"
    for tool in ("kubectl", "kdig", "curl", "getent", "nginx", "socat"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (run tools/install-deps.sh)"

    return None


def service(ns, name, port, **spec):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": {"app": name},
                     "ports": [{"name": "http", "port": port, "targetPort": 80}], **spec}}


def port_forward_once(sim, ns, pod, port, payload):
    """One pod port-forward as kubectl's WebSocket client speaks it (v4.channel.k8s.io, k8s-notes
    §1.3): sends payload on the data channel, returns (bytes back, error channel text) once the
    server has echoed payload, sent an error, or closed."""
    ctx = ssl.create_default_context(cafile=os.path.join(sim.dir, "ca.crt"))
    ctx.load_cert_chain(os.path.join(sim.dir, "admin.crt"), os.path.join(sim.dir, "admin.key"))
    host, tcp_port = sim.server.rsplit("//", 1)[1].split(":")
    with ctx.wrap_socket(socket.create_connection((host, int(tcp_port)), timeout=TIMEOUT),
                         server_hostname=host) as s:
        s.sendall((f"GET /api/v1/namespaces/{ns}/pods/{pod}/portforward?ports={port} HTTP/1.1\r\n"
                   f"Host: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                   "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Sec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n").encode())
        reader = s.makefile("rb")
        status = reader.readline()
        assert b" 101 " in status, status
        while reader.readline() not in (b"\r\n", b""):
            pass
        message = b"\x00" + payload  # data channel 0, no port prefix from the client
        mask = os.urandom(4)
        s.sendall(bytes([0x82, 0x80 | len(message)]) + mask +
                  bytes(b ^ mask[i % 4] for i, b in enumerate(message)))
        data, error, prefixes = b"", b"", 0
        while data != payload and not error:
            head = reader.read(2)
            if len(head) < 2:
                break  # closed
            size = head[1] & 0x7F
            if size >= 126:
                size = int.from_bytes(reader.read(2 if size == 126 else 8), "big")
            frame = reader.read(size)
            if head[0] & 0x0F == 0x8 or not frame:
                break  # a close frame
            if prefixes < 2:  # the server's port prefix on each channel comes first
                prefixes += 1
                continue
            if frame[0] == 0:
                data += frame[1:]
            elif frame[0] == 1:
                error += frame[1:]
        return data, error.decode()


@unittest.skipIf(api.KUBECTL is None, "kubectl is not installed")
class Ipv6Api(unittest.TestCase):
    """The API alone (--no-runtime: no root, pods are reported running with addresses)."""

    @classmethod
    def setUpClass(cls):
        cls.sim = api.Kubesim("--no-runtime", "--ip-family", "ipv6")
        cls.addClassCleanup(cls.sim.stop)

    def setUp(self):
        self.ns = api.unique("v6api")
        self.sim.apply(api.namespace(self.ns))

    def test_bad_family_is_one_line(self):
        r = subprocess.run([api.KUBESIM, "up", "--no-runtime", "--ip-family", "ipv5"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        self.assertIn("--ip-family wants ipv4 or ipv6, not 'ipv5'", r.stderr)

    def test_simulated_pods_and_their_endpoints_are_ipv6(self):
        self.sim.apply([api.deployment(self.ns, "web", replicas=2), service(self.ns, "web", 80)])
        self.sim.kubectl("-n", self.ns, "rollout", "status", "deployment/web",
                         f"--timeout={TIMEOUT}s")
        pods = self.sim.get("-n", self.ns, "pods", "-l", "app=web")["items"]
        ips = sorted(p["status"]["podIP"] for p in pods)
        self.assertEqual(len(ips), 2)
        for p in pods:
            self.assertEqual(ipaddress.ip_address(p["status"]["podIP"]).version, 6)
            self.assertEqual(ipaddress.ip_address(p["status"]["hostIP"]).version, 6)
        slices = self.sim.get("-n", self.ns, "endpointslices", "-l",
                              "kubernetes.io/service-name=web")["items"]
        self.assertEqual([s["addressType"] for s in slices], ["IPv6"])
        self.assertEqual(sorted(a for e in slices[0]["endpoints"] for a in e["addresses"]), ips)

    def test_admission_follows_the_cluster_family(self):
        bad = self.sim.kubectl("apply", "-f", "-", check=False, input=json.dumps(
            service(self.ns, "v4", 80, ipFamilies=["IPv4"])))
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn('spec.ipFamilies[0]: Invalid value: "IPv4": not configured on this cluster',
                      bad.stderr)
        dual = self.sim.kubectl("apply", "-f", "-", check=False, input=json.dumps(
            service(self.ns, "dual", 80, ipFamilyPolicy="RequireDualStack")))
        self.assertNotEqual(dual.returncode, 0)
        self.assertIn('spec.ipFamilyPolicy: Invalid value: "RequireDualStack": this cluster is '
                      'not configured for dual-stack services', dual.stderr)
        wrong_ip = self.sim.kubectl("apply", "-f", "-", check=False, input=json.dumps(
            service(self.ns, "fixed", 80, clusterIP="10.96.7.7")))
        self.assertIn("IPv4 is not configured on this cluster", wrong_ip.stderr)
        self.sim.apply([service(self.ns, "prefer", 80, ipFamilyPolicy="PreferDualStack"),
                        service(self.ns, "headless", 80, clusterIP="None")])
        prefer = self.sim.get("-n", self.ns, "service/prefer")["spec"]
        self.assertEqual(prefer["ipFamilies"], ["IPv6"])
        self.assertEqual(ipaddress.ip_address(prefer["clusterIP"]).version, 6)
        headless = self.sim.get("-n", self.ns, "service/headless")["spec"]
        self.assertEqual((headless["clusterIP"], headless["ipFamilies"]), ("None", ["IPv6"]))
        # Headless without a selector is the apiserver's one dual-family exception.
        bare = service(self.ns, "bare", 80, clusterIP="None")
        del bare["spec"]["selector"]
        self.sim.apply(bare)
        bare = self.sim.get("-n", self.ns, "service/bare")["spec"]
        self.assertEqual((bare["ipFamilyPolicy"], bare["ipFamilies"]),
                         ("RequireDualStack", ["IPv6", "IPv4"]))


@unittest.skipIf(reason_to_skip(), reason_to_skip() or "")
class Ipv6Cluster(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sim = api.Kubesim("--ip-family", "ipv6")
        cls.addClassCleanup(cls.sim.stop)
        kubernetes = cls.sim.get("-n", "default", "service", "kubernetes")["spec"]
        cls.kubernetes_ip = ipaddress.IPv6Address(kubernetes["clusterIP"])
        # The service range: the /112 whose first address is kubernetes'.
        cls.services = ipaddress.IPv6Network(f"{cls.kubernetes_ip}/112", strict=False)
        cls.dns_ip = cls.sim.get("-n", "kube-system", "service", "kube-dns")["spec"]["clusterIP"]

    def setUp(self):
        self.ns = api.unique("v6")
        self.sim.apply(api.namespace(self.ns))

    def run_web(self, name="web", port=8080):
        """An nginx pod (Debian's default site listens on [::]:80) and its service."""
        p = api.pod(self.ns, name, ["nginx", "-g", "daemon off;"])
        p["metadata"]["labels"] = {"app": name}
        p["spec"]["containers"][0]["readinessProbe"] = {"httpGet": {"path": "/", "port": 80},
                                                        "periodSeconds": 1}
        self.sim.apply([p, service(self.ns, name, port)])
        self.sim.kubectl("-n", self.ns, "wait", "--for=condition=Ready", "pod/" + name,
                         f"--timeout={TIMEOUT}s")
        return self.sim.get("-n", self.ns, "pod/" + name), self.sim.get("-n", self.ns,
                                                                         "service/" + name)

    def in_pod(self, name, script):
        """Runs script (sh) in a pod of the cluster; returns its output, asserting success."""
        self.sim.apply(api.pod(self.ns, name, ["sh", "-c", script], restart="Never"))
        r = self.sim.kubectl("-n", self.ns, "wait", "--for=jsonpath={.status.phase}=Succeeded",
                             "pod/" + name, f"--timeout={TIMEOUT}s", check=False)
        log = self.sim.kubectl("-n", self.ns, "logs", name, check=False).stdout
        self.assertEqual(r.returncode, 0, f"pod {name} did not succeed:\n{log}\n{r.stderr}")
        return log

    def test_pods_services_and_endpoints_are_ipv6(self):
        self.assertTrue(self.kubernetes_ip.is_private and str(self.kubernetes_ip).startswith("fd"),
                        self.kubernetes_ip)
        self.assertIn(ipaddress.IPv6Address(self.dns_ip), self.services)
        web, svc = self.run_web()
        pod_ip = ipaddress.IPv6Address(web["status"]["podIP"])
        self.assertEqual(web["status"]["podIPs"], [{"ip": str(pod_ip)}])
        host_ip = ipaddress.IPv6Address(web["status"]["hostIP"])
        self.assertEqual(ipaddress.IPv6Network(f"{pod_ip}/64", strict=False),
                         ipaddress.IPv6Network(f"{host_ip}/64", strict=False))
        # The pods' /64 and the services' /112 share the instance's ULA /48.
        self.assertEqual(ipaddress.IPv6Network(f"{pod_ip}/48", strict=False),
                         ipaddress.IPv6Network(f"{self.kubernetes_ip}/48", strict=False))
        spec = svc["spec"]
        self.assertEqual((spec["ipFamilies"], spec["ipFamilyPolicy"]), (["IPv6"], "SingleStack"))
        self.assertIn(ipaddress.IPv6Address(spec["clusterIP"]), self.services)
        self.assertEqual(spec["clusterIPs"], [spec["clusterIP"]])
        wide = self.sim.kubectl("-n", self.ns, "get", "pod", "web", "-o", "wide").stdout
        self.assertIn(str(pod_ip), wide)

        slices = self.sim.get("-n", self.ns, "endpointslices", "-l",
                              "kubernetes.io/service-name=web")["items"]
        self.assertEqual([s["addressType"] for s in slices], ["IPv6"])
        self.assertEqual([e["addresses"] for e in slices[0]["endpoints"]], [[str(pod_ip)]])
        subsets = self.sim.get("-n", self.ns, "endpoints", "web")["subsets"]
        self.assertEqual([a["ip"] for a in subsets[0]["addresses"]], [str(pod_ip)])

    def test_dns_answers_aaaa_only_and_cluster_ips_forward(self):
        web, svc = self.run_web()
        ip = svc["spec"]["clusterIP"]
        fqdn = f"web.{self.ns}.svc.cluster.local"
        pod_ip = web["status"]["podIP"]
        pod_name = pod_ip.replace(":", "-") + f".{self.ns}.pod.cluster.local"  # CoreDNS's form
        # Real clients inside a pod: glibc (getent, with the kubelet's search path), kdig asking
        # for each type, curl by ClusterIP in brackets and by name; the kubelet's variables.
        out = self.in_pod("client", f"""
            echo "ahosts: $(getent ahosts web | awk '{{print $1}}' | sort -u | tr '\\n' ' ')"
            echo "A: $(kdig @{self.dns_ip} {fqdn} A | grep -o 'status: [A-Z]*') \
$(kdig +short @{self.dns_ip} {fqdn} A | wc -l)"
            echo "AAAA: $(kdig +short @{self.dns_ip} {fqdn} AAAA)"
            echo "pod: $(kdig +short @{self.dns_ip} {pod_name} AAAA) \
$(kdig @{self.dns_ip} {pod_name} A | grep -o 'status: [A-Z]*') \
$(kdig +short @{self.dns_ip} {pod_name} A | wc -l)"
            echo "by-ip: $(curl -sS -g -o /dev/null -w '%{{http_code}}' -m 10 http://[{ip}]:8080/)"
            echo "by-name: $(curl -sS -o /dev/null -w '%{{http_code}}' -m 10 http://web:8080/)"
            echo "kubernetes: $(curl -sS -g -o /dev/null -w '%{{http_code}}' -m 10 -k \
https://[$KUBERNETES_SERVICE_HOST]:$KUBERNETES_SERVICE_PORT/version)"
            echo "env: $WEB_SERVICE_HOST $WEB_PORT $KUBERNETES_SERVICE_HOST"
            """)
        lines = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
        self.assertEqual(lines.get("ahosts", "").split(), [ip], out)
        self.assertEqual(lines.get("A"), "status: NOERROR 0", out)  # NODATA, as CoreDNS does
        self.assertEqual(lines.get("AAAA"), ip, out)
        self.assertEqual(lines.get("pod"), f"{pod_ip} status: NOERROR 0", out)
        self.assertEqual(lines.get("by-ip"), "200", out)
        self.assertEqual(lines.get("by-name"), "200", out)
        self.assertIn(lines.get("kubernetes"), ("200", "401", "403"), out)  # the API answered
        self.assertEqual(lines.get("env"),
                         f"{ip} tcp://[{ip}]:8080 {self.kubernetes_ip}", out)

    def test_port_forward_reaches_a_server_on_ipv6_loopback_only(self):
        # The kubelet dials localhost inside the pod, IPv4 first and then IPv6 (containerd's
        # PortForward): a server bound to [::1] alone is reached.
        self.sim.apply(api.pod(self.ns, "echo6", [
            "socat", "TCP6-LISTEN:7000,bind=[::1],fork,reuseaddr", "EXEC:cat"]))
        self.sim.kubectl("-n", self.ns, "wait", "--for=jsonpath={.status.phase}=Running",
                         "pod/echo6", f"--timeout={TIMEOUT}s")
        deadline = time.monotonic() + TIMEOUT
        while True:  # socat may not listen yet: each try is one port-forward
            got, error = port_forward_once(self.sim, self.ns, "echo6", 7000, b"over [::1]\n")
            if got or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual((got, error), (b"over [::1]\n", ""))
        # Nothing on either loopback: containerd's error names both attempts.
        got, error = port_forward_once(self.sim, self.ns, "echo6", 7001, b"x")
        self.assertEqual(got, b"")
        self.assertRegex(error, r"failed to connect to localhost:7001 inside namespace "
                                r".*IPv4: dial tcp4 127\.0\.0\.1:7001: .*IPv6 dial "
                                r"tcp6 \[::1\]:7001: ")

    def test_host_has_no_address_or_route_of_the_cluster(self):
        prefix = str(ipaddress.IPv6Network(f"{self.kubernetes_ip}/48", strict=False).network_address)
        addrs = subprocess.run(["ip", "-o", "-6", "addr"], capture_output=True, text=True).stdout
        self.assertNotIn(prefix.rstrip(":"), addrs)
        route = subprocess.run(["ip", "-6", "route", "get", str(self.kubernetes_ip)],
                               capture_output=True, text=True)
        self.assertNotRegex(route.stdout, r"kubesim|ksv|local")


if __name__ == "__main__":
    e2e.run_tests(sys.argv[1:])

#!/usr/bin/python3
"""lpk-proxy connect on a single-stack IPv6 cluster (`lpk-kubesim up --ip-family ipv6`, issue 9):
the demo's pods and services have only IPv6 addresses and the cluster DNS answers only AAAA.
The agents replacing `api` dial redis and web by name, serve the container's port on the pod's
IPv6 address, and the local process gets the same answers as on an IPv4 cluster: web through
lpk by name, inbound requests from pods that call each agent pod's IPv6 address, redis by its
short name. The restore check (ConnectCase) compares the deployment with the original.
Needs root (kubesim makes network namespaces; the host client's resolv.conf is bind-mounted)."""

import ipaddress
import json
import os
import re
import shutil
import subprocess
import unittest

import lpk_e2e as e2e
from connect_case import LOCAL_API, ConnectCase, main


class ConnectIpv6(ConnectCase):
    kubesim_args = ("--ip-family", "ipv6")

    @classmethod
    def setUpClass(cls):
        if shutil.which("kdig") is None:
            raise unittest.SkipTest("kdig is not installed (run tools/install-deps.sh)")
        super().setUpClass()

    def test_connect_on_an_ipv6_cluster(self):
        redis = json.loads(self.sim.kubectl("-n", "demo", "get", "service", "redis", "-o",
                                            "json").stdout)["spec"]
        self.assertEqual(redis["ipFamilies"], ["IPv6"])
        redis_ip = redis["clusterIP"]
        port = e2e.free_port()
        env_file = os.path.join(self.tmp, "api.env")
        proxy = self.connect("-n", "demo", "--service", "api", "--local-port", f"{port}:8080",
                             "--env-file", env_file,
                             command=["/usr/bin/python3", LOCAL_API, str(port)], service="api")
        lines = e2e.PROXY_LINES
        proxy.wait_line(lines["ready"], timeout=150)
        self.assertEqual(proxy.wait_line(lines["tunnels"]).groups(), ("2", "2"))
        e2e.wait_port("127.0.0.1", port, timeout=20)
        dns = proxy.wait_line(lines["dns"]).groups()
        services = {m.group(1): m.group(3) for m in proxy.matching(lines["service"])}
        self.assertLessEqual({"redis", "api", "web"}, set(services))

        with self.subTest("the kubelet's IPv6 variables point at lpk's addresses"):
            with open(env_file) as f:
                env = f.read()
            self.assertIn(f'REDIS_SERVICE_HOST="{services["redis"]}"', env)
            self.assertIn(f'REDIS_PORT="tcp://{services["redis"]}:6379"', env)
            self.assertNotIn(redis_ip, env)
            # kubernetes.default is not lpk's to map: the kubelet's values, IPv6 as they are.
            api_ip = json.loads(self.sim.kubectl("get", "service", "kubernetes", "-o",
                                                 "json").stdout)["spec"]["clusterIP"]
            self.assertIn(f'KUBERNETES_SERVICE_HOST="{api_ip}"', env)
            self.assertIn(f'KUBERNETES_PORT="tcp://[{api_ip}]:443"', env)

        with self.subTest("names lpk does not map: the cluster DNS, through the agent"):
            # The stub asks the agent's dns service, which forwards to the IPv6 nameserver of
            # the pod's resolv.conf: AAAA answers, A is NODATA.
            def ask(qtype):
                r = subprocess.run(["kdig", "-p", dns[1], "@" + dns[0], qtype,
                                    "kubernetes.default.svc.cluster.local"],
                                   capture_output=True, text=True, timeout=20)
                status = re.search(r"status: (\w+)", r.stdout)
                answers = re.findall(r"^kubernetes\.default\.svc\.cluster\.local\.\s+\d+\s+IN\s+"
                                     + qtype + r"\s+(\S+)$", r.stdout, re.M)
                return (status.group(1) if status else r.stdout + r.stderr), answers
            self.assertEqual(ask("AAAA"), ("NOERROR", [api_ip]))
            self.assertEqual(ask("A"), ("NOERROR", []))

        with self.subTest("from the host, by name through the stub DNS"):
            resolv = os.path.join(self.tmp, "resolv.conf")
            with open(resolv, "w") as f:
                f.write(f"nameserver {dns[0]}\nsearch demo.svc.cluster.local svc.cluster.local "
                        "cluster.local\noptions ndots:5\n")
            r = subprocess.run(["unshare", "-m", "sh", "-c",
                                f"mount --bind {resolv} /etc/resolv.conf && "
                                "curl -sSf -m 20 http://web.demo/api/hits"],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr + proxy.describe())
            answer = json.loads(r.stdout)
            self.assertEqual(answer["served_by"], "lpk-local-process")
            self.assertEqual(answer["greeting"], "hello from kubesim")
            self.assertTrue(answer["hits"].startswith(":"), answer)  # redis through lpk

        # Inbound: a pod calls each agent pod on its IPv6 address, and through the service.
        running = self.agent_pods()
        self.assertEqual(len(running), 2)
        for i, (name, p) in enumerate(sorted(running.items())):
            with self.subTest(inbound_through=name):
                ip = p["status"]["podIP"]
                self.assertEqual(ipaddress.ip_address(ip).version, 6)
                log = self.in_pod(f"probe{i}", f"curl -sSf -g -m 20 http://[{ip}]:8080/api/x")
                self.assertIn("lpk-local-process", log)
        with self.subTest("inbound by service name (AAAA) through web"):
            log = self.in_pod("byname", "curl -sSf -m 20 http://web/api/hits")
            self.assertIn("lpk-local-process", log)


if __name__ == "__main__":
    main()

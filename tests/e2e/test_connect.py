#!/usr/bin/python3
"""lpk-proxy connect against lpk-kubesim running the demo (web -> api x2 -> redis).

The local process replacing `api` is a small Python server written here: it answers with
content only it produces, reads the configMap file through $LPK_FILES_ROOT, the secret from
its environment, and redis by its short name through lpk's stub DNS and the tunnel.
Needs root (kubesim makes network namespaces; the child's resolv.conf is bind-mounted)."""

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time

import lpk_e2e as e2e
from connect_case import LOCAL_API, ConnectCase, main


def keep_alive_get(sock):
    """One HTTP/1.1 request to web's nginx on an open keep-alive connection; the response."""
    sock.sendall(b"GET / HTTP/1.1\r\nHost: web\r\n\r\n")
    data = b""
    while b"web ok" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


class Connect(ConnectCase):
    def test_local_process_serves_web_through_the_tunnel(self):
        # (Cleanups registered by connect() stop lpk-proxy, which must exit 0, and check that
        # api is restored, whatever fails or is skipped below.)
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
        services = {m.group(1) for m in proxy.matching(lines["service"])}  # all before ready
        self.assertLessEqual({"redis", "api", "web"}, services)
        self.assertEqual(proxy.wait_line(lines["env_file"]).group(1), env_file)
        variables, pod, _, files, _ = proxy.wait_line(lines["environment"]).groups()
        self.assertTrue(pod.startswith("api-"), pod)
        self.assertGreater(int(variables), 0)
        self.assertGreater(int(files), 0)  # the configMap's greeting
        # Both replicas run the agent; the sidecar-free pod template is otherwise intact.
        pods = json.loads(self.sim.kubectl("-n", "demo", "get", "pods", "-l", "app=api",
                                           "-o", "json").stdout)["items"]
        running = [p for p in pods if "deletionTimestamp" not in p["metadata"]]
        self.assertEqual(len(running), 2)
        for p in running:
            self.assertEqual(p["spec"]["containers"][0]["image"], "lpk/lpk-agent:dev")

        # The env file: 0600, with the secret-backed variable.
        self.assertEqual(stat.S_IMODE(os.stat(env_file).st_mode), 0o600)
        with open(env_file) as f:
            self.assertIn('REDIS_PASSWORD="demo-s3cret"', f.read())

        with self.subTest("from the host, by name through the stub DNS on port 53"):
            # curl resolves web.demo through the stub DNS and reaches the web pod through lpk;
            # web calls api, whose agents send it to our local process.
            # The stub has an address of its session's own, so port 53 there is always free.
            self.assertEqual(dns[1], "53", proxy.describe())
            resolv = os.path.join(self.tmp, "resolv.conf")
            with open(resolv, "w") as f:
                f.write(f"nameserver {dns[0]}\nsearch demo.svc.cluster.local svc.cluster.local "
                        "cluster.local\noptions ndots:5\n")
            r = subprocess.run(["unshare", "-m", "sh", "-c",
                                f"mount --bind {resolv} /etc/resolv.conf && "
                                "curl -sSf -m 20 http://web.demo/api/hits"],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            answer = json.loads(r.stdout)
            self.assertEqual(answer["served_by"], "lpk-local-process")
            self.assertEqual(answer["greeting"], "hello from kubesim")  # configMap file
            self.assertTrue(answer["hits"].startswith(":"), answer)      # redis, password ok

        # Inbound from each replica: a pod in the cluster calls each agent pod directly.
        for i, p in enumerate(running):
            with self.subTest(inbound_through=p["metadata"]["name"]):
                log = self.in_pod(f"probe{i}",
                                  f"curl -sSf -m 20 http://{p['status']['podIP']}:8080/api/x")
                self.assertIn("lpk-local-process", log)

        result = self.status()
        self.assertEqual(len(result["tunnels"]), 2)
        self.assertTrue(any(s["name"] == "redis" for s in result["services"]))

    def connect_local_api(self, *extra):
        """connect -n demo --service api with tools/kubesim/demo/local_api.py as the local api;
        returns the proxy once both tunnels are up and the local api listens, and web's
        address."""
        port = e2e.free_port()
        proxy = self.connect("-n", "demo", "--service", "api", "--local-port", f"{port}:8080",
                             *extra, command=["/usr/bin/python3", LOCAL_API, str(port)],
                             service="api")
        proxy.wait_line(e2e.PROXY_LINES["ready"], timeout=150)
        self.assertEqual(proxy.wait_line(e2e.PROXY_LINES["tunnels"]).groups(), ("2", "2"))
        e2e.wait_port("127.0.0.1", port, timeout=20)
        return proxy, self.web_address(proxy)

    @staticmethod
    def web_address(proxy):
        """The address lpk gave service web.demo, from connect's `service` lines."""
        web = [m.group(3) for m in proxy.matching(e2e.PROXY_LINES["service"])
               if m.group(1) == "web" and m.group(2) == "demo"]
        assert len(web) == 1, proxy.describe()
        return web[0]

    @staticmethod
    def requests_through(web, count=20):
        """`count` requests to web, which calls api, whose agents send them to the local
        process; returns the failures."""
        failed = []
        for _ in range(count):
            r = subprocess.run(["curl", "-sS", "-m", "10", f"http://{web}/api/hits"],
                               capture_output=True, text=True, timeout=30)
            if r.returncode != 0 or "lpk-local-process" not in r.stdout:
                failed.append(f"curl exit {r.returncode}: {r.stdout.strip()} {r.stderr.strip()}")
        return failed

    def test_frozen_and_cut_port_forwards_are_noticed_and_resumed(self):
        # Issue 10: kubesim freezes every port-forward (no FIN, no RST, as a stuck API server or
        # network path does): both tunnels notice within --dead-link-timeout, dial new
        # port-forwards and resume their sessions. Then it cuts them all (as an API server
        # restart does): the same, at once; and once more while new port-forwards are refused
        # for 3 s. A connection open all along keeps working.
        proxy, web = self.connect_local_api("--dead-link-timeout", "2s")
        self.assertEqual(self.requests_through(web, 5), [], proxy.describe())
        lost = r"tunnel to pod \S+ port \d+ lost \((.*)\); reconnecting"
        resumed = r"tunnel to pod \S+ port \d+ resumed: (\d+) streams carried on, (\d+) ended"
        keep = socket.create_connection((web, 80), timeout=10)
        self.addCleanup(keep.close)
        self.assertIn(b"web ok", keep_alive_get(keep))

        code, _, body = self.sim.raw("POST", "/kubesim/faults/portforward/freeze")
        frozen_at = time.monotonic()
        self.assertEqual(code, 200, body)
        self.assertGreaterEqual(json.loads(body)["frozen"], 2, body)
        drops = proxy.wait_lines(lost, 2, timeout=2 + 8, stderr=True)
        noticed = time.monotonic() - frozen_at
        self.assertEqual([m.group(1) for m in drops if "went silent" not in m.group(1)], [])
        proxy.wait_lines(resumed, 2, timeout=30, stderr=True)
        self.assertIn(b"web ok", keep_alive_get(keep), "the open connection was carried on")
        self.assertEqual(self.requests_through(web, 5), [], proxy.describe())
        print(f"\n  frozen port-forwards noticed after {noticed:.2f} s (--dead-link-timeout 2s)"
              ", sessions resumed", flush=True)

        # As the README says to, with kubectl.
        r = self.sim.kubectl("create", "--raw", "/kubesim/faults/portforward/drop", "-f",
                             "/dev/null")
        self.assertGreaterEqual(json.loads(r.stdout)["dropped"], 2, r.stdout)
        proxy.wait_lines(lost, 4, timeout=10, stderr=True)
        proxy.wait_lines(resumed, 4, timeout=30, stderr=True)
        self.assertIn(b"web ok", keep_alive_get(keep))
        self.assertEqual(self.requests_through(web, 5), [], proxy.describe())

        # An API server that refuses new port-forwards for a while (restarting, overloaded):
        # the tunnels keep trying and resume once it serves them again.
        code, _, body = self.sim.raw("POST", "/kubesim/faults/portforward/refuse?seconds=3")
        self.assertEqual(code, 200, body)
        refused_at = time.monotonic()
        self.sim.kubectl("create", "--raw", "/kubesim/faults/portforward/drop", "-f", "/dev/null")
        proxy.wait_lines(lost, 6, timeout=10, stderr=True)
        proxy.wait_lines(r"cannot reach the agent at .*503", 2, timeout=10, stderr=True)
        proxy.wait_lines(resumed, 6, timeout=30, stderr=True)
        self.assertGreaterEqual(time.monotonic() - refused_at, 3 - 0.5)
        self.assertIn(b"web ok", keep_alive_get(keep))
        self.assertEqual(len(proxy.matching(e2e.PROXY_LINES["tunnel_up"])), 2,
                         "the sessions resumed: no new ones")

        tunnels = self.status()["tunnels"]
        self.assertEqual([t["drops"] for t in tunnels], [3, 3], tunnels)
        self.assertEqual([t["resumes"] for t in tunnels], [3, 3], tunnels)
        self.assertEqual([t["lost_streams"] for t in tunnels], [0, 0], tunnels)
        text = subprocess.run([e2e.PROXY, "status"], capture_output=True, text=True,
                              env=self.env, timeout=20).stdout
        self.assertIn("link dropped 3x", text)
        self.assertIn("resumed 3x", text)

    def test_outbound_streams_are_spread_over_every_agent(self):
        # Issue 12 item 4: each new outbound stream takes the tunnel that carries the fewest, so
        # both agents carry the session (status shows it), and with one agent pod gone new
        # connections go through the other at once, before its replacement has a tunnel.
        proxy, web = self.connect_local_api()
        held = []
        self.addCleanup(lambda: [s.close() for s in held])
        for _ in range(100):
            s = socket.create_connection((web, 80), timeout=10)
            s.settimeout(10)
            held.append(s)
            self.assertIn(b"web ok", keep_alive_get(s), proxy.describe())
        carried = {t["pod"]: t["streams"] for t in self.status()["tunnels"]}
        self.assertEqual(len(carried), 2, carried)
        self.assertGreaterEqual(sum(carried.values()), 100, carried)
        self.assertGreaterEqual(min(carried.values()), 40, f"not spread: {carried}")
        for s in held:
            s.close()
        held.clear()

        victim = sorted(self.agent_pods())[0]
        self.sim.kubectl("-n", "demo", "delete", "pod", victim, "--wait=false")
        closed = proxy.wait_line(e2e.PROXY_LINES["tunnel_closed"], timeout=60)
        self.assertEqual(closed.group(1), victim, proxy.describe())
        failed = []
        for _ in range(20):
            try:
                s = socket.create_connection((web, 80), timeout=10)
                s.settimeout(10)
                with s:
                    if b"web ok" not in keep_alive_get(s):
                        failed.append("no answer")
            except OSError as e:
                failed.append(str(e))
        self.assertEqual(failed, [], proxy.describe())

    def test_replaced_agent_pods_get_tunnels_and_traffic_goes_on(self):
        # Issue 9: a deleted agent pod's replacement must get a tunnel, the deleted one's tunnel
        # must end (not retry a 404 forever), and outbound streams must go through the tunnels
        # that are up: both agent pods are replaced in turn, and 20 requests through web (out
        # through a tunnel, back in through an agent to the local process) succeed after each.
        proxy, web = self.connect_local_api()
        lines = e2e.PROXY_LINES
        self.assertEqual(self.requests_through(web), [], proxy.describe())
        original = sorted(self.agent_pods())
        self.assertEqual(len(original), 2)
        ups = len(proxy.matching(lines["tunnel_up"]))
        for n, victim in enumerate(original, start=1):
            self.sim.kubectl("-n", "demo", "delete", "pod", victim, "--wait=false")
            closed = proxy.wait_lines(lines["tunnel_closed"], n, timeout=60)[-1]
            self.assertEqual(closed.group(1), victim, proxy.describe())
            up = proxy.wait_lines(lines["tunnel_up"], ups + n, timeout=120)[-1]
            self.assertNotIn(up.group(1), original, proxy.describe())
            self.assertIn(up.group(1), self.agent_pods(), proxy.describe())
            self.assertEqual(self.requests_through(web), [], proxy.describe())

        tunnels = self.status()["tunnels"]
        self.assertEqual(sorted(t["pod"] for t in tunnels), sorted(self.agent_pods()), tunnels)
        self.assertEqual({t["state"] for t in tunnels}, {"ready"}, tunnels)

    def test_unpullable_agent_image_is_reported_and_restored_at_once(self):
        # Issue 9 item 5: a takeover that cannot succeed is seen as what it is, not as a
        # timeout. The floor (reason printed and the workload restored within 15 s of the
        # failure appearing) is measured and printed, not asserted: see the MEASURED line.
        before = self.deployment("api")
        t0 = time.monotonic()
        proxy = self.connect("-n", "demo", "--service", "api", "--agent-image",
                             "registry.invalid/lpk-agent:none", "--timeout", "300")
        self.assertEqual(proxy.wait_exit(timeout=120), 1, proxy.describe())
        took = time.monotonic() - t0
        errors = "\n".join(proxy.err)
        self.assertIn("ErrImagePull", errors, proxy.describe())
        self.assertIn("registry.invalid/lpk-agent:none", errors, proxy.describe())
        self.assert_restored(before, "api")
        print(f"MEASURED: unpullable agent image: failure reported and api restored "
              f"{took:.1f} s after connect started (rollout timeout 300 s)", file=sys.stderr)

    def test_exit_code_passes_through_and_kill_9_is_restored(self):
        sidecar = {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "side", "namespace": "demo"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "side"}},
                     "template": {"metadata": {"labels": {"app": "side"}}, "spec": {"containers": [
                         {"name": "app", "image": "busybox",
                          "command": ["socat", "TCP-LISTEN:7000,fork,reuseaddr", "EXEC:cat"],
                          "ports": [{"containerPort": 7000, "name": "echo"}],
                          "readinessProbe": {"tcpSocket": {"port": 7000}, "periodSeconds": 1}},
                         {"name": "sidecar", "image": "busybox",
                          "command": ["socat", "TCP-LISTEN:7100,fork,reuseaddr", "EXEC:cat"]}]}}}}
        service = {"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": "side", "namespace": "demo"},
                   "spec": {"selector": {"app": "side"},
                            "ports": [{"port": 80, "targetPort": "echo", "name": "echo"}]}}
        for manifest in (sidecar, service):
            self.sim.kubectl("apply", "-f", "-", input=json.dumps(manifest))
        self.sim.kubectl("-n", "demo", "rollout", "status", "deployment/side", "--timeout=90s",
                         timeout=120)
        before = self.deployment("side")

        proxy = self.connect("-n", "demo", "--service", "side", command=["sh", "-c", "exit 7"])
        self.assertEqual(proxy.wait_exit(timeout=240), 7, proxy.describe())
        self.assertEqual(proxy.wait_line(e2e.PROXY_LINES["command_exited"]).group(1), "7")
        self.assert_restored(before, "side")

        proxy = self.connect("-n", "demo", "--service", "side", service="side")
        proxy.wait_line(e2e.PROXY_LINES["ready"], timeout=150)
        pod = json.loads(self.sim.kubectl("-n", "demo", "get", "pods", "-l", "app=side",
                                          "-o", "json").stdout)["items"]
        pod = [p for p in pod if "deletionTimestamp" not in p["metadata"]][0]
        names = {c["name"]: c["image"] for c in pod["spec"]["containers"]}
        self.assertEqual(names, {"app": "lpk/lpk-agent:dev", "sidecar": "busybox"})
        os.killpg(proxy.p.pid, signal.SIGKILL)
        self.assertEqual(proxy.wait_exit(10), -signal.SIGKILL)
        self.assertIn("lpk.dev/original-template-configmap",
                      self.deployment("side")["metadata"].get("annotations", {}))
        r = subprocess.run([e2e.PROXY, "restore", "--kubeconfig", self.sim.kubeconfig],
                           capture_output=True, text=True, env=self.env, timeout=240)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assert_restored(before, "side")

    def test_bare_pod_and_statefulset_are_replaced_and_restored(self):
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "solo", "namespace": "demo", "labels": {"app": "solo"}},
               "spec": {"containers": [{"name": "app", "image": "busybox",
                                        "command": ["socat", "TCP-LISTEN:7000,fork,reuseaddr",
                                                    "EXEC:cat"],
                                        "ports": [{"containerPort": 7000}]}]}}
        sts = {"apiVersion": "apps/v1", "kind": "StatefulSet",
               "metadata": {"name": "db", "namespace": "demo"},
               "spec": {"replicas": 2, "serviceName": "db",
                        "selector": {"matchLabels": {"app": "db"}},
                        "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [
                            {"name": "db", "image": "busybox",
                             "command": ["socat", "TCP-LISTEN:7001,fork,reuseaddr", "EXEC:cat"],
                             "ports": [{"containerPort": 7001, "name": "db"}]}]}}}}
        services = [{"apiVersion": "v1", "kind": "Service",
                     "metadata": {"name": name, "namespace": "demo"},
                     "spec": {"selector": {"app": name},
                              "ports": [{"port": port, "targetPort": port}]}}
                    for name, port in (("solo", 7000), ("db", 7001))]
        for manifest in (pod, sts, *services):
            self.sim.kubectl("apply", "-f", "-", input=json.dumps(manifest))
        self.sim.kubectl("-n", "demo", "wait", "--for=condition=Ready", "pod/solo",
                         "--timeout=60s", timeout=90)
        self.sim.kubectl("-n", "demo", "rollout", "status", "statefulset/db", "--timeout=90s",
                         timeout=120)

        def spec_of(kind, name):
            obj = json.loads(self.sim.kubectl("-n", "demo", "get", kind, name, "-o",
                                              "json").stdout)
            return obj["spec"]

        solo_before = spec_of("pod", "solo")
        db_before = spec_of("statefulset", "db")
        for service, kind, name in (("solo", "pod", "solo"), ("db", "statefulset", "db")):
            proxy = self.connect("-n", "demo", "--service", service,
                                 command=["sh", "-c", "echo connected-$LPK_SESSION"])
            self.assertEqual(proxy.wait_exit(timeout=240), 0, proxy.describe())
            self.assertEqual(proxy.wait_line(e2e.PROXY_LINES["command_exited"]).group(1), "0")
            self.assertTrue(any(l.startswith("connected-") for l in proxy.lines),
                            proxy.describe())
            self.assertTrue(any("lpk/lpk-agent:dev" in l for l in proxy.lines), proxy.describe())
        after = spec_of("pod", "solo")
        for key in ("containers", "volumes"):
            self.assertEqual(after.get(key), solo_before.get(key))
        self.assertEqual(spec_of("statefulset", "db"), db_before)

    def test_unknown_service_is_one_line(self):
        proxy = self.connect("-n", "demo", "--service", "nope")
        self.assertEqual(proxy.wait_exit(timeout=30), 1)
        self.assertEqual(len(proxy.err), 1, proxy.err)
        self.assertIn("service nope not found in namespace demo", proxy.err[0])

    def test_local_port_for_a_port_the_container_does_not_serve_is_one_line(self):
        before = self.deployment("api")
        proxy = self.connect("-n", "demo", "--service", "api", "--local-port", "28080:9999")
        self.assertEqual(proxy.wait_exit(timeout=30), 1)
        self.assertEqual(len(proxy.err), 1, proxy.err)
        self.assertIn("--local-port 28080:9999", proxy.err[0])
        self.assertIn("serves no port 9999", proxy.err[0])
        self.assertIn("8080", proxy.err[0])  # the ports it does serve
        self.assertEqual(self.deployment("api")["spec"], before["spec"], "nothing changed")


if __name__ == "__main__":
    main()

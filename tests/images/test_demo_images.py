#!/usr/bin/env python3
"""The kubesim demo's images (tools/images/demo-images.sh), each run under crun in a network
namespace the test creates and used from inside it: nginx answers HTTP (its own page, and a
site mounted on sites-enabled as the demo mounts its configMap), redis answers PING in both
argument forms pods use, the busybox client fetches from nginx, and the demo api counts hits
in redis.

    tests/images/test_demo_images.py --build-dir BUILD
"""

import json
import os
import re
import shutil
import tempfile
import unittest

import images_harness as h

DEMO_MANIFEST = os.path.join(h.ROOT, "tools", "kubesim", "demo", "demo.yaml")
WWW_DATA, REDIS = 33, 999


def normalized(ref):
    ref = ref.removeprefix("docker.io/").removeprefix("library/")
    return ref if ":" in ref.rsplit("/", 1)[-1] else ref + ":latest"


class DemoImages(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="lpk-demo-images-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        print(h.build_images("demo-images.sh", cls.tmp).strip(), flush=True)
        cls.images = {name: h.Archive(os.path.join(cls.tmp, f"{name}.tar"))
                      for name in ("nginx", "redis", "busybox", "demo-api")}

    def netns(self):
        ns = h.NetNs()
        self.addCleanup(ns.delete)
        return ns

    def start(self, name, ns, **config):
        c = h.Container(self.images[name], self.tmp, netns=ns, **config)
        self.addCleanup(c.cleanup)
        return c.start()

    def test_named_as_the_demo_names_them(self):
        with open(DEMO_MANIFEST) as f:
            wanted = {normalized(r) for r in re.findall(r"^\s+image:\s*(\S+)", f.read(), re.M)}
        refs = {i.ref for i in self.images.values()}
        self.assertLessEqual(wanted, refs)
        self.assertIn("busybox:latest", refs)

    def test_entrypoints_are_the_real_images(self):
        nginx, redis = self.images["nginx"].config, self.images["redis"].config
        self.assertEqual(nginx["Cmd"], ["nginx", "-g", "daemon off;"])
        self.assertIsNone(nginx.get("Entrypoint"))
        self.assertEqual(redis["Entrypoint"], ["docker-entrypoint.sh"])
        self.assertEqual(redis["Cmd"], ["redis-server"])
        self.assertEqual(self.images["busybox"].config["Cmd"], ["sh"])

    def test_nginx_answers_http_with_workers_as_www_data(self):
        ns = self.netns()
        c = self.start("nginx", ns)
        h.wait_serving(ns, 80, c)
        page = ns.run("curl", "-sS", "--max-time", "5", "http://127.0.0.1/").stdout
        self.assertIn("Welcome to nginx!", page)
        pid = c.pid()
        self.assertEqual(h.proc_ids(pid)[0], 0)
        workers = h.children(pid)
        self.assertTrue(workers)
        self.assertEqual({h.proc_ids(w)[1] for w in workers}, {WWW_DATA})
        c.proc.stop()

    def test_nginx_serves_the_site_mounted_on_sites_enabled(self):
        sites = os.path.join(self.tmp, "sites-enabled")
        os.makedirs(sites, exist_ok=True)
        with open(os.path.join(sites, "default.conf"), "w") as f:
            f.write('server {\n  listen 80;\n  location / { return 200 "web ok\\n"; }\n}\n')
        ns = self.netns()
        c = self.start("nginx", ns, binds=[(sites, "/etc/nginx/sites-enabled")])
        h.wait_serving(ns, 80, c)
        r = ns.run("curl", "-sS", "--max-time", "5", "http://127.0.0.1/api/x")
        self.assertEqual(r.stdout, "web ok\n")
        c.proc.stop()

    def test_busybox_fetches_from_nginx(self):
        ns = self.netns()
        web = self.start("nginx", ns)
        h.wait_serving(ns, 80, web)
        client = h.Container(self.images["busybox"], self.tmp, netns=ns,
                             args=["sh", "-c", "wget -q -O - http://127.0.0.1/ && id -u"])
        self.addCleanup(client.cleanup)
        self.assertEqual(client.run(), 0, client.proc.describe())
        self.assertIn("Welcome to nginx!", "\n".join(client.proc.lines))
        self.assertEqual(client.proc.lines[-1], "0")
        web.proc.stop()

    def test_redis_default_cmd_answers_ping_from_another_address(self):
        # Not from loopback: the redis image's protected mode is off, as the real one's.
        ns = self.netns()
        ns.add_address("192.0.2.10/32")
        c = self.start("redis", ns)
        h.wait_serving(ns, 6379, c)
        r = ns.run("redis-cli", "-h", "192.0.2.10", "-p", "6379", "ping")
        self.assertEqual(r.stdout.strip(), "PONG", r.stderr)
        self.assertEqual(h.proc_ids(c.pid()), [REDIS] * 4)
        c.proc.stop()

    def test_redis_takes_the_demo_args(self):
        ns = self.netns()
        c = self.start("redis", ns, args=["--port", "6380", "--save", "",
                                          "--requirepass", "s3cret"])
        h.wait_serving(ns, 6380, c)
        ping = ["redis-cli", "-p", "6380", "ping"]
        self.assertIn("NOAUTH", ns.run(*ping).stdout)
        r = ns.run("env", "REDISCLI_AUTH=s3cret", *ping)
        self.assertEqual(r.stdout.strip(), "PONG", r.stderr)
        c.proc.stop()

    def test_demo_api_counts_hits_in_redis(self):
        ns = self.netns()
        greeting = os.path.join(self.tmp, "greeting")
        os.makedirs(greeting, exist_ok=True)
        with open(os.path.join(greeting, "greeting"), "w") as f:
            f.write("hello from an image")
        db = self.start("redis", ns, args=["--save", "", "--requirepass", "pw"])
        h.wait_serving(ns, 6379, db)
        # localhost: the image's /etc/hosts and nsswitch.conf resolve it.
        api = self.start("demo-api", ns, binds=[(greeting, "/etc/demo")], env=[
            ("PORT", "8080"), ("REDIS_HOST", "localhost"), ("REDIS_PASSWORD", "pw"),
            ("GREETING_FILE", "/etc/demo/greeting"), ("HOSTNAME", "api-0")])
        h.wait_serving(ns, 8080, api)
        url = "http://127.0.0.1:8080/api/hits"
        hits = [json.loads(ns.run("curl", "-sS", "--max-time", "5", url).stdout)
                for _ in range(2)]
        self.assertEqual([x["hits"] for x in hits], [1, 2])
        self.assertEqual(hits[0]["greeting"], "hello from an image")
        self.assertEqual(h.proc_ids(api.pid()), [10001] * 4)
        # PID 1 of its container, whose default SIGTERM action the kernel skips: the demo api
        # handles the signal, so a pod deletion does not wait out the grace period.
        self.assertEqual(api.terminate(), 0, api.proc.describe())
        db.proc.stop()


if __name__ == "__main__":
    h.main("tools/kubesim/lpk-kubesim-demo-api")

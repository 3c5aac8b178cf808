#!/usr/bin/python3
"""lpk.yaml and the JSON forms (issue 13, items 1 and 8) against kubesim's demo.

- A folder holding only lpk.yaml: `kubectl lpk connect` (the plugin link on PATH, no flags at
  all) run from a sub-folder connects the service the file names, with its ports and command;
  its env overrides resolve to lpk's addresses of the services and to an imported file.
- `lpk-proxy init` on the demo's api writes a file that `config validate` accepts and that
  `connect` runs as is, here with `--output json` (every stdout line a JSON object) and
  `--log-format json` (every log line a JSON object); status, env and diagnostics
  `--output json` give their documented fields (docs/json-output.md).
- `config validate` prints each error of a broken file with its line and column, exit 1.
Needs root (kubesim)."""

import json
import os
import signal
import subprocess

import yaml  # Debian's python3-yaml

import lpk_e2e as e2e
from connect_case import ConnectCase, HERE, LOCAL_API, main

SCHEMA = os.path.join(HERE, "..", "..", "docs", "lpk.schema.json")
TYPES = {"object": dict, "array": list, "string": str, "integer": int, "boolean": bool}


def schema_problems(value, schema, root, where="lpk.yaml"):
    """What `value` breaks of the schema's structure (keys, required, types; no patterns):
    python3-jsonschema is not on the machine, and the file's shape is what drifts."""
    if "$ref" in schema:
        schema = root["$defs"][schema["$ref"].rsplit("/", 1)[1]]
    if "oneOf" in schema:
        if all(schema_problems(value, s, root, where) for s in schema["oneOf"]):
            return [f"{where}: matches none of its forms"]
        return []
    kinds = schema.get("type", [])
    kinds = [kinds] if isinstance(kinds, str) else kinds
    if kinds and not isinstance(value, tuple(TYPES.get(k, object) for k in kinds)):
        return [f"{where}: {type(value).__name__} is not {kinds}"]
    problems = []
    if isinstance(value, dict):
        known = schema.get("properties", {})
        problems += [f"{where}: missing {k}" for k in schema.get("required", []) if k not in value]
        for k, v in value.items():
            sub = known.get(k, schema.get("additionalProperties", {}))
            if sub is False:
                problems.append(f"{where}: unknown key {k}")
            elif isinstance(sub, dict):
                problems += schema_problems(v, sub, root, f"{where}.{k}")
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            problems += schema_problems(v, schema["items"], root, f"{where}[{i}]")
    return problems

STATUS_FIELDS = {"service", "namespace", "workload", "container", "pid", "child", "dns", "files",
                 "route", "replaced", "services", "tunnels"}
DIAGNOSTICS_FIELDS = STATUS_FIELDS | {"routes", "mounts", "address_slot", "log_dir",
                                      "session_dir", "dns_table_services"}


class ProjectFile(ConnectCase):
    def proxy_path(self):
        return os.path.abspath(e2e.PROXY)

    def start(self, argv, cwd, env=None, service="api"):
        """Like ConnectCase.connect, for any command line run in `cwd`."""
        self.addCleanup(self.assert_restored, self.deployment(service), service, "demo")
        proxy = e2e.Proc(argv, name=" ".join(argv[:2]), env=env or self.env, cwd=cwd)
        self.addCleanup(proxy.stop, signal.SIGTERM, 150)
        proxy.logs.append(os.path.join(self.sim.dir, "pods", "demo_*", "*.log"))
        return proxy

    def lpk(self, *args, cwd=None):
        return subprocess.run([self.proxy_path(), *args], capture_output=True, text=True,
                              env=self.env, cwd=cwd, timeout=90)

    def test_kubectl_lpk_connect_from_a_sub_folder_follows_lpk_yaml(self):
        link = os.path.join(os.path.dirname(self.proxy_path()), "kubectl-lpk")
        if not os.access(link, os.X_OK):
            self.skipTest(f"{link} is not built (the lpk-proxy target makes it)")
        repo = os.path.join(self.tmp, "repo")
        sub = os.path.join(repo, "src", "deep")
        os.makedirs(sub)
        port = e2e.free_port()
        with open(os.path.join(repo, "lpk.yaml"), "w") as f:
            f.write(f"""# the demo's api, run here
namespace: demo
kubeconfig: {self.sim.kubeconfig}
envFile: api.env
files:
  skip: [/var/run/secrets]
env:
  REDIS_HOST: "${{service:redis}}"
services:
  - name: api
    ports: ["{port}:8080"]
    run: ["/usr/bin/python3", "{LOCAL_API}", "{port}"]
    env:
      WEB_ADDR: "${{service:web.demo:80}}"
      GREETING_COPY: "${{files:/etc/demo/greeting}}"
      LITERAL: "$${{not a token}}"
""")
        with open(SCHEMA) as f:
            schema = json.load(f)
        with open(os.path.join(repo, "lpk.yaml")) as f:
            self.assertEqual(schema_problems(yaml.safe_load(f), schema, schema), [])
        env = dict(self.env, PATH=os.path.dirname(link) + ":" + os.environ["PATH"])
        proxy = self.start(["kubectl", "lpk", "connect"], cwd=sub, env=env)
        lines = e2e.PROXY_LINES
        self.assertEqual(proxy.wait_line(lines["project_file"], timeout=20).group(1),
                         os.path.join(repo, "lpk.yaml"))
        proxy.wait_line(lines["ready"], timeout=150)
        self.assertEqual(proxy.wait_line(lines["tunnels"]).groups(), ("2", "2"))
        e2e.wait_port("127.0.0.1", port, timeout=20)  # the file's run command, on its port
        addresses = {(m.group(1), m.group(2)): m.group(3)
                     for m in proxy.matching(lines["service"])}
        web, redis = addresses[("web", "demo")], addresses[("redis", "demo")]

        # The env file (envFile, relative to lpk.yaml's folder) holds the overrides, resolved.
        with open(os.path.join(repo, "api.env")) as f:
            dotenv = f.read()
        self.assertIn(f'WEB_ADDR="{web}:80"\n', dotenv)
        self.assertIn(f'REDIS_HOST="{redis}"\n', dotenv)
        self.assertIn('LITERAL="\\${not a token}"\n', dotenv)
        greeting = [l for l in dotenv.splitlines() if l.startswith("GREETING_COPY=")]
        self.assertEqual(len(greeting), 1, dotenv)
        with open(greeting[0].split("=", 1)[1].strip('"')) as f:
            self.assertEqual(f.read().strip(), "hello from kubesim")

        # files.skip: the service account's files stay in the cluster, the configMap's come.
        skipped = [m.group(1) for m in proxy.matching(lines["not_imported"])
                   if m.group(2) == "skipped"]
        self.assertTrue(skipped, proxy.describe())
        self.assertTrue(all(p.startswith("/var/run/secrets/") for p in skipped), skipped)
        files_root = proxy.wait_line(lines["environment"]).group(5)
        self.assertFalse(os.path.exists(os.path.join(files_root, "var", "run", "secrets")))
        self.assertTrue(os.path.exists(os.path.join(files_root, "etc", "demo", "greeting")))

        # web -> api's agents -> the local api the file's command started, on the file's port.
        r = subprocess.run(["curl", "-sSf", "-m", "20", f"http://{web}/api/hits"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr + proxy.describe())
        self.assertEqual(json.loads(r.stdout)["served_by"], "lpk-local-process")
        result = self.status()
        self.assertEqual(result["service"], "api")
        self.assertIn(LOCAL_API, result["child"]["command"])

    def test_init_writes_a_file_that_validates_and_connect_runs_as_is(self):
        folder = os.path.join(self.tmp, "init")
        os.makedirs(folder)
        r = self.lpk("init", "--service", "api", "-n", "demo", "--kubeconfig",
                     self.sim.kubeconfig, cwd=folder)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        path = os.path.join(folder, "lpk.yaml")
        with open(path) as f:
            text = f.read()
        self.assertIn("namespace: demo\n", text)
        self.assertIn("  - name: api\n", text)
        self.assertIn("    container: api\n", text)
        self.assertIn('      - "8080:8080"', text)
        again = self.lpk("init", "--service", "api", "-n", "demo", "--kubeconfig",
                         self.sim.kubeconfig, cwd=folder)
        self.assertEqual(again.returncode, 1)
        self.assertIn("--force", again.stderr)
        with open(SCHEMA) as f:
            schema = json.load(f)
        self.assertEqual(schema_problems(yaml.safe_load(text), schema, schema), [])
        self.assertTrue(schema_problems({"services": [{"name": "api", "prots": [1]}]}, schema,
                                        schema))  # the check itself can fail
        valid = self.lpk("config", "validate", cwd=folder)
        self.assertEqual((valid.returncode, valid.stdout), (0, f"{path}: ok (1 service)\n"),
                         valid.stderr)

        proxy = self.start([self.proxy_path(), "connect", "--kubeconfig", self.sim.kubeconfig,
                            "--output", "json", "--log-format", "json"], cwd=folder)
        proxy.wait_line(r'^\{"event":"ready"', timeout=150)
        events = [json.loads(line) for line in proxy.lines]  # every line is one JSON object
        for e in events:
            self.assertEqual(set(e), {"event", "text", "values"}, e)
        first = events[0]
        self.assertEqual((first["event"], first["values"]), ("project_file", [path]))
        self.assertIn("progress", {e["event"] for e in events})
        service = [e["values"] for e in events if e["event"] == "service"]
        self.assertIn(["api", "demo"], [v[:2] for v in service])
        tunnels = [e["values"] for e in events if e["event"] == "tunnels"]
        self.assertEqual(tunnels, [[2, 2]])
        log_dir = self.check_session_json()
        # The log file is complete once the session has ended (spdlog flushes on warnings).
        proxy.stop(signal.SIGTERM, 150)
        with open(os.path.join(log_dir, "proxy.log"), "rb") as f:
            logs = [json.loads(line) for line in f.read().splitlines()]
        self.assertTrue(logs)
        for entry in logs:
            self.assertEqual(set(entry), {"ts", "level", "msg"}, entry)
            self.assertRegex(entry["ts"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

    def check_session_json(self):
        """status, env and diagnostics --output json of the running session: their fields.
        Returns the session's log folder."""
        status = json.loads(self.lpk("status", "--output", "json").stdout)
        self.assertEqual(set(status), STATUS_FIELDS)
        self.assertEqual((status["service"], status["namespace"], status["container"]),
                         ("api", "demo", "api"))
        self.assertRegex(status["dns"]["address"], r"^127\.[0-9.]+:[0-9]+$")
        self.assertEqual({t["state"] for t in status["tunnels"]}, {"ready"})
        for t in status["tunnels"]:
            self.assertLessEqual({"pod", "drops", "rtt_ms", "streams", "bytes_sent"}, set(t))
        redis = [s for s in status["services"] if s["name"] == "redis"]
        self.assertEqual(redis[0]["ports"], [6379])
        env = json.loads(self.lpk("env", "--json").stdout)
        self.assertEqual(set(env), {"env", "from"})
        self.assertEqual(env["env"]["REDIS_PASSWORD"], "demo-s3cret")
        self.assertTrue(env["from"].startswith("api-"), env)
        diagnostics = json.loads(self.lpk("diagnostics", "--output=json").stdout)
        self.assertEqual(set(diagnostics), DIAGNOSTICS_FIELDS)
        self.assertIn({"service": "api", "service_port": 8080, "container_port": 8080,
                       "name": "http"}, diagnostics["routes"])
        bad = self.lpk("status", "--output", "yaml")
        self.assertEqual(bad.returncode, 2)
        self.assertIn("--output wants json or text", bad.stderr)
        return diagnostics["log_dir"]

    def test_validate_prints_each_error_with_its_line(self):
        path = os.path.join(self.tmp, "broken.yaml")
        with open(path, "w") as f:
            f.write("namespace: Demo\nservices:\n  - name: api\n    ports: [70000]\n"
                    "    env:\n      X: \"${nope:1}\"\n")
        r = self.lpk("config", "validate", path)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(len(lines), 3, r.stdout)
        self.assertTrue(lines[0].startswith(f"{path}:1:12: namespace: "), lines[0])
        self.assertTrue(lines[1].startswith(f"{path}:4:13: services[0].ports[0]: "), lines[1])
        self.assertTrue(lines[2].startswith(f"{path}:6:10: services[0].env.X: "), lines[2])
        # doctor's JSON form, by its long name (test_doctor.py checks what each check says).
        doctor = self.lpk("doctor", "--output", "json", "--service", "api", "-n", "demo",
                          "--kubeconfig", self.sim.kubeconfig)
        checks = json.loads(doctor.stdout)
        self.assertIn(doctor.returncode, (0, 1), doctor.stderr)
        self.assertEqual(doctor.returncode, 0 if all(c["ok"] for c in checks) else 1)
        for c in checks:
            self.assertEqual({k: type(v) for k, v in c.items()},
                             {"name": str, "ok": bool, "detail": str, "fix": str})
        self.assertIn("permission pods/portforward", {c["name"] for c in checks})
        refused = self.lpk("connect", "--config", path)
        self.assertEqual(refused.returncode, 2)
        self.assertIn(f"{path}:1:12: ", refused.stderr)


if __name__ == "__main__":
    main()

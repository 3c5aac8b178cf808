#!/usr/bin/python3
"""`lpk-proxy ide vscode` (issue 13, item 3) against kubesim's demo.

The files it writes carry the fields VS Code's schemas require (tasks.json: "version" 2.0.0;
each task "label", and "type" and "command" for a process task; each input "id", "type",
"command"; launch.json: each configuration "type", "request", "name"), the connect task is a
background task whose matcher ends on connect's `ready` line, and the launch configuration's
preLaunchTask/postDebugTask/envFile name what the tasks define. Merging keeps the user's other
entries and top-level keys and replaces only lpk's; a file with comments is refused and left as
it was. Then the task's own command line (with ${workspaceFolder} substituted) runs against
kubesim, prints `ready` and writes the env file the launch reads; closing it as VS Code's
terminate does (SIGHUP) restores the service, and the end task's command line exits 0.
Needs root (kubesim)."""

import json
import os
import re
import signal
import subprocess
import tempfile

import lpk_e2e as e2e
from connect_case import ConnectCase, main


def expect_fields(test, obj, fields):
    for f in fields:
        test.assertIn(f, obj, f"{f} missing in {obj}")


def by_key(entries, key):
    return {e[key]: e for e in entries}


class Ide(ConnectCase):
    def ide(self, project, *args, check=True):
        r = subprocess.run([e2e.PROXY, "ide", "vscode", "--service", "api", "-n", "demo",
                            "--kubeconfig", self.sim.kubeconfig, "--dir", project, *args],
                           capture_output=True, text=True, env=self.env, timeout=30)
        if check:
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r

    def project(self, tasks=None, launch=None):
        """A project folder, with these .vscode files already in it."""
        d = tempfile.mkdtemp(dir=self.tmp, prefix="project-")
        os.makedirs(os.path.join(d, ".vscode"))
        for name, content in (("tasks.json", tasks), ("launch.json", launch)):
            if content is not None:
                with open(os.path.join(d, ".vscode", name), "w") as f:
                    f.write(content if isinstance(content, str) else json.dumps(content))
        return d

    def load(self, project, name):
        with open(os.path.join(project, ".vscode", name)) as f:
            return json.load(f)

    def test_files_meet_the_schemas_and_merge(self):
        user_task = {"label": "build", "type": "shell", "command": "make"}
        user_launch = {"name": "plain", "type": "node", "request": "launch", "program": "a.js"}
        project = self.project(tasks={"version": "2.0.0", "tasks": [user_task],
                                      "options": {"env": {"A": "1"}}},
                               launch={"version": "0.2.0", "configurations": [user_launch]})
        self.ide(project)
        self.ide(project)  # twice: nothing doubles
        tasks, launch = self.load(project, "tasks.json"), self.load(project, "launch.json")
        self.assertEqual(tasks["version"], "2.0.0")
        self.assertEqual(tasks["options"], {"env": {"A": "1"}})
        named = by_key(tasks["tasks"], "label")
        self.assertEqual(len(named), len(tasks["tasks"]))
        self.assertEqual(named["build"], user_task)
        for t in tasks["tasks"]:
            expect_fields(self, t, ["label", "type"] + (["command"] if t["type"] == "process"
                                                        else []))
        for i in tasks["inputs"]:
            expect_fields(self, i, ["id", "type", "command"])
        configs = by_key(launch["configurations"], "name")
        self.assertEqual(configs["plain"], user_launch)
        debug = configs["lpk: debug api"]
        expect_fields(self, debug, ["type", "request", "name"])
        self.assertIn(debug["preLaunchTask"], named)
        self.assertIn(debug["postDebugTask"], named)
        connect = named[debug["preLaunchTask"]]
        self.assertTrue(connect["isBackground"])
        self.assertIn(debug["envFile"], connect["args"])

    def test_a_file_with_comments_is_left_alone(self):
        text = '{\n  // mine\n  "version": "2.0.0", "tasks": []\n}\n'
        project = self.project(tasks=text)
        r = self.ide(project, check=False)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertEqual(len(r.stderr.strip().split("\n")), 1, r.stderr)
        self.assertIn("comments", r.stderr)
        with open(os.path.join(project, ".vscode", "tasks.json")) as f:
            self.assertEqual(f.read(), text)

    def test_tasks_start_and_end_a_session(self):
        project = self.project()
        self.ide(project)
        tasks = by_key(self.load(project, "tasks.json")["tasks"], "label")
        debug = self.load(project, "launch.json")["configurations"][0]
        expand = lambda s: s.replace("${workspaceFolder}", project)  # noqa: E731
        connect = tasks[debug["preLaunchTask"]]
        self.addCleanup(self.assert_restored, self.deployment("api"), "api")
        proxy = e2e.Proc([expand(connect["command"])] + [expand(a) for a in connect["args"]],
                         name="lpk-proxy connect (the IDE task)", env=self.env)
        self.addCleanup(proxy.stop, signal.SIGTERM, 150)
        # The task's own matcher says when VS Code would start the debugger.
        proxy.wait_line(connect["problemMatcher"]["background"]["endsPattern"], timeout=180)
        with open(expand(debug["envFile"])) as f:
            # dotenv: NAME="value"
            env = dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)
        env = {name: value.strip('"') for name, value in env.items()}
        self.assertIn("REDIS_SERVICE_HOST", env)
        self.assertTrue(re.match(r"^127\.", env["REDIS_SERVICE_HOST"]), env)
        # VS Code ends a task by closing its terminal: SIGHUP. lpk restores and exits 0.
        proxy.stop(signal.SIGHUP, 150)
        end = tasks[debug["postDebugTask"]]
        r = subprocess.run([expand(end["command"])] + [expand(a) for a in end["args"]],
                           capture_output=True, text=True, env=self.env, timeout=200)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


if __name__ == "__main__":
    main()

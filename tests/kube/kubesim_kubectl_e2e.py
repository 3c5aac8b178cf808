#!/usr/bin/python3
"""kubectl commands beyond create/apply/get against kubesim, each as a real cluster answers
them: rollout history and undo, describe pod, get -w, patch --type=json, and server-side
apply with field managers, conflicts and --force-conflicts.
Usage: kubesim_kubectl_e2e.py /path/to/lpk-kubesim [unittest args]
kubesim runs with --no-runtime (no root). Exits 77 when every test was skipped (no kubectl)."""

import json
import os
import re
import selectors
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kubesim_controllers_e2e as ctl  # noqa: E402  (its Kubesim, namespaces and helpers)

if __name__ == "__main__" and len(sys.argv) > 1:
    ctl.KUBESIM = sys.argv.pop(1)
e2e, TIMEOUT = ctl.e2e, ctl.TIMEOUT

SSA_DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {{name: ssa, namespace: {ns}, labels: {{owner: {owner}}}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: ssa}}}}
  template:
    metadata: {{labels: {{app: ssa}}}}
    spec:
      containers: [{{name: app, image: "nginx:1"}}]
"""


@unittest.skipUnless(ctl.KUBESIM and ctl.KUBECTL,
                     "needs lpk-kubesim (argument) and kubectl on PATH")
class KubectlCommandsTest(ctl.KubesimTestCase):

    def image(self, name):
        d = self.sim.get("-n", self.ns, "deployment/" + name)
        return d["spec"]["template"]["spec"]["containers"][0]["image"]

    # Two template changes make revisions 1..3; undo goes back one, --to-revision=1 to the
    # first template, each rollout completing.
    def test_rollout_history_and_undo(self):
        self.apply(ctl.deployment("hist", self.ns))
        self.rollout("deployment/hist")
        for tag in ("2", "3"):
            self.k("set", "image", "deployment/hist", f"app=nginx:{tag}")
            self.rollout("deployment/hist")
        out = self.k("rollout", "history", "deployment/hist").stdout
        revs = [line.split()[0] for line in out.splitlines()[2:] if line.strip()]
        self.assertEqual(revs, ["1", "2", "3"], out)
        r2 = self.k("rollout", "history", "deployment/hist", "--revision=2").stdout
        self.assertIn("nginx:2", r2)
        self.k("rollout", "undo", "deployment/hist")
        self.rollout("deployment/hist")
        self.assertEqual(self.image("hist"), "nginx:2")
        self.k("rollout", "undo", "deployment/hist", "--to-revision=1")
        self.rollout("deployment/hist")
        d = self.sim.get("-n", self.ns, "deployment/hist")
        self.assertEqual(d["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1")
        self.assertEqual(d["spec"]["template"]["metadata"]["labels"], {"app": "hist"})
        # The set of revision 1 is current again, under a new revision number (4 then 5).
        rs = self.replicasets("hist")
        cur = [s for s in rs if s["spec"]["replicas"] == 1]
        self.assertEqual(len(cur), 1)
        self.assertEqual(cur[0]["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1")
        self.assertEqual(cur[0]["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
                         "5")
        r = self.k("rollout", "undo", "deployment/hist", "--to-revision=9", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("unable to find specified revision 9", r.stderr)

    def test_describe_pod_shows_containers_and_events(self):
        self.apply(ctl.deployment("desc", self.ns, image="nginx:7"))
        self.rollout("deployment/desc")
        [pod] = self.pods("desc")
        name = pod["metadata"]["name"]
        # The scheduler's event is written just after the binding; wait for it to be there.
        self.sim.watch_until(["-n", self.ns, "events", "--field-selector",
                              "involvedObject.name=" + name], "{.reason}",
                             lambda line: line == "Scheduled")
        out = self.k("describe", "pod", name).stdout
        self.assertIn(f"Name:             {name}", out)
        self.assertRegex(out, r"Containers:\n  app:\n")
        self.assertRegex(out, r"Image:\s+nginx:7")
        self.assertRegex(out, r"Events:\n  Type\s+Reason\s+Age\s+From\s+Message")
        self.assertRegex(out, r"Normal\s+Scheduled\s+.*default-scheduler\s+Successfully assigned")

    # A watch started before a change prints a line for it.
    def test_get_watch_prints_later_changes(self):
        self.apply(ctl.deployment("w", self.ns))
        p = subprocess.Popen(self.sim.cmd("-n", self.ns, "get", "deployment", "-w",
                                          "--output-watch-events", "-L", "later"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines, buf = [], ""
        sel = selectors.DefaultSelector()
        sel.register(p.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + TIMEOUT
        changed = False
        try:
            # Until the DELETED line is whole: kubectl may write a line in more than one piece.
            while ((left := deadline - time.monotonic()) > 0 and
                   not re.search(r"^DELETED .*\n", buf, re.M)):
                if not sel.select(left):
                    continue
                chunk = os.read(p.stdout.fileno(), 65536).decode()
                if not chunk:
                    break
                buf += chunk
                if not changed and "ADDED" in buf:
                    # The initial list has been printed: now a change and a deletion.
                    self.k("label", "deployment/w", "later=yes")
                    self.k("delete", "deployment/w", "--wait=false")
                    changed = True
        finally:
            p.kill()
            _, err = p.communicate()
            sel.close()
        # EVENT NAME READY UP-TO-DATE AVAILABLE AGE LATER; the event, name and label matter.
        lines = [(ln.split()[:2], ln.split()[-1]) for ln in buf.splitlines() if ln.strip()]
        self.assertEqual(lines[0], (["EVENT", "NAME"], "LATER"), (buf, err))
        self.assertEqual(lines[1][0], ["ADDED", "w"], (buf, err))
        # The label, set after the watch started, arrives as a MODIFIED event.
        self.assertIn((["MODIFIED", "w"], "yes"), lines, (buf, err))
        self.assertEqual(lines[-1], (["DELETED", "w"], "yes"), (buf, err))

    def test_patch_json(self):
        self.apply(ctl.deployment("jp", self.ns))
        ops = [{"op": "add", "path": "/metadata/labels", "value": {"tier": "web"}},
               {"op": "replace", "path": "/spec/replicas", "value": 3},
               {"op": "add", "path": "/spec/template/spec/containers/0/env",
                "value": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
               {"op": "remove", "path": "/spec/template/spec/containers/0/env/0"}]
        self.k("patch", "deployment/jp", "--type=json", "-p", json.dumps(ops))
        d = self.sim.get("-n", self.ns, "deployment/jp")
        self.assertEqual(d["metadata"]["labels"], {"tier": "web"})
        self.assertEqual(d["spec"]["replicas"], 3)
        self.assertEqual(d["spec"]["template"]["spec"]["containers"][0]["env"],
                         [{"name": "B", "value": "2"}])
        # A failing test op refuses the whole patch: nothing changes.
        ops = [{"op": "replace", "path": "/spec/replicas", "value": 5},
               {"op": "test", "path": "/spec/replicas", "value": 4}]
        r = self.k("patch", "deployment/jp", "--type=json", "-p", json.dumps(ops), check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("testing value /spec/replicas failed", r.stderr)
        self.assertEqual(self.sim.get("-n", self.ns, "deployment/jp")["spec"]["replicas"], 3)
        r = self.k("patch", "deployment/jp", "--type=json", "-p",
                   json.dumps([{"op": "remove", "path": "/spec/nothere"}]), check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("nothere", r.stderr)

    def ssa(self, manager, owner, replicas, *extra, check=True):
        return self.k("apply", "--server-side", "--field-manager", manager, *extra, "-f", "-",
                      input=SSA_DEPLOYMENT.format(ns=self.ns, owner=owner, replicas=replicas),
                      check=check)

    def managers(self):
        d = self.sim.get("-n", self.ns, "deployment/ssa", "--show-managed-fields")
        return {m["manager"]: m for m in d["metadata"].get("managedFields", [])}, d

    def test_server_side_apply_conflicts_and_force(self):
        r = self.ssa("team-a", "a", 2)
        self.assertIn("deployment.apps/ssa serverside-applied", r.stdout)
        mf, d = self.managers()
        self.assertEqual(d["spec"]["replicas"], 2)
        self.assertEqual(mf["team-a"]["operation"], "Apply")
        self.assertEqual(mf["team-a"]["fieldsType"], "FieldsV1")
        self.assertIn("f:replicas", mf["team-a"]["fieldsV1"]["f:spec"])
        # The same values from another manager are shared, not a conflict.
        self.ssa("team-b", "a", 2)
        # Another manager changing fields team-a owns is refused, naming them.
        r = self.ssa("team-c", "c", 5, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("conflict", r.stderr)
        # Both owners of each field (team-b shares them) are named, managers sorted.
        self.assertIn('Apply failed with 4 conflicts: conflicts with "team-a":\n'
                      '- .metadata.labels.owner\n- .spec.replicas\n'
                      'conflicts with "team-b":\n- .metadata.labels.owner\n- .spec.replicas',
                      r.stderr)
        self.assertEqual(self.managers()[1]["spec"]["replicas"], 2)
        # --force-conflicts takes the fields over.
        self.ssa("team-c", "c", 5, "--force-conflicts")
        mf, d = self.managers()
        self.assertEqual((d["spec"]["replicas"], d["metadata"]["labels"]["owner"]), (5, "c"))
        self.assertIn("f:replicas", mf["team-c"]["fieldsV1"]["f:spec"])
        self.assertNotIn("f:replicas", mf["team-a"]["fieldsV1"]["f:spec"])
        self.assertNotIn("f:replicas", mf["team-b"]["fieldsV1"]["f:spec"])
        # Now team-a is the one refused.
        r = self.ssa("team-a", "a", 2, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('conflicts with "team-c"', r.stderr)
        # A manager that stops applying a field it alone owned removes it.
        self.k("apply", "--server-side", "--field-manager", "labeller", "-f", "-",
               input=json.dumps({"apiVersion": "apps/v1", "kind": "Deployment",
                                 "metadata": {"name": "ssa", "labels": {"extra": "1"}}}))
        self.assertEqual(self.managers()[1]["metadata"]["labels"].get("extra"), "1")
        self.k("apply", "--server-side", "--field-manager", "labeller", "-f", "-",
               input=json.dumps({"apiVersion": "apps/v1", "kind": "Deployment",
                                 "metadata": {"name": "ssa"}}))
        mf, d = self.managers()
        self.assertNotIn("extra", d["metadata"]["labels"])
        self.assertEqual(d["metadata"]["labels"]["owner"], "c")
        self.assertLessEqual({"team-a", "team-b", "team-c"}, set(mf))
        # A plain patch makes its manager (kubectl's default, operation Update) the owner.
        self.k("patch", "deployment/ssa", "-p", '{"spec":{"replicas":7}}')
        mf, _ = self.managers()
        self.assertEqual(mf["kubectl-patch"]["operation"], "Update")
        self.assertIn("f:replicas", mf["kubectl-patch"]["fieldsV1"]["f:spec"])
        self.assertNotIn("f:replicas", mf["team-c"]["fieldsV1"]["f:spec"])
        r = self.ssa("team-c", "c", 5, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertRegex(r.stderr, r'Apply failed with 1 conflict: conflict with "kubectl-patch" '
                                   r'using apps/v1 at \S+Z: \.spec\.replicas')
        self.assertNotIn("f:labels", mf.get("labeller", {}).get("fieldsV1", {}).get(
            "f:metadata", {}))
        self.rollout("deployment/ssa")


if __name__ == "__main__":
    e2e.run_tests(sys.argv[1:])

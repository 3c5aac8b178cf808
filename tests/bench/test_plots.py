#!/usr/bin/python3
"""bench/plots.py draws every chart of a small fixture of results (tests/bench/fixture, one file
per benchmark, numbers chosen so that each ratio is known): each SVG is well-formed XML whose
text names the series, shows the ratios to the peers of the same run, and carries the run's date
and machine. No network, no build: only matplotlib, and exit 77 (skipped, reason printed) when
/usr/bin/python3 has none."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PLOTS = os.path.join(ROOT, "bench", "plots.py")
FIXTURE = os.path.join(HERE, "fixture")
SVG = "{http://www.w3.org/2000/svg}"
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

TUNNEL = ["raw loopback", "socat", "ssh -L", "lpk"]
PORTFORWARD = ["python client, WebSocket per connection", "C++ WebSocket per connection",
               "lpk (one WebSocket, tunnel)"]
# chart -> (series named in its legend, series it must not name, ratio labels, run facts)
EXPECTED = {
    "tunnel-throughput": (TUNNEL, ["2 socats"], ["2.00x", "1.50x", "0.30x", "1.75x"],
                          ["2026-01-02T03:04:05Z", "Fixture CPU", "6.0.0-fixture"]),
    "tunnel-latency": (TUNNEL, ["2 socats"], ["0.50x", "1.17x"], ["2026-01-02T03:04:05Z"]),
    "tunnel-stream-open": (TUNNEL, [], ["2.67x", "133.33x"], ["2026-01-02T03:04:05Z"]),
    "tunnel-stream-rate": (TUNNEL, [], ["2.50x", "10.00x"], ["2026-01-02T03:04:05Z"]),
    "tunnel-idle-memory": (TUNNEL[1:], ["raw loopback"], ["30.00x", "13.60x"],
                           ["2026-01-02T03:04:05Z"]),
    "dns-qps": (["dnsmasq", "lpk-dns"], [], ["1.50x", "2.00x"], ["2026-01-03", "6.0.0-fixture"]),
    "dns-latency": (["dnsmasq", "lpk-dns"], [], ["0.50x"], ["2026-01-03"]),
    "portforward-download": (PORTFORWARD, [], ["1.25x", "2.00x"], ["2026-01-04T05:06:07Z"]),
    "portforward-first-byte": (PORTFORWARD, [], ["16.00x", "10.00x"], ["2026-01-04T05:06:07Z"]),
    "resume": (["p50", "p99", "max"], [], [], ["2026-01-05T06:07:08Z", "3 CPUs"]),
    "kubesim-rollout": (["host binary", "containers (crun)"], [], ["0.67x"],
                        ["2026-01-06T07:08:09Z"]),
    "router-rate": (["nginx direct", "HAProxy (mode http)", "lpk-agent router"], [],
                    ["0.80x", "1.25x"], ["2026-01-07T08:09:10Z", "2 CPUs"]),
    "router-kubesim-rate": (["straight to the pods", "through lpk's router"], [], ["0.80x"],
                            ["2026-01-07T08:09:10Z", "3 CPUs", "1 TCP connection(s) for 2000"]),
    "router-kubesim-latency": (["straight to the pods", "through lpk's router"], [], ["0.50x"],
                               ["2026-01-07T08:09:10Z"]),
}


def skip_reason():
    probe = subprocess.run([PYTHON, PLOTS, "--check"], capture_output=True, text=True)
    return probe.stderr.strip() if probe.returncode else None


def plots(*args):
    return subprocess.run([PYTHON, PLOTS, *args], capture_output=True, text=True, timeout=120)


def texts(path):
    """Every text line drawn in the SVG (the file must parse as XML)."""
    root = ET.parse(path).getroot()
    assert root.tag == SVG + "svg", f"{path}: root element is {root.tag}"
    return {"".join(t.itertext()).strip() for t in root.iter(SVG + "text")}


class PlotsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.out = tempfile.mkdtemp(prefix="lpk-plots-test-")
        cls.rendered = plots("--results", FIXTURE, "--out", cls.out)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.out, ignore_errors=True)

    def test_every_chart_is_written(self):
        self.assertEqual(self.rendered.returncode, 0, self.rendered.stderr)
        self.assertEqual(sorted(os.listdir(self.out)), sorted(f"{n}.svg" for n in EXPECTED))

    def test_charts_name_series_ratios_and_run(self):
        for name, (series, absent, ratios, facts) in EXPECTED.items():
            with self.subTest(chart=name):
                drawn = texts(os.path.join(self.out, f"{name}.svg"))
                for label in series + ratios:
                    self.assertTrue(label in drawn,
                                    f"{name}: no text '{label}' in {sorted(drawn)}")
                for label in absent:
                    self.assertNotIn(label, drawn)
                caption = " ".join(drawn)
                for fact in facts:
                    self.assertIn(fact, caption, f"{name}: the caption lacks '{fact}'")

    def test_same_results_same_bytes(self):
        # Regenerated charts change in git only when their numbers do.
        with tempfile.TemporaryDirectory(prefix="lpk-plots-again-") as again:
            self.assertEqual(plots("--results", FIXTURE, "--out", again, "resume").returncode, 0)
            with open(os.path.join(again, "resume.svg"), "rb") as a, \
                    open(os.path.join(self.out, "resume.svg"), "rb") as b:
                self.assertEqual(a.read(), b.read())

    def test_unknown_name_is_one_line(self):
        bad = plots("--results", FIXTURE, "--out", self.out, "tunel")
        self.assertEqual(bad.returncode, 2)
        self.assertIn("no charts for 'tunel'; names are tunnel, dns", bad.stderr)


if __name__ == "__main__":
    reason = skip_reason()
    if reason:
        print(f"SKIPPED: bench plots: {reason}")
        sys.exit(77)
    unittest.main()

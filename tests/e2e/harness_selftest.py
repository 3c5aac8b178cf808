#!/usr/bin/python3
"""The e2e harness's own checks, against stand-in processes (sh) instead of lpk's binaries: a
green e2e run is only worth something if a process that crashes, hangs, exits non-zero or
reports a sanitizer error during shutdown turns it red, and if a skip is never counted as a
pass."""

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import lpk_e2e as e2e  # noqa: E402


def sh(on_term, name="stand-in"):
    """A process that prints `up`, then runs `on_term` (shell) when it gets SIGTERM."""
    return e2e.Proc(["sh", "-c", f"trap '{on_term}' TERM; echo up; while :; do sleep 0.05; done"],
                    name=name)


class StopTest(unittest.TestCase):
    def started(self, on_term):
        p = sh(on_term)
        p.wait_line(r"^up$")
        return p

    def assert_stop_fails(self, p, *words, timeout=5.0):
        with self.assertRaises(AssertionError) as e:
            p.stop(timeout=timeout)
        for w in words:
            self.assertIn(w, str(e.exception))
        self.assertIn("--- stdout", str(e.exception), "the failure shows the process's output")
        self.assertFalse(p.alive())

    def test_exit_zero_on_sigterm_passes(self):
        self.assertEqual(self.started("exit 0").stop(), 0)

    def test_non_zero_exit_fails(self):
        self.assert_stop_fails(self.started("exit 3"), "exit 3")

    def test_crash_during_shutdown_fails(self):
        self.assert_stop_fails(self.started("kill -SEGV $$"), "SIGSEGV")

    def test_hang_is_killed_and_fails(self):
        self.assert_stop_fails(self.started(":"), "did not exit", "SIGKILL", timeout=0.5)

    def test_sanitizer_report_fails_despite_exit_zero(self):
        p = self.started('echo "==1==ERROR: AddressSanitizer: heap-use-after-free" >&2; exit 0')
        self.assert_stop_fails(p, "sanitizer report", "heap-use-after-free")

    def test_ended_unasked_fails_unless_collected(self):
        p = e2e.Proc(["sh", "-c", "exit 0"])
        p.p.wait()
        self.assert_stop_fails(p, "had ended before it was stopped")
        q = e2e.Proc(["sh", "-c", "exit 4"])
        self.assertEqual(q.wait_exit(), 4)  # the test saw the code and judges it
        self.assertEqual(q.stop(), 4)

    def test_leftover_process_is_killed_and_reported(self):
        p = self.started("exit 0")
        self.assertIn("left running", p.leftover())
        self.assertFalse(p.alive())
        self.assertIsNone(p.leftover())

    def test_stop_all_stops_every_process_and_names_each_failure(self):
        a, b, c = self.started("exit 5"), self.started("exit 0"), self.started("exit 6")
        with self.assertRaises(AssertionError) as e:
            e2e.stop_all(a, b, c)
        self.assertIn("exit 5", str(e.exception))
        self.assertIn("exit 6", str(e.exception))
        self.assertFalse(a.alive() or b.alive() or c.alive())


SCRIPT = """
import os, sys, unittest
sys.path.insert(0, {here!r})
import lpk_e2e as e2e

class Skipped(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        raise unittest.SkipTest("no such thing here")
    def test_a(self):
        pass

class Partly(unittest.TestCase):
    def test_skipped(self):
        self.skipTest("not today")
    def test_sub_skipped(self):
        with self.subTest("part"):
            self.skipTest("not this part")
    def test_runs(self):
        if os.environ.get("MODE") == "leak":
            e2e.Proc(["sleep", "60"])

e2e.run_tests(sys.argv[1:])
"""


class RunTestsTest(unittest.TestCase):
    """run_tests' exit codes and skip lines, from a small script of tests."""

    def run_script(self, *args, mode=""):
        with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
            f.write(SCRIPT.format(here=HERE))
        self.addCleanup(os.unlink, f.name)
        r = subprocess.run([sys.executable, f.name, *args], capture_output=True, text=True,
                           timeout=60, env=dict(os.environ, MODE=mode))
        return r.returncode, r.stdout + r.stderr

    def test_everything_skipped_is_77_with_the_reasons(self):
        rc, out = self.run_script("Skipped", "Partly.test_skipped")
        self.assertEqual(rc, e2e.SKIP_CODE, out)
        self.assertIn("SKIPPED: __main__.Skipped: no such thing here", out)
        self.assertIn("SKIPPED: __main__.Partly.test_skipped: not today", out)

    def test_a_partial_skip_passes_and_is_printed(self):
        rc, out = self.run_script()
        self.assertEqual(rc, 0, out)
        self.assertIn("SKIPPED: __main__.Skipped: no such thing here", out)
        self.assertIn("SKIPPED: __main__.Partly.test_skipped: not today", out)
        self.assertIn("SKIPPED: __main__.Partly.test_sub_skipped [part]: not this part", out)

    def test_a_test_whose_subtest_skips_still_ran(self):
        rc, out = self.run_script("Partly.test_sub_skipped")
        self.assertEqual(rc, 0, out)

    def test_a_process_left_running_fails_its_test(self):
        rc, out = self.run_script("Partly.test_runs", mode="leak")
        self.assertEqual(rc, 1, out)
        self.assertIn("was left running by the test", out)


if __name__ == "__main__":
    e2e.run_tests(sys.argv[1:])

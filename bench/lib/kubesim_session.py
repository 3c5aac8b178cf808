"""One lpk-kubesim for a bench script, and the environment of the lpk-proxy it runs against it
(bench/connect_ready.py, bench/router/kubesim.py, bench/resume.py).

    sys.path.insert(0, os.path.join(ROOT, "bench", "lib"))
    import kubesim_session
    kubesim_session.use_build(build_dir)
    with kubesim_session.running("lpk-bench-x-") as (sim, env):
        ... sim.kubectl(...), e2e.Proc([proxy, "connect", "--kubeconfig", sim.kubeconfig], env=env)

Uses the e2e harness (tests/e2e/lpk_e2e.py) and kubesim's own (tests/kubesim/e2e_kubesim.py):
Kubesim() starts `lpk-kubesim up` on a free port with its own state dir and waits for its
kubeconfig line; stop() wants exit 0 on SIGTERM."""

import contextlib
import os
import shutil
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
sys.path.insert(0, os.path.join(ROOT, "tests", "kubesim"))
import lpk_e2e as e2e  # noqa: E402
import e2e_kubesim  # noqa: E402


def use_build(build_dir):
    """Points the harness at BUILD_DIR's lpk-proxy, lpk-agent and lpk-kubesim; reads the
    console lines they print (lpk-proxy --console-lines)."""
    e2e.use_build(build_dir)
    e2e.load_console_lines()
    e2e_kubesim.KUBESIM = os.path.join(build_dir, "tools", "kubesim", "lpk-kubesim")


@contextlib.contextmanager
def running(prefix, *kubesim_args):
    """Starts lpk-kubesim (with KUBESIM_ARGS, e.g. "--manifests", DIR) and yields (sim, env):
    env is os.environ with the proxy's state, runtime and temp dirs in a fresh directory named
    PREFIX..., so that sessions of the bench touch nothing of the user's. Stops kubesim and
    removes the directory however the block ends."""
    sim = e2e_kubesim.Kubesim(*kubesim_args)
    tmp = tempfile.mkdtemp(prefix=prefix)
    env = dict(os.environ, XDG_STATE_HOME=os.path.join(tmp, "state"),
               XDG_RUNTIME_DIR=os.path.join(tmp, "run"), TMPDIR=tmp)
    try:
        yield sim, env
    finally:
        try:
            sim.stop()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

#!/usr/bin/python3
"""The bash and zsh completions of lpk-proxy (tools/package/completions) offer exactly the
commands of `lpk-proxy --help` and, for each command, exactly the flags its --help lists: a flag
added to or dropped from a command without its completion fails here. Bash is asked through the
completion function itself (COMP_WORDS, COMPREPLY); zsh through its spec builder, with zsh's
`_arguments` replaced by a function that prints what it is given."""

import os
import re
import shutil
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import lpk_e2e as e2e  # noqa: E402

COMPLETIONS = os.path.join(HERE, "..", "..", "tools", "package", "completions")
BASH = os.path.join(COMPLETIONS, "lpk-proxy.bash")
ZSH = os.path.join(COMPLETIONS, "_lpk-proxy")
# A flag: one or two dashes and a letter, not inside a word (lpk-proxy, outbound-only).
FLAG_RE = re.compile(r"(?<![\w-])(--?[A-Za-z][-A-Za-z]*)")
COMMANDS = ["connect", "status", "env", "diagnostics", "restore", "routes", "doctor", "run",
            "resolver", "ide", "init", "config"]
# Commands whose --help lists no flag (`config validate [FILE]`): nothing to complete after them.
NO_FLAGS = {"config"}
# The words before a command's flags: `ide` and `resolver` take a subcommand first.
BEFORE_FLAGS = {"ide": ["ide", "vscode"], "resolver": ["resolver", "install"],
                "config": ["config", "validate"]}


def help_flags(command):
    """The flags `lpk-proxy COMMAND --help` lists (`resolver` prints its usage when bare)."""
    argv = [e2e.PROXY, command] + ([] if command == "resolver" else ["--help"])
    r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    text = r.stdout + (r.stderr if command == "resolver" else "")
    flags = set(FLAG_RE.findall(text)) - {"--help"}
    assert bool(flags) != (command in NO_FLAGS), f"flags of `{' '.join(argv)}`: {text}"
    return flags


def bash_complete(*words):
    """What the bash completion function offers for `lpk-proxy WORDS...` (the last is the word
    being completed)."""
    script = (f'source "{BASH}"; COMP_WORDS=(lpk-proxy "$@"); COMP_CWORD=$#; _lpk_proxy; '
              'printf "%s\\n" "${COMPREPLY[@]}"; complete -p lpk-proxy kubectl-lpk')
    r = subprocess.run(["bash", "--norc", "-c", script, "bash", *words], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    registered = [l for l in lines if l.startswith("complete ")]
    assert registered == ["complete -F _lpk_proxy lpk-proxy",
                          "complete -F _lpk_proxy kubectl-lpk"], r.stdout
    return {l for l in lines if l and not l.startswith("complete ")}


ZSH_STUB = r'''
stage=0
_arguments() {
  if (( stage == 0 )); then stage=1; state=args; line=($CMD); return 0; fi
  print -rl -- "$@"
}
source "$1"
'''


def zsh_flags(command):
    """The flags the zsh completion gives `_arguments` for `lpk-proxy COMMAND`."""
    r = subprocess.run(["zsh", "-f", "-c", ZSH_STUB, "zsh", ZSH], capture_output=True, text=True,
                       timeout=10, env=dict(os.environ, CMD=command))
    assert r.returncode == 0, r.stderr
    return {m.group(1) for l in r.stdout.split("\n")
            if (m := re.match(r"(-{1,2}[A-Za-z][-A-Za-z]*)\[", l))}


class Completions(unittest.TestCase):
    def test_bash_commands_are_those_of_help(self):
        r = subprocess.run([e2e.PROXY, "--help"], capture_output=True, text=True, timeout=10)
        listed = set()
        for m in re.finditer(r"lpk-proxy ([a-z|]+)", r.stdout):
            listed |= set(m.group(1).split("|"))
        self.assertEqual(listed, set(COMMANDS))
        self.assertEqual(bash_complete(""), set(COMMANDS) | {"--help", "--version"})
        self.assertEqual(bash_complete("con"), {"connect", "config"})
        self.assertEqual(bash_complete("conn"), {"connect"})

    def test_bash_flags_are_those_of_help(self):
        for command in COMMANDS:
            with self.subTest(command=command):
                words = BEFORE_FLAGS.get(command, [command])
                self.assertEqual(bash_complete(*words, "-"), help_flags(command))

    def test_bash_completes_values(self):
        self.assertEqual(bash_complete("connect", "--log-level", "w"), {"warn"})
        self.assertEqual(bash_complete("ide", ""), {"vscode"})
        self.assertEqual(bash_complete("resolver", "un"), {"uninstall"})
        self.assertEqual(bash_complete("config", ""), {"validate"})
        self.assertEqual(bash_complete("connect", "--output", "j"), {"json"})
        # After `--`, the command connect runs: command names.
        self.assertIn("bash", bash_complete("connect", "--", "bas"))

    def test_zsh_flags_are_those_of_help(self):
        if not shutil.which("zsh"):
            self.skipTest("zsh is not installed (tools/install-deps.sh)")
        r = subprocess.run(["zsh", "-n", ZSH], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)
        for command in COMMANDS:
            with self.subTest(command=command):
                self.assertEqual(zsh_flags(command), help_flags(command))


if __name__ == "__main__":
    e2e.main()

#!/usr/bin/env bash
# Checks that dependencies point one way (docs/architecture.md): every `#include "..."` of an lpk
# header must name a module the including module may use. Prints each violation as
# FILE:LINE: MODULE may not include HEADER, and exits 1 if there is any.
#   tools/check_deps.sh [ROOT]
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root"

# Module of a path: the longest prefix listed here. The order of the rules is lowest first.
#   module          may include (prefixes; kube/text.hpp, lpk::text, is the bottom of the tree)
rules=$(cat <<'RULES'
kube/text       kube/text.hpp
proxy/tunnel    proxy/tunnel/ kube/text.hpp
dns             dns/ kube/text.hpp
kube            kube/
agent           agent/ proxy/tunnel/ kube/text.hpp
agent/restore_watch  agent/ proxy/takeover/ proxy/control/ proxy/tunnel/ kube/
agent/router    agent/router/ agent/coro.hpp proxy/tunnel/ kube/
proxy/control   proxy/control/ proxy/tunnel/ kube/text.hpp
proxy/forward   proxy/forward/ proxy/control/ proxy/tunnel/ dns/ kube/
proxy/takeover  proxy/takeover/ proxy/control/ proxy/tunnel/ kube/
proxy/connect   proxy/connect/ proxy/takeover/ proxy/forward/ proxy/control/ proxy/tunnel/ dns/ kube/
proxy/app       proxy/ dns/ kube/
tools/kubesim   tools/kubesim/ dns/ kube/
RULES
)

# One grep over the tree and one awk over its output: a process or two per file made this take
# over a minute on a loaded machine, past the test's timeout.
files() { git ls-files -z '*.hpp' '*.cpp' 2>/dev/null || find . -name '*.[hc]pp' -print0 | sed -z 's|^\./||'; }
violations=$(files | xargs -0 grep -Hn '^#include "' /dev/null |
  sed -E 's/^([^:]+):([0-9]+):#include "([^"]+)".*/\1 \2 \3/' |
  awk -v rules="$rules" '
    BEGIN {
      n = split(rules, lines, "\n")
      for (i = 1; i <= n; i++) {
        k = split(lines[i], w, /[ \t]+/)
        if (k < 1 || w[1] == "") continue
        modules[w[1]] = 1
        allowed[w[1]] = ""
        for (j = 2; j <= k; j++) allowed[w[1]] = allowed[w[1]] " " w[j]
      }
    }
    # The module of a path: the longest rule prefix it lies under.
    function module_of(path,    m, best) {
      best = ""
      for (m in modules)
        if ((index(path, m "/") == 1 || index(path, m ".") == 1) && length(m) > length(best)) best = m
      return best
    }
    {
      file = $1; line = $2; header = $3
      if (!(file in module_cache)) module_cache[file] = module_of(file)
      module = module_cache[file]
      if (module == "") next
      # Headers that are not lpk'"'"'s (third-party headers spelled with quotes) are not checked.
      if (header !~ /^(proxy|dns|kube|agent|tools|bench|tests)\//) next
      ok = 0
      if (header ~ /\/detail\//) {
        # A module'"'"'s detail/ headers are its own: nobody else includes them.
        owner = header; sub(/\/detail\/.*/, "", owner)
        ok = index(file, owner "/") == 1
      } else {
        k = split(allowed[module], prefixes, " ")
        for (j = 1; j <= k && !ok; j++) ok = index(header, prefixes[j]) == 1
      }
      if (!ok) { print file ":" line ": " module " may not include " header; bad++ }
    }
    END { exit bad > 0 }') || true

if [[ -n $violations ]]; then
  echo "$violations"
  echo "check_deps: $(wc -l <<<"$violations") include(s) against the module graph (docs/architecture.md)" >&2
  exit 1
fi
echo "check_deps: every include follows the module graph"

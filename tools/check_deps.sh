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
proxy/control   proxy/control/ proxy/tunnel/ kube/text.hpp
proxy/forward   proxy/forward/ proxy/control/ proxy/tunnel/ dns/ kube/
proxy/takeover  proxy/takeover/ proxy/control/ proxy/tunnel/ kube/
proxy/connect   proxy/connect/ proxy/takeover/ proxy/forward/ proxy/control/ proxy/tunnel/ dns/ kube/
proxy/app       proxy/ dns/ kube/
tools/kubesim   tools/kubesim/ dns/ kube/
RULES
)

module_of() {
  local path=$1 best="" prefix
  while read -r prefix _; do
    [[ -z $prefix ]] && continue
    if [[ $path == "$prefix"/* || $path == "$prefix".* ]]; then
      ((${#prefix} > ${#best})) && best=$prefix
    fi
  done <<<"$rules"
  echo "$best"
}

allowed_for() {
  awk -v m="$1" '$1 == m { $1 = ""; print }' <<<"$rules"
}

violations=0
while IFS= read -r file; do
  module=$(module_of "$file")
  [[ -z $module ]] && continue
  allowed=$(allowed_for "$module")
  while IFS=: read -r line header; do
    ok=0
    # A module's detail/ headers are its own: nobody else includes them.
    if [[ $header == */detail/* ]]; then
      owner=${header%%/detail/*}
      [[ $file == "$owner"/* ]] && ok=1
    else
      for prefix in $allowed; do
        if [[ $header == "$prefix"* ]]; then ok=1; break; fi
      done
    fi
    # Headers that are not lpk's (third-party headers spelled with quotes) are not checked.
    case $header in proxy/*|dns/*|kube/*|agent/*|tools/*|bench/*|tests/*) ;; *) ok=1 ;; esac
    if ((ok == 0)); then
      echo "$file:$line: $module may not include $header"
      violations=$((violations + 1))
    fi
  done < <(grep -n '^#include "' "$file" | sed -E 's/^([0-9]+):#include "([^"]+)".*/\1:\2/')
done < <(git ls-files '*.hpp' '*.cpp' 2>/dev/null || find . -name '*.[hc]pp' | sed 's|^\./||')

if ((violations > 0)); then
  echo "check_deps: $violations include(s) against the module graph (docs/architecture.md)" >&2
  exit 1
fi
echo "check_deps: every include follows the module graph"

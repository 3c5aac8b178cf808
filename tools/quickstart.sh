#!/usr/bin/env bash
# Quick start: installs what is missing, builds lpk and the demo's OCI images (nginx, redis,
# busybox, the demo api and lpk-agent, from this machine's Debian binaries: tools/images),
# brings up lpk-kubesim (a local Kubernetes API server whose pods are real containers, run
# with crun in network namespaces) with the demo
# application of tools/kubesim/demo (web nginx -> api x2 -> redis), waits until the demo is
# ready, shows it answering from inside the cluster, then runs `lpk-proxy connect` on the api
# service with a local stand-in (tools/kubesim/demo/local_api.py), shows a request from this
# machine to web flowing through the local process and back, ends the session (the cluster is
# restored) and brings kubesim down again.
#
#   sudo tools/quickstart.sh        (pods need root: network and mount namespaces)
#
# Environment: LPK_BUILD_DIR (default build/), LPK_JOBS (default: number of CPUs),
# LPK_KEEP=1 leaves kubesim running at the end (stop it with `lpk-kubesim down --state DIR`),
# LPK_SKIP_BUILD=1 uses what LPK_BUILD_DIR already has (no install, no build).
# tools/demo.sh is the older loopback-only tunnel demo, without Kubernetes.
#
# The steps are functions run in order by main() at the bottom: a step that needs the
# running demo (lpk-proxy connect, say) goes between wait_for_demo and kubesim_down.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=${LPK_BUILD_DIR:-$root/build}
[[ $build == /* ]] || build=$root/$build
jobs=${LPK_JOBS:-$(nproc)}
kubesim=$build/tools/kubesim/lpk-kubesim
state=$(mktemp -d "${TMPDIR:-/tmp}/lpk-quickstart.XXXXXX")
kubeconfig=$state/kubeconfig
kubesim_pid=
connect_pid=
images=$build/images  # the image store kubesim runs the pods from ("": host binaries)

bold='' red='' off=''
if [[ -t 1 ]]; then bold=$'\e[1m' red=$'\e[31m' off=$'\e[0m'; fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$off"; }
fail() { printf '%squickstart: %s%s\n' "$red" "$*" "$off" >&2; exit 1; }
k() { kubectl --kubeconfig "$kubeconfig" --cache-dir "$state/kubectl-cache" "$@"; }

cleanup() {
  local rc=$?
  if [[ -n $connect_pid ]] && kill -0 "$connect_pid" 2>/dev/null; then
    kill -TERM "$connect_pid" 2>/dev/null || true  # lpk-proxy restores the api deployment
    wait "$connect_pid" 2>/dev/null || true
  fi
  if [[ -n $kubesim_pid ]] && kill -0 "$kubesim_pid" 2>/dev/null; then
    if ((rc != 0)); then
      echo "--- kubesim log (last lines)"
      tail -n 20 "$state/kubesim.log" || true
    fi
    "$kubesim" down --state "$state" >/dev/null 2>&1 || kill "$kubesim_pid" 2>/dev/null || true
    wait "$kubesim_pid" 2>/dev/null || true
  fi
  rm -rf "$state"
  exit "$rc"
}

install_deps() {
  step "Installing missing packages (tools/install-deps.sh)"
  tools/install-deps.sh
}

build_lpk() {
  step "Configuring and building $build (RelWithDebInfo, Ninja)"
  local launcher=()
  if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" >/dev/null
  cmake --build "$build" -j"$jobs" --target lpk-kubesim lpk-kubesim-demo-api lpk-agent lpk-proxy
}

# The demo's images and the agent's, into $images; without the tools to build or run them the
# demo runs host binaries instead (kubesim's fallback), as the printed line says.
build_images() {
  step "Building the demo's images and the agent's from this machine's binaries (tools/images)"
  local t
  for t in buildah umoci crun; do
    if ! command -v "$t" >/dev/null; then
      echo "    $t is missing: the demo runs host binaries instead of images (tools/install-deps.sh installs it)"
      images=
      return
    fi
  done
  [[ $(id -u) -eq 0 ]] || fail "building and running images needs root: run this as root"
  local scripts=(tools/images/*.sh tools/images/nginx/* tools/images/redis/*) stale=()
  stale_image nginx "${scripts[@]}" /usr/sbin/nginx && stale+=(nginx)
  stale_image redis "${scripts[@]}" /usr/bin/redis-server && stale+=(redis)
  stale_image busybox "${scripts[@]}" "$(command -v busybox)" && stale+=(busybox)
  stale_image demo-api "${scripts[@]}" "$build/tools/kubesim/lpk-kubesim-demo-api" &&
    stale+=(demo-api)
  if ((${#stale[@]})); then
    tools/images/demo-images.sh "$build" "$images" "${stale[@]}" | sed 's/^/    /'
  fi
  if stale_image lpk-agent "${scripts[@]}" "$build/agent/lpk-agent" proxy/app/options.hpp; then
    tools/images/agent-image.sh "$build" "$images" | sed 's/^/    /'
  fi
  echo "    image store $images: $(cd "$images" && echo *.tar)"
}

# True when $images/$1.tar is missing or older than one of the files it is built from (the
# rest of the arguments): a second run reuses what the first one built.
stale_image() {
  local archive=$images/$1.tar f
  shift
  [[ -e $archive ]] || return 0
  for f in "$@"; do [[ $f -nt $archive ]] && return 0; done
  return 1
}

kubesim_up() {
  step "Starting lpk-kubesim with the demo manifests (tools/kubesim/demo)"
  [[ $(id -u) -eq 0 ]] || fail "kubesim runs pods in network namespaces: run this as root"
  local store=()
  [[ -z $images ]] || store=(--image-store "$images")
  "$kubesim" up --state "$state" --manifests tools/kubesim/demo "${store[@]}" \
    >"$state/kubesim.log" 2>&1 &
  kubesim_pid=$!
  # Ready when it prints where its kubeconfig is (or gone when it failed).
  local line=
  for _ in $(seq 600); do
    line=$(grep -m1 '^kubesim: serving' "$state/kubesim.log" || true)
    [[ -n $line ]] && break
    kill -0 "$kubesim_pid" 2>/dev/null || fail "kubesim did not start: $(cat "$state/kubesim.log")"
    sleep 0.1
  done
  [[ -n $line ]] || fail "kubesim did not start within 60 s"
  echo "    $line"
  echo "    try it yourself: kubectl --kubeconfig $kubeconfig get pods -A"
}

wait_for_demo() {
  step "Waiting for the demo's deployments to roll out (redis, api, web)"
  for d in redis api web; do
    k -n demo rollout status "deployment/$d" --timeout=120s
  done
  k get pods,svc -n demo -o wide
  [[ -z $images ]] ||
    k get pods -n demo -o custom-columns='POD:.metadata.name,IMAGE ID:.status.containerStatuses[0].imageID'
}

show_demo() {
  step "Asking web for /api/hits twice from a pod in the cluster (web -> api -> redis)"
  # The busybox image has wget (no curl); the host-binary fallback runs the host's shell.
  local get='curl -sf'
  [[ -z $images ]] || get='wget -q -O -'
  k -n demo run quickstart-client --image=busybox --restart=Never --command -- \
    sh -c "for i in 1 2; do $get http://web/api/hits || exit 1; done"
  k -n demo wait --for=jsonpath='{.status.phase}'=Succeeded pod/quickstart-client --timeout=60s ||
    fail "the request through web did not succeed: $(cat "$state"/pods/demo_quickstart-client_*/*.log)"
  echo "    the client pod printed:"
  sed 's/^/      /' "$state"/pods/demo_quickstart-client_*/quickstart-client.log
  grep -q '"hits":2' "$state"/pods/demo_quickstart-client_*/quickstart-client.log ||
    fail "the second answer does not count 2 hits"
  k -n demo delete pod quickstart-client --wait=false >/dev/null
}

kubesim_down() {
  if [[ ${LPK_KEEP:-0} == 1 ]]; then
    step "Leaving kubesim running (LPK_KEEP=1): $kubesim down --state $state"
    kubesim_pid=
    trap - EXIT
    return
  fi
  step "Stopping kubesim (lpk-kubesim down)"
  "$kubesim" down --state "$state"
  local rc=0
  wait "$kubesim_pid" || rc=$?
  kubesim_pid=
  ((rc == 0)) || fail "kubesim exited with $rc"
  echo "    every pod process, namespace and mount it made is gone"
}

# Waits up to $2 seconds for a line matching $1 in $3, printing the file's new lines meanwhile.
follow_until() {
  local pattern=$1 seconds=$2 file=$3 shown=0 lines
  for _ in $(seq $((seconds * 10))); do
    lines=$(wc -l <"$file")
    if ((lines > shown)); then
      sed -n "$((shown + 1)),${lines}p" "$file" | sed 's/^/    /'
      shown=$lines
    fi
    grep -qE "$pattern" "$file" && return 0
    kill -0 "$connect_pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

connect_api() {
  local port=18080 out=$state/connect.out
  step "Running api on this machine: lpk-proxy connect -n demo --service api -- local_api.py"
  echo "    (tools/kubesim/demo/local_api.py stands in for your service under a debugger)"
  "$build/proxy/lpk-proxy" connect --kubeconfig "$kubeconfig" -n demo --service api \
    --local-port "$port:8080" -- /usr/bin/python3 tools/kubesim/demo/local_api.py "$port" \
    >"$out" 2>&1 &
  connect_pid=$!
  follow_until '^ready$' 180 "$out" || fail "lpk-proxy connect did not get ready: $(tail -n 5 "$out")"
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done

  step "Asking web for /api/hits from this machine: web pod -> api's agent -> your local process"
  local dns
  dns=$(sed -n 's/^dns \([0-9.]*\):53$/\1/p' "$out")
  [[ -n $dns ]] || fail "the stub DNS is not on port 53: $(grep '^dns' "$out")"
  # As a pod would resolve it: the session's search path, lpk's stub DNS as the nameserver.
  printf 'nameserver %s\nsearch demo.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n' \
    "$dns" >"$state/resolv.conf"
  local answer
  answer=$(unshare -m sh -c "mount --bind '$state/resolv.conf' /etc/resolv.conf &&
                             curl -sf -m 30 http://web.demo/api/hits") ||
    fail "curl http://web.demo/api/hits through lpk failed"
  echo "    $answer"
  grep -q '"served_by": "lpk-local-process"' <<<"$answer" ||
    fail "the answer did not come from the local process"
  "$build/proxy/lpk-proxy" status | sed 's/^/    /'

  step "Ending the session: lpk-proxy restores the api deployment"
  kill -TERM "$connect_pid"
  local rc=0
  wait "$connect_pid" || rc=$?
  connect_pid=
  sed -n '/^command exited/,$p' "$out" | sed 's/^/    /'
  ((rc == 0)) || fail "lpk-proxy connect exited with $rc"
  local image
  image=$(k -n demo get deployment api -o jsonpath='{.spec.template.spec.containers[0].image}')
  [[ $image == lpk/demo-api:1 ]] || fail "api was not restored (image $image)"
  echo "    deployment demo/api runs $image again"
}

main() {
  trap cleanup EXIT
  if [[ ${LPK_SKIP_BUILD:-0} != 1 ]]; then
    install_deps
    build_lpk
  fi
  build_images
  kubesim_up
  wait_for_demo
  show_demo
  connect_api
  kubesim_down
  step "Done"
}

main "$@"

#!/usr/bin/env bash
# Installs every Debian 12 package lpk needs to build, test and benchmark.
# Idempotent: packages already present are left alone; apt is consulted only when
# something is missing. Needs root (or sudo) only when it has to install.
set -euo pipefail

build_pkgs=(
  build-essential cmake ninja-build pkg-config git ccache
  libboost1.81-dev            # awaitable operators, cancellation slots, channels (not 1.74)
  libc-ares-dev libldns-dev libcurl4-openssl-dev libssl-dev
  nlohmann-json3-dev libspdlog-dev libfmt-dev libyaml-cpp-dev
  libgtest-dev libgmock-dev
  clang clang-format libclang-rt-14-dev   # libFuzzer and sanitizer runtimes
)
# Real peers used by tests, the demo and the benchmarks (all on loopback).
peer_pkgs=(
  nginx-light redis-server redis-tools curl socat netcat-openbsd iperf3 sockperf
  openssh-server openssh-client knot-dnsutils dnsmasq-base dnsperf
  iproute2 procps psmisc python3 python3-kubernetes python3-dotenv
  microsocks tinyproxy stunnel4 openssl   # port-forward through socks5 and https proxies
  python3-matplotlib          # bench/plots.py: the benchmark charts (and their test)
  wrk haproxy                 # bench/router/run.sh and kubesim.py: straight, routed, HAProxy
  python3-grpcio              # a real gRPC client: capture_h2_first_flight.py, e2e_router,
                              # kubesim_services_e2e
  nghttp2-client              # h2load: HTTP/2 through kubesim's ClusterIPs and through the
                              # router (e2e_router, bench/router/run.sh)
)
# OCI images built from scratch and run without Docker or a registry (tools/images,
# tests/images): buildah builds, skopeo pushes, umoci unpacks, crun runs; busybox-static is the
# demo's client image and the redis image's /bin/sh.
image_pkgs=(buildah skopeo umoci crun busybox-static)
# The Debian packages (tools/package.sh, tests/package): cpack's dpkg-shlibdeps, setcap for the
# postinst, man for `man -l`, zsh for the zsh completion's test.
package_pkgs=(dpkg-dev fakeroot libcap2-bin man-db zsh)

missing=()
for p in "${build_pkgs[@]}" "${peer_pkgs[@]}" "${image_pkgs[@]}" "${package_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
# kubectl: keep the one the machine has, otherwise Debian's kubernetes-client.
command -v kubectl >/dev/null 2>&1 || missing+=(kubernetes-client)

if ((${#missing[@]} == 0)); then
  echo "install-deps: everything is installed"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
# Services from these packages must not start on install (CI has no init system anyway);
# tests start their own instances on loopback.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee "$policy" >/dev/null
  "${sudo_cmd[@]}" chmod +x "$policy"
  created_policy=1
fi
trap '[[ $created_policy == 1 ]] && "${sudo_cmd[@]}" rm -f "$policy"' EXIT
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: done"

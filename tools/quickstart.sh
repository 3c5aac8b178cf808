#!/usr/bin/env bash
# Quick start: installs what is missing, builds lpk, and runs the main job on its embedded
# default. For now that is the local demo (tools/demo.sh): real nginx and redis on loopback,
# lpk-agent and lpk-proxy between them and the clients, requests shown going through.
#
#   tools/quickstart.sh
# Environment: LPK_BUILD_DIR (default build/), LPK_JOBS (default: number of CPUs).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${LPK_BUILD_DIR:-build}
jobs=${LPK_JOBS:-$(nproc)}

echo "==> Installing missing packages (tools/install-deps.sh)"
tools/install-deps.sh

echo "==> Configuring and building $build/ (RelWithDebInfo, Ninja)"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$jobs" --target lpk-agent lpk-proxy

echo "==> Running the demo (tools/demo.sh)"
exec tools/demo.sh "$build"

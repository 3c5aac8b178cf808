#!/usr/bin/env bash
# Builds lpk's Debian packages (tools/package/package.cmake says what is in them):
#   tools/package.sh [BUILD_DIR]        (default: build-release)
# writes BUILD_DIR/packages/lpk_VERSION_ARCH.deb and lpk-kubesim_VERSION_ARCH.deb. The agent
# image archive goes in when buildah can build it here (root, tools/install-deps.sh); otherwise
# the package is built without it and this says so.
# Install: sudo apt install ./BUILD_DIR/packages/lpk_*.deb
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build-release}
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" >/dev/null
if grep -q '^LPK_SANITIZE:BOOL=ON' "$build/CMakeCache.txt"; then
  echo "package: $build is a sanitizer build; package a plain one" >&2
  exit 2
fi
cmake --build "$build" --target lpk-proxy lpk-agent lpk-kubesim lpk-man
if [[ $(id -u) -eq 0 ]] && command -v buildah >/dev/null; then
  cmake --build "$build" --target agent-image
else
  echo "package: no agent image in the package (building it needs root and buildah)" >&2
fi
mkdir -p "$build/packages"
(cd "$build" && cpack -G DEB -B "$build/packages" >/dev/null)
ls "$build"/packages/*.deb

#!/usr/bin/env bash
# Builds the lpk-agent OCI image from a build tree, from scratch (no base image, no network):
#   tools/images/agent-image.sh BUILD_DIR OUT_DIR [REF]
# writes OUT_DIR/lpk-agent.tar (an OCI archive whose index names the image REF) and commits
# the image to containers-storage under BUILD_DIR/images/storage (LPK_IMAGE_STORAGE=DIR for
# another one, =default for the machine's own, the one podman lists).
# REF defaults to the image `lpk-proxy connect --agent-image` patches in (proxy/app/options.hpp),
# so a kubesim given OUT_DIR as its image store runs this image for a default connect.
# The layout (tools/images/agent-rootfs.sh) and the config below are agent/Dockerfile's final
# stage; tests/images/test_agent_image.py checks that the two agree.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tools/images/lib.sh
source "$here/lib.sh"
(($# == 2 || $# == 3)) || images_fail "usage: agent-image.sh BUILD_DIR OUT_DIR [REF]"
build=$(cd "$1" && pwd) || images_fail "$1: no such build directory"
out=$2
ref=${3:-$(sed -n '/agent_image = "/{s/.*agent_image = "\([^"]*\)".*/\1/p;q}' "$here/../../proxy/app/options.hpp")}
[[ -n $ref ]] || images_fail "no default agent image in proxy/app/options.hpp: pass REF"
images_need buildah ldd strip
binary=$build/agent/lpk-agent
[[ -x $binary ]] || images_fail "$binary not built: cmake --build $1 --target lpk-agent"

mkdir -p "$out"
stage=$(mktemp -d "$out/.agent-rootfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT
"$here/agent-rootfs.sh" "$binary" "$stage/rootfs"
# Keep these flags and agent/Dockerfile's final stage the same (ENV, USER, EXPOSE, ENTRYPOINT).
commit_image "$build/images/storage" "$stage/rootfs" "$ref" "$out/lpk-agent.tar" \
  --env PATH=/usr/local/bin:/usr/bin:/bin \
  --user 10001:10001 \
  --port 4590/tcp \
  --entrypoint '["/usr/local/bin/lpk-agent"]' --cmd ''
echo "agent-image: $ref -> $out/lpk-agent.tar ($(du -k "$out/lpk-agent.tar" | cut -f1) KiB;" \
  "$(du -sk "$stage/rootfs" | cut -f1) KiB unpacked)"

#!/usr/bin/env bash
# The lpk-agent image's root filesystem, staged into ROOTFS (which must not exist):
#   /usr/local/bin/lpk-agent (stripped), the shared libraries ldd lists, the loader,
#   /etc/passwd and /etc/group with the agent's user lpk (10001), /etc/nsswitch.conf, /tmp.
# No CA bundle: the agent speaks TLS to nobody (it links libcrypto for the tunnel's
# HMAC only). Used by tools/images/agent-image.sh and by agent/Dockerfile's build stage, so
# that both images hold the same files (tests/images checks it).
#   tools/images/agent-rootfs.sh BINARY ROOTFS
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tools/images/lib.sh
source "$here/lib.sh"
(($# == 2)) || images_fail "usage: agent-rootfs.sh BINARY ROOTFS"
binary=$1 rootfs=$2
[[ ! -e $rootfs ]] || images_fail "$rootfs exists: give a new directory"
images_need ldd strip install
stage_base "$rootfs"
stage_users "$rootfs" lpk:10001:10001:/nonexistent
stage_elf "$rootfs" "$binary" /usr/local/bin/lpk-agent

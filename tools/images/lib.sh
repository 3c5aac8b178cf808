# Shared by the image scripts of tools/images (sourced, not run): staging a root filesystem
# out of this machine's binaries, and turning it into an OCI image with buildah. No base
# image and no network: an image is exactly the files staged here.
# shellcheck shell=bash

images_fail() { echo "images: $*" >&2; exit 1; }

# images_need TOOL...: one line naming the first missing tool and what to do.
images_need() {
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null 2>&1 || images_fail "$t is missing: run tools/install-deps.sh"
  done
}

# stage_elf ROOTFS BINARY DEST: BINARY (stripped) at DEST, plus every shared library ldd lists
# and the loader, each at the path ldd prints (the loader at its PT_INTERP path), so the
# loader's default search path finds them with no ld.so.cache. Static binaries need neither.
stage_elf() {
  local rootfs=$1 binary=$2 dest=$3 line path
  [[ -x $binary ]] || images_fail "$binary is not an executable: build it first"
  install -D -m 0755 "$binary" "$rootfs$dest"
  strip --strip-unneeded "$rootfs$dest"
  local libs
  if ! libs=$(ldd "$binary" 2>&1); then
    [[ $libs == *"not a dynamic executable"* ]] && return 0
    images_fail "ldd $binary failed: $libs"
  fi
  [[ $libs != *"not found"* ]] || images_fail "$binary: a library is missing: $libs"
  while read -r line; do
    case $line in
      *"=> /"*) path=${line#*=> }; path=${path%% (*}; install -D -m 0644 "$path" "$rootfs$path" ;;
      /*) path=${line%% (*}; install -D -m 0755 "$path" "$rootfs$path" ;;  # the loader
    esac
  done <<<"$libs"
}

# stage_base ROOTFS: what every image has besides its programs. /etc/hosts, resolv.conf and
# hostname exist so that a runtime can bind-mount the kubelet's over them even on a read-only
# root filesystem; nsswitch.conf makes /etc/hosts win over DNS, as in Debian's images.
stage_base() {
  local rootfs=$1
  install -d -m 0755 "$rootfs/etc"
  install -d -m 1777 "$rootfs/tmp"
  printf 'hosts: files dns\npasswd: files\ngroup: files\n' >"$rootfs/etc/nsswitch.conf"
  printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$rootfs/etc/hosts"
  : >"$rootfs/etc/resolv.conf"
  : >"$rootfs/etc/hostname"
  chmod 0644 "$rootfs"/etc/*
}

# stage_users ROOTFS NAME:UID:GID:HOME...: /etc/passwd and /etc/group with root and the
# given users (no shell, no password), so that tools show names and USER can be numeric.
stage_users() {
  local rootfs=$1 entry name uid gid home
  shift
  printf 'root:x:0:0:root:/root:/sbin/nologin\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\n' >"$rootfs/etc/group"
  for entry in "$@"; do
    IFS=: read -r name uid gid home <<<"$entry"
    printf '%s:x:%s:%s:%s:%s:/sbin/nologin\n' "$name" "$uid" "$gid" "$name" "$home" \
      >>"$rootfs/etc/passwd"
    printf '%s:x:%s:\n' "$name" "$gid" >>"$rootfs/etc/group"
  done
  chmod 0644 "$rootfs/etc/passwd" "$rootfs/etc/group"
}

# The containers-storage buildah commits to: per build tree (LPK_IMAGE_STORAGE overrides;
# "default" is the machine's own, the one podman shows), so that builds and tests never touch
# another user's images. vfs needs no mounts, and these images are a few MB.
images_storage_args() {
  local store=${LPK_IMAGE_STORAGE:-$1}
  [[ $store == default ]] && return 0
  printf '%s\n' --root "$store/root" --runroot "$store/run" --storage-driver vfs
}

# commit_image STORE ROOTFS REF ARCHIVE [buildah config flags...]: the image REF (as pods name
# it, "nginx:1.27") from ROOTFS alone, committed to STORE and written to ARCHIVE as an OCI
# archive whose index names it REF (org.opencontainers.image.ref.name). Timestamps are
# zeroed so that the same files give the same digest.
commit_image() {
  local store=$1 rootfs=$2 ref=$3 archive=$4 c
  shift 4
  local -a b
  mapfile -t b < <(images_storage_args "$store")
  local old
  old=$(buildah "${b[@]}" images --quiet "localhost/$ref" 2>/dev/null || true)
  c=$(buildah "${b[@]}" from --quiet scratch) || images_fail "buildah cannot create a container"
  # Owners and modes come from ROOTFS as staged (buildah copy keeps them).
  buildah "${b[@]}" copy --quiet "$c" "$rootfs/" / >/dev/null
  buildah "${b[@]}" config "$@" "$c"
  buildah "${b[@]}" commit --quiet --rm --timestamp 0 "$c" "localhost/$ref" >/dev/null
  # The image this one replaces under REF, untagged now: removed, or every rebuild would leave
  # one behind (it stays if another name still holds it).
  if [[ -n $old && $old != "$(buildah "${b[@]}" images --quiet "localhost/$ref")" ]]; then
    buildah "${b[@]}" rmi "$old" >/dev/null 2>&1 || true
  fi
  rm -f "$archive"
  buildah "${b[@]}" push --quiet "localhost/$ref" "oci-archive:$archive:$ref" >/dev/null
}

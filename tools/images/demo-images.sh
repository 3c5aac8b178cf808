#!/usr/bin/env bash
# Builds the kubesim demo's images (tools/kubesim/demo/demo.yaml) from scratch out of this
# machine's Debian binaries: each is the program, the libraries ldd lists, the loader and the
# files it needs, with the entrypoint and cmd of the real image.
#   tools/images/demo-images.sh BUILD_DIR OUT_DIR [nginx|redis|busybox|demo-api]...
# writes OUT_DIR/NAME.tar (OCI archives named as the demo's pods name them: nginx:1.27,
# redis:7, busybox:latest, lpk/demo-api:1) and commits them to containers-storage under
# BUILD_DIR/images/storage (LPK_IMAGE_STORAGE as for agent-image.sh). The contents are
# Debian 12's nginx 1.22 and redis 7.0 whatever the tag says: the refs are the manifests'.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tools/images/lib.sh
source "$here/lib.sh"
(($# >= 2)) || images_fail "usage: demo-images.sh BUILD_DIR OUT_DIR [nginx|redis|busybox|demo-api]..."
build=$(cd "$1" && pwd) || images_fail "$1: no such build directory"
out=$2
shift 2
names=("$@")
((${#names[@]})) || names=(nginx redis busybox demo-api)
images_need buildah ldd strip
store=$build/images/storage
path_env=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

need_file() { [[ -e $1 ]] || images_fail "$1 is missing: $2"; }
version_label() { echo "org.opencontainers.image.version=$(dpkg-query -W -f='${Version}' "$1")"; }

# busybox (static) as /bin/busybox with every applet linked next to it, as the busybox image.
stage_busybox() {
  local rootfs=$1 bb applet
  bb=$(command -v busybox) || images_fail "busybox is missing: run tools/install-deps.sh"
  ! ldd "$bb" >/dev/null 2>&1 || images_fail "$bb is not static: install busybox-static"
  install -D -m 0755 "$bb" "$rootfs/bin/busybox"
  for applet in $("$bb" --list); do
    [[ $applet == busybox ]] || ln -s busybox "$rootfs/bin/$applet"
  done
}

build_nginx() {
  local r=$1/nginx f
  need_file /usr/sbin/nginx "run tools/install-deps.sh (nginx-light)"
  stage_base "$r"
  stage_users "$r" www-data:33:33:/var/www
  stage_elf "$r" /usr/sbin/nginx /usr/sbin/nginx
  install -D -m 0644 "$here/nginx/nginx.conf" "$r/etc/nginx/nginx.conf"
  for f in mime.types fastcgi_params scgi_params uwsgi_params proxy_params; do
    install -m 0644 "/etc/nginx/$f" "$r/etc/nginx/$f"
  done
  install -D -m 0644 "$here/nginx/default" "$r/etc/nginx/sites-enabled/default"
  install -D -m 0644 "$here/nginx/index.html" "$r/usr/share/nginx/html/index.html"
  # Debian's nginx makes its temp dirs under /var/lib/nginx (compiled in) at start and writes
  # its pid to /run; /var/log/nginx is where configs from elsewhere send their logs.
  install -d -m 0755 "$r/etc/nginx/conf.d" "$r/var/lib/nginx" "$r/run" "$r/var/log/nginx"
  ln -s /dev/stdout "$r/var/log/nginx/access.log"
  ln -s /dev/stderr "$r/var/log/nginx/error.log"
  commit_image "$store" "$r" nginx:1.27 "$out/nginx.tar" --env "$path_env" --port 80/tcp \
    --stop-signal SIGQUIT --label "$(version_label nginx-light)" \
    --entrypoint '' --cmd '["nginx", "-g", "daemon off;"]'
}

build_redis() {
  local r=$1/redis
  need_file /usr/bin/redis-server "run tools/install-deps.sh (redis-server)"
  stage_base "$r"
  stage_users "$r" redis:999:999:/data
  stage_elf "$r" /usr/bin/redis-server /usr/local/bin/redis-server
  stage_busybox "$r"  # /bin/sh for the entrypoint
  install -m 0755 "$here/redis/docker-entrypoint.sh" "$r/usr/local/bin/docker-entrypoint.sh"
  install -d -m 0755 -o 999 -g 999 "$r/data"
  commit_image "$store" "$r" redis:7 "$out/redis.tar" --env "$path_env" --port 6379/tcp \
    --user 999:999 --workingdir /data --volume /data --label "$(version_label redis-server)" \
    --entrypoint '["docker-entrypoint.sh"]' --cmd '["redis-server"]'
}

build_busybox() {
  local r=$1/busybox
  stage_base "$r"
  stage_users "$r" nobody:65534:65534:/home
  stage_busybox "$r"
  install -d -m 0700 "$r/root"
  install -d -m 0755 "$r/home" "$r/var"
  commit_image "$store" "$r" busybox:latest "$out/busybox.tar" --env "$path_env" \
    --label "$(version_label busybox-static)" --entrypoint '' --cmd '["sh"]'
}

build_demo_api() {
  local r=$1/demo-api
  stage_base "$r"
  stage_users "$r" demo:10001:10001:/nonexistent
  stage_elf "$r" "$build/tools/kubesim/lpk-kubesim-demo-api" /usr/local/bin/demo-api
  commit_image "$store" "$r" lpk/demo-api:1 "$out/demo-api.tar" --env "$path_env" \
    --port 8080/tcp --user 10001:10001 --entrypoint '["/usr/local/bin/demo-api"]' --cmd ''
}

mkdir -p "$out"
stage=$(mktemp -d "$out/.demo-rootfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT
for name in "${names[@]}"; do
  case $name in
    nginx | redis | busybox | demo-api) "build_${name//-/_}" "$stage" ;;
    *) images_fail "no demo image $name: choose from nginx redis busybox demo-api" ;;
  esac
  echo "demo-images: $name -> $out/$name.tar ($(du -k "$out/$name.tar" | cut -f1) KiB)"
done

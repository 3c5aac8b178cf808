#!/bin/sh
# The redis image's entrypoint, minus its switch to the redis user (this image's USER is
# already redis): leading flags, or a .conf file, are arguments to redis-server, so that a pod
# may give `args: [--port, "6380"]` as well as `args: [redis-server, --port, "6380"]`.
set -e
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
  set -- redis-server "$@"
fi
# The redis image's redis-server is built with protected mode off; Debian's has it on. So
# that this image behaves as the real one, protected mode starts off unless a config file
# (which must come first) decides; a later --protected-mode yes still wins.
if [ "$1" = redis-server ] && [ "${2%.conf}" = "${2-}" ]; then
  shift
  set -- redis-server --protected-mode no "$@"
fi
exec "$@"

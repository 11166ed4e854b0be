#!/bin/sh
# Runs the example edge on this machine: two concert-http-server instances
# (memory store each, or shared PostgreSQL + Redis with CONCERT_STORE and
# CONCERT_QUEUE) sharing one secret file, and nginx (examples/edge/nginx.conf)
# in front of them, all on 127.0.0.1, in a temporary directory. Ctrl-C stops all.
#
#   examples/edge/run-edge.sh BUILD_DIR [EDGE_PORT]
# BUILD_DIR is a build tree with libconcert.so and concert-http-server
# (cmake -DCONCERT_WITH_LUA=ON). EDGE_PORT defaults to 8080.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:?usage: run-edge.sh BUILD_DIR [EDGE_PORT]}" && pwd)
edge_port=${2:-8080}
server=$build/examples/http_server/concert-http-server
lib=$build/libconcert.so
[ -x "$server" ] || { echo "no $server" >&2; exit 1; }
[ -f "$lib" ] || { echo "no $lib" >&2; exit 1; }

dir=$(mktemp -d /tmp/concert-edge.XXXXXX)
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	echo "logs kept in $dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$dir/secret"
chmod 600 "$dir/secret"

start_server() { # name demo-flag
	"$server" --listen 127.0.0.1:0 --secret-file "$dir/secret" $2 \
		--access-log "$dir/$1.access.log" 2>"$dir/$1.log" &
	pids="$pids $!"
	for _ in $(seq 100); do
		port=$(sed -n 's/.*"listening","url":"http:\/\/127\.0\.0\.1:\([0-9]*\)".*/\1/p' "$dir/$1.log")
		[ -n "$port" ] && return 0
		sleep 0.1
	done
	echo "server $1 did not start; see $dir/$1.log" >&2
	exit 1
}
# With a shared store only one instance seeds the demo concert.
start_server a --demo
port_a=$port
if [ -n "${CONCERT_STORE:-}" ]; then start_server b ""; else start_server b --demo; fi
port_b=$port

mkdir -p "$dir/nginx/logs" "$dir/nginx/temp"
sed -e "s|@USER@|$(id -un)|" -e "s|@EDGE_PORT@|$edge_port|" \
	-e "s|@UPSTREAM_A@|$port_a|" -e "s|@UPSTREAM_B@|$port_b|" \
	-e "s|@LUA_DIR@|$root/bindings/lua|" -e "s|@CONCERT_LIB@|$lib|" \
	-e "s|@SECRET_FILE@|$dir/secret|" -e "s|@CONCERT_ID@|1|" \
	"$root/examples/edge/nginx.conf" >"$dir/nginx/nginx.conf"
echo "edge on http://127.0.0.1:$edge_port -> 127.0.0.1:$port_a, 127.0.0.1:$port_b (Ctrl-C stops)"
nginx -p "$dir/nginx/" -c "$dir/nginx/nginx.conf" -e "$dir/nginx/logs/error.log" &
pids="$pids $!"
wait

#!/bin/sh
# Edge benchmark (docs/edge.md): wrk against nginx + resty.concert, a
# location that verifies X-QUEUE-TOKEN and answers 204 vs the same location
# answering 204 without the check. Target: verify >= 0.8x plain.
#
#   bench/bench_edge.sh      build build/bench-edge, run, write bench/results/edge.json
# The two run in BENCH_ROUNDS alternating pairs; the ratio is the median of
# the pairs' ratios (on a shared 2-core box the load moves between runs).
# Environment: BENCH_DURATION (seconds per run, 10), BENCH_ROUNDS (3),
# BENCH_CONNECTIONS (64), BENCH_THREADS (wrk threads and nginx workers, 2),
# CONCERT_LIB + CONCERT_LUA_CPATH (libconcert.so and the directory pattern
# of the Lua 5.4 concert_core.so, e.g. build/bindings/lua/lua5.4/?.so, to
# use instead of building).
#
# Loopback only; every process it starts is stopped on exit.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
duration=${BENCH_DURATION:-10}
rounds=${BENCH_ROUNDS:-3}
connections=${BENCH_CONNECTIONS:-64}
threads=${BENCH_THREADS:-2}
out=$root/bench/results/edge.json
nginx=$(command -v nginx || echo /usr/sbin/nginx)

die() { echo "bench_edge: $*" >&2; exit 1; }
command -v wrk >/dev/null || die "wrk is missing (apt-get install wrk)"
[ -x "$nginx" ] || die "nginx is missing (apt-get install nginx)"
[ -f /usr/lib/nginx/modules/ngx_http_lua_module.so ] ||
	die "the lua module is missing (apt-get install libnginx-mod-http-lua lua-resty-core)"
command -v lua5.4 >/dev/null || die "lua5.4 is missing"
command -v python3 >/dev/null || die "python3 is missing"

lib=${CONCERT_LIB:-}
cpath=${CONCERT_LUA_CPATH:-}
if [ -z "$lib" ] || [ -z "$cpath" ]; then
	build=$root/build/bench-edge
	echo "building libconcert and the Lua module (Release) in $build"
	cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCONCERT_BUILD_TESTS=OFF \
		-DCONCERT_BUILD_BENCH=OFF -DCONCERT_WITH_LUA=ON >/dev/null
	cmake --build "$build" --target concert concert_lua_lua5.4 -j"$(nproc)" >/dev/null
	lib=$build/libconcert.so
	cpath="$build/bindings/lua/lua5.4/?.so"
fi

tmp=$(mktemp -d /tmp/bench-edge.XXXXXX)
nginx_pid=""
cleanup() {
	[ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
secret=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
printf '%s\n' "$secret" >"$tmp/secret"
now=$(($(date +%s) * 1000))
token=$(EDGE_SECRET=$secret LUA_PATH="$root/bindings/lua/?.lua;;" LUA_CPATH="$cpath;;" lua5.4 -e "
	local c = require 'concert'
	io.write(assert(c.sign(os.getenv('EDGE_SECRET'), { token_id = 1, concert_id = 1,
		user_id = 'bench-user', issued_at = $now, kind = 'ACTIVE',
		active_until = $now + 3600000 })))")

mkdir -p "$tmp/logs" "$tmp/temp"
sed -e "s|@USER@|$(id -un)|" -e "s|@WORKERS@|$threads|" -e "s|@PORT@|$port|" \
	-e "s|@LUA_DIR@|$root/bindings/lua|" -e "s|@CONCERT_LIB@|$lib|" \
	-e "s|@SECRET_FILE@|$tmp/secret|" "$root/bench/bench_edge.conf" >"$tmp/nginx.conf"
"$nginx" -p "$tmp/" -c "$tmp/nginx.conf" -e "$tmp/logs/error.log" &
nginx_pid=$!
for _ in $(seq 100); do
	python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null && break
	sleep 0.1
done

# Sanity: the check works before it is measured.
python3 - "$port" "$token" <<'PY' || die "the edge does not answer as expected"
import http.client, sys
port, token = int(sys.argv[1]), sys.argv[2]
def status(path, tok=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", path, headers={"X-QUEUE-TOKEN": tok} if tok else {})
    return c.getresponse().status
assert status("/verify", token) == 204
assert status("/verify", token[:-2]) == 401
assert status("/verify") == 401
assert status("/plain") == 204
PY

run() { # name path -> $tmp/name.N.txt
	wrk -t"$threads" -c"$connections" -d"${duration}s" --latency \
		-H "X-QUEUE-TOKEN: $token" "http://127.0.0.1:$port$2" >"$tmp/$1.$3.txt"
}
echo "warming up"
wrk -t"$threads" -c"$connections" -d2s -H "X-QUEUE-TOKEN: $token" "http://127.0.0.1:$port/verify" >/dev/null
i=1
while [ "$i" -le "$rounds" ]; do
	echo "round $i/$rounds: plain, verify (${duration}s each)"
	run plain /plain "$i"
	run verify /verify "$i"
	i=$((i + 1))
done

PYTHONPATH="$root/bench" python3 - "$tmp" "$rounds" "$out" "$duration" "$connections" "$threads" <<'PY'
import json, os, statistics, subprocess, sys, time
from wrk_report import parse, summary
tmp, rounds, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
duration, connections, threads = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])

res = {name: [parse(open(os.path.join(tmp, "%s.%d.txt" % (name, i))).read())
              for i in range(1, rounds + 1)]
       for name in ("plain", "verify")}
ratios = [v["requests_per_s"] / p["requests_per_s"] for p, v in zip(res["plain"], res["verify"])]
nginx_version = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
doc = {"command": "bench/bench_edge.sh",
       "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
       "cpus": os.cpu_count(), "duration_s": duration, "rounds": rounds,
       "connections": connections, "threads": threads, "nginx": nginx_version,
       "plain_204": summary(res["plain"]), "verify_204": summary(res["verify"]),
       "ratio_rounds": [round(r, 3) for r in ratios],
       "ratio": round(statistics.median(ratios), 3), "target": 0.8}
doc["meets_target"] = doc["ratio"] >= 0.8
os.makedirs(os.path.dirname(out), exist_ok=True)
with open(out, "w") as f:
    json.dump(doc, f, indent=2)
    f.write("\n")
print("plain  %10.1f req/s   verify %10.1f req/s   ratio %.3f (target 0.8)" % (
    doc["plain_204"]["requests_per_s"], doc["verify_204"]["requests_per_s"], doc["ratio"]))
if doc["plain_204"]["non_2xx"] or doc["verify_204"]["non_2xx"]:
    sys.exit("bench_edge: non-2xx answers during the run")
PY
echo "wrote $out"

#!/bin/sh
# HTTP benchmark (DESIGN.md §8): wrk against concert-http-server (memory
# backend, --demo, Release build) and, in the same run with the same
# connections, against nginx serving a static file as large as the seat map.
#
#   bench/bench_http.sh            build build/bench-http, run, write
#                                  bench/results/http.json
# GET seats and nginx run in BENCH_ROUNDS alternating pairs (the ratio is the
# median of the pairs' ratios: on a shared 2-core box the load moves between
# runs), then the hold/release cycle runs once.
# Environment: BENCH_DURATION (seconds per run, 10), BENCH_ROUNDS (3),
# BENCH_CONNECTIONS (64), BENCH_THREADS (wrk threads and server/nginx
# workers, 2), CONCERT_HTTP_SERVER (use this binary instead of building one).
#
# Loopback only; every process it starts is stopped on exit.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
duration=${BENCH_DURATION:-10}
rounds=${BENCH_ROUNDS:-3}
connections=${BENCH_CONNECTIONS:-64}
threads=${BENCH_THREADS:-2}
out=$root/bench/results/http.json
nginx=$(command -v nginx || echo /usr/sbin/nginx)

die() { echo "bench_http: $*" >&2; exit 1; }
command -v wrk >/dev/null || die "wrk is missing (apt-get install wrk)"
[ -x "$nginx" ] || die "nginx is missing (apt-get install nginx)"
command -v curl >/dev/null || die "curl is missing"
command -v python3 >/dev/null || die "python3 is missing"

server=${CONCERT_HTTP_SERVER:-}
if [ -z "$server" ]; then
	build=$root/build/bench-http
	echo "building the server (Release) in $build"
	cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCONCERT_BUILD_TESTS=OFF \
		-DCONCERT_BUILD_BENCH=OFF >/dev/null
	cmake --build "$build" --target concert_http_server -j"$(nproc)" >/dev/null
	server=$build/examples/http_server/concert-http-server
fi

tmp=$(mktemp -d /tmp/bench-http.XXXXXX)
server_pid=""
nginx_pid=""
cleanup() {
	[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
	[ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# --- the server -----------------------------------------------------------
"$server" --demo --listen 127.0.0.1:0 --threads "$threads" --max-active 1000 \
	--access-log off 2>"$tmp/server.log" &
server_pid=$!
port=""
for _ in $(seq 1 100); do
	port=$(sed -n 's/.*"listening","url":"http:\/\/127\.0\.0\.1:\([0-9]*\)".*/\1/p' "$tmp/server.log")
	[ -n "$port" ] && break
	sleep 0.1
done
[ -n "$port" ] || { cat "$tmp/server.log" >&2; die "the server did not start"; }
base=http://127.0.0.1:$port

# --- nginx with its own prefix and a file as large as the seat map ---------
mkdir -p "$tmp/www" "$tmp/logs"
curl -sf "$base/v1/schedules/1/seats" >"$tmp/www/seats.json"
bytes=$(wc -c <"$tmp/www/seats.json")
nginx_port=$(free_port)
chmod 755 "$tmp" "$tmp/www"
chmod 644 "$tmp/www/seats.json"
cat >"$tmp/nginx.conf" <<CONF
worker_processes $threads;
daemon off;
pid $tmp/nginx.pid;
error_log $tmp/logs/error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	sendfile on;
	tcp_nopush on;
	tcp_nodelay on;
	keepalive_timeout 65;
	keepalive_requests 1000000;
	types { application/json json; }
	client_body_temp_path $tmp/client_body;
	proxy_temp_path $tmp/proxy;
	fastcgi_temp_path $tmp/fastcgi;
	uwsgi_temp_path $tmp/uwsgi;
	scgi_temp_path $tmp/scgi;
	server {
		listen 127.0.0.1:$nginx_port;
		root $tmp/www;
	}
}
CONF
"$nginx" -p "$tmp" -c "$tmp/nginx.conf" -e "$tmp/logs/error.log" &
nginx_pid=$!
for _ in $(seq 1 100); do
	curl -sf "http://127.0.0.1:$nginx_port/seats.json" -o /dev/null && break
	sleep 0.1
done
curl -sf "http://127.0.0.1:$nginx_port/seats.json" -o /dev/null || die "nginx did not start"

# --- one ACTIVE token per seat for the hold/release cycle ------------------
: >"$tmp/tokens.txt"
for schedule in 1 2; do
	for seat in $(seq 1 50); do
		token=$(curl -sf -X POST "$base/v1/queue/tokens" \
			-d "{\"userId\":\"bench-$schedule-$seat\",\"concertId\":1}" |
			python3 -c 'import json, sys; q = json.load(sys.stdin); assert q["status"] == "ACTIVE"; print(q["token"])')
		echo "$token $schedule $seat" >>"$tmp/tokens.txt"
	done
done

# --- the runs ---------------------------------------------------------------
# wrk_run NAME URL [wrk args...]: writes $tmp/NAME.txt
wrk_run() {
	name=$1
	url=$2
	shift 2
	echo "wrk $name: -t$threads -c$connections -d${duration}s $url $*"
	wrk -t"$threads" -c"$connections" -d"${duration}s" --latency "$@" "$url" >"$tmp/$name.txt"
}
for round in $(seq 1 "$rounds"); do
	wrk_run "nginx_static.$round" "http://127.0.0.1:$nginx_port/seats.json"
	wrk_run "concert_get_seats.$round" "$base/v1/schedules/1/seats"
done
BENCH_TOKENS=$tmp/tokens.txt BENCH_THREADS=$threads \
	wrk_run concert_hold_release "$base/v1/holds" -s "$root/bench/bench_http_holds.lua"

# Holds whose release wrk did not get to send before it stopped.
held=$(curl -sf "$base/v1/concerts/1/schedules" |
	python3 -c 'import json, sys; print(sum(s["heldSeats"] for s in json.load(sys.stdin)))')

PYTHONPATH="$root/bench" python3 - "$tmp" "$out" "$bytes" "$duration" "$connections" "$threads" "$held" "$rounds" <<'PY'
import json, os, re, statistics, sys, time
import wrk_report
from wrk_report import summary
tmp, out, size, duration, connections, threads, held, rounds = sys.argv[1:]
rounds = int(rounds)

def parse(name):
    text = open(os.path.join(tmp, name + ".txt")).read()
    r = wrk_report.parse(text)
    m = re.search(r"holds-bench fallbacks=(\d+) unexpected=(\d+)", text)
    if m:
        r["health_fillers"] = int(m.group(1))
        r["unexpected_answers"] = int(m.group(2))
        r["cycles_per_s"] = round((r["requests_per_s"] - int(m.group(1)) / float(duration)) / 2, 1)
    return r

nginx_runs = [parse("nginx_static.%d" % i) for i in range(1, rounds + 1)]
seats_runs = [parse("concert_get_seats.%d" % i) for i in range(1, rounds + 1)]
ratios = [s["requests_per_s"] / n["requests_per_s"] for s, n in zip(seats_runs, nginx_runs)]
ratio = statistics.median(ratios)
res = {
    "command": "bench/bench_http.sh",
    "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "cpus": os.cpu_count(),
    "duration_s": int(duration), "rounds": rounds,
    "connections": int(connections), "threads": int(threads),
    "body_bytes": int(size),
    "nginx_static": summary(nginx_runs),
    "concert_get_seats": summary(seats_runs),
    "concert_hold_release": parse("concert_hold_release"),
    "holds_open_when_wrk_stopped": int(held),
}
res["get_seats_vs_nginx"] = round(ratio, 3)
res["get_seats_vs_nginx_per_round"] = [round(r, 3) for r in ratios]
res["target_get_seats_vs_nginx"] = 0.5
res["target_met"] = ratio >= 0.5
with open(out, "w") as f:
    json.dump(res, f, indent=2)
    f.write("\n")

print()
print("%-34s %12s %9s %9s" % ("median of %d (%d B, -c%s -t%s)" % (rounds, int(size), connections,
                                                                  threads),
                                "req/s", "p50 ms", "p99 ms"))
for key in ("nginx_static", "concert_get_seats", "concert_hold_release"):
    r = res[key]
    print("%-34s %12.0f %9.3f %9.3f" % (key, r["requests_per_s"], r["p50_ms"], r["p99_ms"]))
hr = res["concert_hold_release"]
print("hold+release cycles/s: %.0f (non-2xx %d, unexpected %d, holds open at the end %s)"
      % (hr["cycles_per_s"], hr["non_2xx"], hr["unexpected_answers"], held))
print("GET seats / nginx static: %.2fx, median of %s (target >= 0.5x: %s)"
      % (ratio, ", ".join("%.2f" % r for r in ratios), "met" if ratio >= 0.5 else "NOT met"))
print("wrote", out)
PY

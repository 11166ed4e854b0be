#!/bin/sh
# The Redis benchmark: queue enter, queue status (with 1,000,000 waiting),
# lock acquire and release through the Redis backend at 1, 8 and 50 clients,
# next to `redis-benchmark` of EVALSHA (a one-line script) and of SET NX PX
# at the same client counts on the same throwaway server (no persistence);
# then the hot seat with and without the lock. See bench_redis.c.
# Writes bench/results/redis.json and prints a table.
#
#   bench/run_redis.sh [CLIENTS]        e.g. bench/run_redis.sh 1,8,50
# Env: BUILD_DIR (default build/bench-redis, a Release build made here),
#      PORT (default 26379), PHASE_SECONDS (default 3), WAITING (default 1000000),
#      HOT_STORE (the hot seat's store; default memory:, e.g. a postgresql:// URI).
set -eu
cd "$(dirname "$0")/.."
clients=${1:-1,8,50}
build=${BUILD_DIR:-build/bench-redis}
port=${PORT:-26379}
seconds=${PHASE_SECONDS:-3}
waiting=${WAITING:-1000000}
hot_store=${HOT_STORE:-memory:}
with_pg=OFF
case $hot_store in postgres*) with_pg=ON ;; esac
dir=$(mktemp -d /tmp/concert-bench-redis.XXXXXX)

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCONCERT_WITH_REDIS=ON \
	-DCONCERT_WITH_POSTGRES="$with_pg" -DCONCERT_BUILD_TESTS=OFF -DCONCERT_WITH_EXAMPLES=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target bench_redis >/dev/null

trap 'tests/servers/redis.sh stop "$dir/server" "$port"; rm -rf "$dir"' EXIT INT TERM
tests/servers/redis.sh start "$dir/server" "$port"

mkdir -p bench/results
"$build/bench/bench_redis" --port "$port" --clients "$clients" --seconds "$seconds" \
	--waiting "$waiting" --hot-store "$hot_store" --json bench/results/redis.json
echo "wrote bench/results/redis.json"

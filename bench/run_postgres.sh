#!/bin/sh
# The PostgreSQL benchmark: hold, pay, queue enter and queue status through
# libconcert at 1, 8 and 32 clients, next to `pgbench -b simple-update` at
# the same client counts against the same throwaway server (fsync on); the
# pgbench runs bracket each client count's phases (see bench_postgres.c).
# Writes bench/results/postgres.json and prints a table.
#
#   bench/run_postgres.sh [CLIENTS]        e.g. bench/run_postgres.sh 1,8,32
# Env: BUILD_DIR (default build/bench-pg, a Release build made here),
#      PGBENCH_SECONDS (default 8), PORT (default 55433).
set -eu
cd "$(dirname "$0")/.."
clients=${1:-1,8,32}
build=${BUILD_DIR:-build/bench-pg}
seconds=${PGBENCH_SECONDS:-8}
port=${PORT:-55433}
dir=$(mktemp -d /tmp/concert-bench-pg.XXXXXX)
chmod 755 "$dir"

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCONCERT_WITH_POSTGRES=ON \
	-DCONCERT_BUILD_TESTS=OFF -DCONCERT_WITH_EXAMPLES=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target bench_postgres >/dev/null

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
pgbench=$(command -v pgbench || echo "$bindir/pgbench")
trap 'tests/servers/postgres.sh stop "$dir/server" "$port"; rm -rf "$dir"' EXIT INT TERM
uri=$(tests/servers/postgres.sh start "$dir/server" "$port" stats)
"$pgbench" -i -q -s 10 -h 127.0.0.1 -p "$port" -U postgres concert_test >/dev/null 2>&1

mkdir -p bench/results
# 6000 operations per phase: at several thousand a second, fewer made a
# phase last well under a second, which one burst of other load on a
# shared machine could halve.
"$build/bench/bench_postgres" --uri "$uri?schema=bench" --clients "$clients" --ops 6000 --status-ops 8000 \
	--pgbench-cmd "$pgbench -h 127.0.0.1 -p $port -U postgres concert_test" \
	--pgbench-seconds "$seconds" --json bench/results/postgres.json
echo "wrote bench/results/postgres.json"

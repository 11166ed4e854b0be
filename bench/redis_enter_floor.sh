#!/bin/sh
# How fast can any Lua queue enter be on this machine? redis-benchmark alone
# (no libconcert code on the client side) calls two stand-ins for an enter
# and, before and after them, the issue's reference, EVALSHA of `return 1`:
#   floor_call   an FCALL with an enter's 8 keys and 7 arguments that does
#                nothing: the price of the call itself
#   floor_enter  the fewest commands any enter needs: one read (the sequence
#                counter and the user, for idempotency) and one write (the
#                counter, the token's record and the user), all in one hash,
#                with no waiting order, no idle index and no admission;
#                x1 one enter per call, x2 two (above 1 client; combined
#                enters come two a call at 8 clients, see enter_in_line in
#                lib/storage/redis/queue.c)
# Both are lower bounds: the real enter (lib/storage/redis/scripts.c) does
# strictly more. Prints enters/s and the ratio to the mean of the two
# references around each.
#
#   bench/redis_enter_floor.sh [CLIENTS] [ROUNDS]     e.g. 1,8 3
# Env: PORT (default 26379).
set -eu
cd "$(dirname "$0")/.."
clients=${1:-1,8}
rounds=${2:-3}
port=${PORT:-26379}
dir=$(mktemp -d /tmp/concert-bench-floor.XXXXXX)
trap 'tests/servers/redis.sh stop "$dir/server" "$port"; rm -rf "$dir"' EXIT INT TERM
tests/servers/redis.sh start "$dir/server" "$port"
cli() { redis-cli -h 127.0.0.1 -p "$port" "$@"; }

cli -x FUNCTION LOAD >/dev/null <<'LUA'
#!lua name=floor
redis.register_function('floor_call', function(keys, args) return { 0, 0, 0, 0 } end)
redis.register_function('floor_enter', function(keys, args)
  local n = (#args - 5) / 2
  local q = { keys[5], 'seq' }
  for i = 1, n do q[i + 2] = args[4 + 2 * i] end
  local m = redis.call('HMGET', unpack(q))
  for i = 2, n + 1 do if m[i] then return { 1, m[i] } end end
  local seq = tonumber(m[1]) or 0
  local tail = '|' .. args[1] .. '|' .. args[1] + args[4] .. '|0|'
  local w = { keys[5], 'seq', seq + n }
  for i = 1, n do
    local user, id = args[4 + 2 * i], args[5 + 2 * i]
    w[#w + 1], w[#w + 2] = id, '1|' .. (seq + i) .. tail .. user
    w[#w + 1], w[#w + 2] = user, id
  end
  redis.call('HSET', unpack(w))
  return { 0, seq + 1, args[1], 0 }
end)
LUA
sha=$(cli SCRIPT LOAD 'return 1')

# requests per second of one redis-benchmark run: rps CLIENTS COMMAND...
rps() {
	c=$1
	shift
	n=$((c == 1 ? 20000 : 100000))
	redis-benchmark -h 127.0.0.1 -p "$port" -c "$c" -n "$n" -r 2000000000 -q "$@" |
		tr '\r' '\n' | sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p' | tail -1
}

# One user and token id, of 24 random digits each: no repeats in a run.
pair='u__rand_int____rand_int__ 9__rand_int____rand_int__'
printf '%-8s %-6s %-16s %10s %10s %6s\n' clients round function enters/s raw ratio
round=0
for c in $(echo "$clients" | tr ',' ' '); do
	r=1
	while [ "$r" -le "$rounds" ]; do
		for case in floor_call:1 floor_enter:1 floor_enter:2; do
			fn=${case%:*}
			n=${case#*:}
			# One client has nothing to combine with.
			[ "$c" -gt 1 ] || [ "$n" = 1 ] || continue
			round=$((round + 1))
			k="floor:concert:{$round}"
			users=$pair
			[ "$n" = 1 ] || users="$pair v${pair#u} "
			before=$(rps "$c" EVALSHA "$sha" 0)
			# shellcheck disable=SC2086 # $users is n pairs of words
			calls=$(rps "$c" FCALL "$fn" 8 "$k:meta" "$k:waiting" "$k:idle" "$k:active" \
				"$k:tokens" "$k:users" "$k:ended" "$k:gone" 1795497880906 1 0 3600000 \
				3600000 $users)
			after=$(rps "$c" EVALSHA "$sha" 0)
			awk -v c="$c" -v r="$r" -v f="$fn x$n" -v o="$calls" -v n="$n" -v b="$before" \
				-v a="$after" 'BEGIN { raw = (a + b) / 2
				printf "%-8s %-6s %-16s %10.0f %10.0f %6.2f\n", c, r, f, o * n, raw, o * n / raw }'
		done
		r=$((r + 1))
	done
done

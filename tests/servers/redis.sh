#!/bin/sh
# A throwaway redis-server for the tests, on 127.0.0.1 only.
#
#   redis.sh start DIR PORT [aof]   start (daemonized) with its data, pidfile,
#                                   log and unix socket (DIR/redis.sock) in DIR;
#                                   "aof" turns on appendonly with fsync always
#   redis.sh stop DIR PORT          SHUTDOWN NOSAVE, wait for the process to go
#   redis.sh crash DIR PORT         SIGKILL (what a power cut does to the server)
#   redis.sh reset DIR PORT         stop it if it runs and remove DIR (a fresh start)
#
# RDB snapshots are off, so a restart without "aof" starts empty.
set -eu
cmd=${1:?usage: redis.sh start|stop|crash|reset DIR PORT [aof]}
dir=${2:?DIR missing}
port=${3:?PORT missing}
mode=${4:-}
pidfile=$dir/redis.pid

running() {
	[ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

wait_gone() {
	i=0
	while running; do
		i=$((i + 1))
		[ $i -le 100 ] || { echo "redis.sh: server in $dir did not stop" >&2; exit 1; }
		sleep 0.05
	done
	rm -f "$pidfile"
}

case $cmd in
start)
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	pidfile=$dir/redis.pid
	if running; then
		redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || kill -9 "$(cat "$pidfile")"
		wait_gone
	fi
	appendonly=no
	[ "$mode" = aof ] && appendonly=yes
	socket=""
	# A unix socket path must fit in sun_path (108 bytes).
	[ ${#dir} -lt 96 ] && socket="unixsocket $dir/redis.sock
unixsocketperm 700"
	cat >"$dir/redis.conf" <<CONF
bind 127.0.0.1
protected-mode yes
port $port
$socket
dir $dir
daemonize yes
pidfile $pidfile
logfile $dir/redis.log
save ""
appendonly $appendonly
appendfsync always
CONF
	redis-server "$dir/redis.conf"
	i=0
	until [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ]; do
		i=$((i + 1))
		if [ $i -gt 200 ]; then
			echo "redis.sh: server on port $port did not start; log:" >&2
			tail -n 20 "$dir/redis.log" >&2 || true
			exit 1
		fi
		sleep 0.05
	done
	# The answer must come from this server, not from another one on the port.
	pid=$(redis-cli -h 127.0.0.1 -p "$port" info server | sed -n 's/^process_id:\([0-9]*\).*/\1/p')
	if [ "$pid" != "$(cat "$pidfile" 2>/dev/null)" ]; then
		echo "redis.sh: port $port is taken by another server (pid $pid)" >&2
		exit 1
	fi
	;;
stop)
	running || { rm -f "$pidfile"; exit 0; }
	redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || kill -9 "$(cat "$pidfile")"
	wait_gone
	;;
crash)
	running && kill -9 "$(cat "$pidfile")"
	wait_gone
	;;
reset)
	if running; then
		redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || kill -9 "$(cat "$pidfile")"
		wait_gone
	fi
	rm -rf "$dir"
	;;
*)
	echo "usage: redis.sh start|stop|crash|reset DIR PORT [aof]" >&2
	exit 2
	;;
esac

#!/bin/sh
# A throwaway PostgreSQL for the tests.
#   postgres.sh start DIR PORT   initdb in DIR/data, listen on 127.0.0.1:PORT
#                                (unix socket in DIR), fsync on, database
#                                "concert_test"; trust authentication, user
#                                "postgres".
#   postgres.sh start DIR PORT stats   the same, loading pg_stat_statements
#                                (the benchmark counts round trips with it).
#   postgres.sh stop DIR PORT    stop the server and remove DIR.
#   postgres.sh restart DIR PORT restart it with -m immediate (a crash).
# As root, the server runs as the "postgres" system user (initdb refuses
# root); DIR must then be reachable by that user.
set -eu
cmd=${1:?usage: postgres.sh start|stop|restart DIR PORT}
dir=${2:?usage: postgres.sh start|stop|restart DIR PORT}
port=${3:?usage: postgres.sh start|stop|restart DIR PORT}
extra=${4:-}

bindir=$(pg_config --bindir 2>/dev/null || true)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
	bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
fi
[ -x "$bindir/initdb" ] || { echo "postgres.sh: no initdb (install postgresql)" >&2; exit 1; }

as_server() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# The server runs as "postgres" when we are root: if it cannot reach DIR
# (say the build tree is under /root), DIR becomes a link to a directory in
# /tmp and the server is given the real path.
reachable() {
	[ "$(id -u)" -ne 0 ] || runuser -u postgres -- test -x "$1"
}
if [ "$cmd" = start ]; then
	if [ -L "$dir" ]; then
		rm -rf "$(readlink -f "$dir")"
		rm -f "$dir"
	fi
	mkdir -p "$(dirname "$dir")"
	if ! reachable "$(dirname "$dir")"; then
		ln -s "$(mktemp -d /tmp/concert-pg.XXXXXX)" "$dir"
	fi
fi
link=""
if [ -L "$dir" ]; then
	link=$dir
	dir=$(readlink -f "$dir")
fi
data=$dir/data
log=$dir/server.log

case $cmd in
start)
	if [ -f "$data/postmaster.pid" ] && as_server "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
		as_server "$bindir/pg_ctl" -D "$data" -m fast -w stop >/dev/null
	fi
	rm -rf "$dir"
	mkdir -p "$dir"
	chmod 755 "$dir"
	if [ "$(id -u)" -eq 0 ]; then
		chown postgres "$dir"
	fi
	as_server "$bindir/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
		>"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
	cat >>"$data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
fsync = on
synchronous_commit = on
max_connections = 300
shared_buffers = 128MB
log_min_messages = warning
CONF
	if [ "$extra" = stats ]; then
		echo "shared_preload_libraries = 'pg_stat_statements'" >>"$data/postgresql.conf"
	fi
	as_server "$bindir/pg_ctl" -D "$data" -l "$log" -w -t 60 start >/dev/null ||
		{ cat "$log" >&2; exit 1; }
	as_server "$bindir/createdb" -h "$dir" -p "$port" -U postgres concert_test
	if [ "$extra" = stats ]; then
		"$bindir/psql" -q -h "$dir" -p "$port" -U postgres -d concert_test \
			-c "CREATE EXTENSION pg_stat_statements" >/dev/null
	fi
	echo "postgresql://postgres@127.0.0.1:$port/concert_test"
	;;
restart)
	as_server "$bindir/pg_ctl" -D "$data" -l "$log" -m immediate -w -t 60 restart >/dev/null
	;;
stop)
	if [ -f "$data/postmaster.pid" ]; then
		as_server "$bindir/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null || true
	fi
	rm -rf "$dir"
	[ -z "$link" ] || rm -f "$link"
	;;
*)
	echo "usage: postgres.sh start|stop|restart DIR PORT" >&2
	exit 2
	;;
esac

#!/bin/bash
#
# compat-postgres.sh: PostgreSQL, unchanged, through the library, both
# ends shimmed, over two emulated paths.  The postmaster accepts each
# connection and forks a backend that serves it: a connection accepted in
# one process and used in its child.  initdb runs as the postgres user
# into a temporary directory; the server listens on the server
# namespace's address with trust authentication for the test network.
#   - pgbench -i, then pgbench -c 8 -j 2 -T 10 must exit 0 with no failed
#     transaction; tps is printed;
#   - pgbench -C (a new connection, so a new backend, per transaction) for
#     3 s, the same;
#   - the replies are checked: the balances pgbench moved must agree
#     (sum of accounts = sum of tellers = sum of branches = sum of
#     history), and pgbench_accounts holds its 100000 rows;
#   - every stream of a psql session starts with a record (MPTCP), and a
#     subflow takes the second path during pgbench.
#
# Usage: compat-postgres.sh [path/to/libmptcpshim.so]   (or set SHIMLIB)
# Exit: 0 pass, 1 fail, 77 skip.

# shellcheck source=./compat-lib.bash
. "$(dirname "$0")/compat-lib.bash"

compat_setup compat-postgres "$@"
require_pkg pgbench postgresql-contrib
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$PGBIN/postgres" ] || require_pkg /usr/lib/postgresql postgresql
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$PGBIN/postgres" ] || skip "no postgres binary under /usr/lib/postgresql"
id postgres >/dev/null 2>&1 || skip "no postgres user"
require_pkg tcpdump tcpdump

PORT=5440
PG=$IT_TMP/pg
mkdir -p "$PG"
# The postgres user reads the library and its own directory only.
cp "$SHIMLIB" "$PG/libmptcpshim.so"
chmod 711 "$IT_TMP"
chown postgres: "$PG"

as_postgres()
{
	runuser -u postgres -- "$@"
}

COMPAT_CLEANUP_HOOK()
{
	ip netns exec "$NS_B" runuser -u postgres -- \
		"$PGBIN/pg_ctl" -D "$PG/data" -m immediate -w -t 10 stop
}

as_postgres "$PGBIN/initdb" -D "$PG/data" -U postgres -A trust -E UTF8 \
	--no-sync >"$IT_TMP/initdb.out" 2>&1 ||
	fail "initdb failed: $(tail -c 300 "$IT_TMP/initdb.out")"
cat >>"$PG/data/postgresql.conf" <<CONF
listen_addresses = '$B4'
port = $PORT
unix_socket_directories = '$PG'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 40
shared_buffers = 32MB
CONF
echo "host all all 10.31.0.0/16 trust" >>"$PG/data/pg_hba.conf"

shim_env "$PG/libmptcpshim.so"
ip netns exec "$NS_B" runuser -u postgres -- env \
	"${SHIM_ENV[@]}" "$PGBIN/postgres" -D "$PG/data" \
	>"$IT_TMP/postgres.out" 2>&1 &
SERVER_PID=$!
wait_listen "$NS_B" "$PORT" "$SERVER_PID" ||
	fail "postgres does not listen: $(excerpt "$IT_TMP/postgres.out")"

PGARGS=(-h "$B4" -p "$PORT" -U postgres)
psql_q()
{
	run_shim "$NS_A" timeout 30 "$PGBIN/psql" "${PGARGS[@]}" -X -A -t \
		-v ON_ERROR_STOP=1 -c "$1" postgres 2>>"$IT_TMP/psql.err"
}

# Usage: pgbench_run LABEL ARGS...
pgbench_run()
{
	local label=$1 out=$IT_TMP/pgbench-$1.out failed tps

	shift
	run_shim "$NS_A" timeout 40 pgbench "${PGARGS[@]}" "$@" postgres \
		>"$out" 2>&1 ||
		check_fail "pgbench $label exited with $?: $(tail -c 300 "$out")"
	failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' \
		"$out")
	tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$out" | tail -1)
	[ "$failed" = 0 ] ||
		check_fail "pgbench $label: failed transactions: ${failed:-?}"
	grep -qiE '^(pgbench: )?error' "$out" &&
		check_fail "pgbench $label: $(grep -iE 'error' "$out" | head -2)"
	say "pgbench $label: tps ${tps:-?}, failed transactions ${failed:-?}"
}

run_shim "$NS_A" timeout 60 pgbench "${PGARGS[@]}" -i -s 1 -q postgres \
	>"$IT_TMP/init.out" 2>&1 ||
	fail "pgbench -i failed: $(tail -c 300 "$IT_TMP/init.out")"
compat_paths_start pgbench
pgbench_run "-c 8 -T 10" -c 8 -j 2 -T 10
compat_paths_stop pgbench
# -n: no vacuum, so pgbench_history keeps the first run's rows too
pgbench_run "-C -c 4 -T 3" -n -C -c 4 -j 2 -T 3

heads_start psql "$PORT"
rows=$(psql_q "select count(*) from pgbench_accounts")
sums=$(psql_q "select (select sum(abalance) from pgbench_accounts) || ' ' ||
	(select sum(tbalance) from pgbench_tellers) || ' ' ||
	(select sum(bbalance) from pgbench_branches) || ' ' ||
	(select sum(delta) from pgbench_history) || ' ' ||
	(select count(*) from pgbench_history)")
compat_framed psql "$PORT"
read -r a t b h n <<<"$sums"
if [ "$rows" = 100000 ] && [ -n "$h" ] && [ "$a" = "$t" ] &&
	[ "$t" = "$b" ] && [ "$b" = "$h" ] && [ "${n:-0}" -gt 0 ]; then
	say "ok - replies agree: 100000 accounts, $n transactions, balances" \
		"$a everywhere"
else
	check_fail "replies disagree: rows=$rows sums='$sums'" \
		"$(excerpt "$IT_TMP/psql.err")"
fi
it_finish

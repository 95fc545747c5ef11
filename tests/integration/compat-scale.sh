#!/bin/bash
#
# compat-scale.sh: 1000 connections open at once in one process.  A
# shimmed python3 client (compat-tool.py scale: non-blocking connects under
# one selector) opens them all, waits until every one is established,
# then sends each its own 16 KiB pattern and checks every byte of each
# echo from a shimmed selectors echo server.  Both ends shimmed, over two
# emulated paths; RLIMIT_NOFILE is raised to 16384 (prlimit) for both.  Prints the
# resident memory (VmRSS) the client grew by, per connection, while all
# were open, beside the same run over plain TCP.
#
# Usage: compat-scale.sh [path/to/libmptcpshim.so]   (or set SHIMLIB)
# Exit: 0 pass, 1 fail, 77 skip.

# shellcheck source=./compat-lib.bash
. "$(dirname "$0")/compat-lib.bash"

compat_setup compat-scale "$@"
require_cmd prlimit
TOOL=$IT_DIR/compat-tool.py
CONNS=${COMPAT_SCALE_CONNS:-1000}

# Usage: scale MODE PORT
scale()
{
	local mode=$1 port=$2 out=$IT_TMP/scale-$1.out

	start_server "echo-$mode" "$mode" "$NS_B" "$port" prlimit \
		--nofile=16384:16384 "$PY" "$TOOL" --deadline 100 echo-server \
		--bind "$B4" --port "$port" --nofile 16384
	run_as "$mode" "$NS_A" prlimit --nofile=16384:16384 "$PY" "$TOOL" \
		--deadline 60 scale --host "$B4" --port "$port" \
		--conns "$CONNS" --bytes 16384 --nofile 16384 \
		>"$out" 2>"$IT_TMP/scale-$mode.err"
	local rc=$?
	stop_pid "$SERVER_PID"
	if [ "$rc" -ne 0 ]; then
		check_fail "$mode: exit $rc: $(excerpt "$IT_TMP/scale-$mode.err")"
		PER=?
		return
	fi
	PER=$(sed -n 's/.*per_conn_open_kib=\([0-9.]*\).*/\1/p' "$out")
	say "ok - $mode: $(sed 's/ rss_base.*//' "$out")"
	say "$mode: $(sed 's/.*rss_base/rss_base/' "$out")"
}

scale plain 7200
plain_per=$PER
compat_paths_start scale
scale shim 7201
compat_paths_stop scale
say "resident memory per connection (client): shim $PER KiB," \
	"plain TCP $plain_per KiB ($CONNS connections)"
it_finish

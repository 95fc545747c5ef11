#!/bin/bash
#
# multipath-join-private.sh: a prefork server (two worker processes
# accepting on one listening socket, as nginx does) under the library,
# and several two-path clients one after another and two at once.  Each
# transfer arrives intact, the clients open a join subflow (two subflows
# seen with ss), and the server program's accept() returns exactly one
# connection per client: joins went to the owning worker's join
# listener, never to the program.

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/multipath-topo.bash"

SIZE_MB=${MP_SIZE_MB:-4}
PORT=5900
CLIENTS=0

client()
{
	run_shim "$NS_A" "$PY" "$MPTOOL" --deadline 60 client --host "$SRV" \
		--port "$PORT" --mode send --file "$IT_TMP/data" \
		>"$IT_TMP/client$1.out" 2>"$IT_TMP/client$1.err"
}

mp_setup join-private 2 "$@"
make_random_file "$IT_TMP/data" "$SIZE_MB"
: >"$IT_TMP/accepts"
start_server prefork shim "$NS_B" "$PORT" \
	"$PY" "$MPTOOL" --deadline 100 server --bind 0.0.0.0 --port "$PORT" \
	--mode sink --workers 2 --accepts "$IT_TMP/accepts"
maxsf=0
for i in 1 2 3; do
	client "$i" &
	pid=$!
	n=$(mp_max_subflows "$pid" 30)
	[ "$n" -gt "$maxsf" ] && maxsf=$n
	wait_pid "$pid" 30 || check_fail "client $i failed:" \
		"$(excerpt "$IT_TMP/client$i.err")"
	CLIENTS=$((CLIENTS + 1))
done
client 4 &
p4=$!
client 5 &
p5=$!
wait_pid "$p4" 40 || check_fail "client 4 failed: $(excerpt "$IT_TMP/client4.err")"
wait_pid "$p5" 40 || check_fail "client 5 failed: $(excerpt "$IT_TMP/client5.err")"
CLIENTS=$((CLIENTS + 2))
sleep 0.5
accepts=$(wc -l <"$IT_TMP/accepts")
workers=$(sort -u "$IT_TMP/accepts" | wc -l)
say "clients=$CLIENTS accepted=$accepts workers-used=$workers" \
	"max-subflows-seen=$maxsf"
[ "$accepts" -eq "$CLIENTS" ] ||
	check_fail "the program accepted $accepts connections for $CLIENTS clients"
[ "$maxsf" -ge 2 ] || check_fail "no join subflow was seen"
stop_pid "$SERVER_PID"
it_finish

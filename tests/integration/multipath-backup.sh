#!/bin/bash
#
# multipath-backup.sh: two shaped paths, the client names c2 in
# MPTCPSHIM_BACKUP.  While c1 works, c2 carries (almost) no data (under
# 5% of the bytes); with c1 blackholed a second into the transfer, the
# backup path carries the rest and the transfer completes intact.

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/multipath-topo.bash"

SIZE_MB=${MP_SIZE_MB:-8}
PORT=5800

# Usage: xfer LABEL BLACKHOLE(0|1); sets C2 to the bytes c2 carried.
xfer()
{
	local label=$1 hole=$2 pid rc b2

	PORT=$((PORT + 1))
	start_server "srv-$label" shim "$NS_B" "$PORT" \
		"$PY" "$MPTOOL" --deadline 90 server --bind 0.0.0.0 \
		--port "$PORT" --mode sink --accepts "$IT_TMP/accepts"
	b2=$(mp_bytes 2)
	run_shim "$NS_A" MPTCPSHIM_BACKUP=c2 "$PY" "$MPTOOL" --deadline 80 \
		client --host "$SRV" --port "$PORT" --mode send \
		--file "$IT_TMP/data" >"$IT_TMP/client.out" \
		2>"$IT_TMP/client.err" &
	pid=$!
	if [ "$hole" = 1 ]; then
		sleep 1
		ip netns exec "$NS_A" iptables -I OUTPUT -o c1 -j DROP
		ip netns exec "$NS_A" iptables -I INPUT -i c1 -j DROP
	fi
	wait_pid "$pid" 80
	rc=$?
	if [ "$hole" = 1 ]; then
		ip netns exec "$NS_A" iptables -D OUTPUT -o c1 -j DROP
		ip netns exec "$NS_A" iptables -D INPUT -i c1 -j DROP
	fi
	stop_pid "$SERVER_PID"
	C2=$(($(mp_bytes 2) - b2))
	[ "$rc" -eq 0 ] || check_fail "$label: transfer failed:" \
		"$(excerpt "$IT_TMP/client.err")"
	say "$label: $(cat "$IT_TMP/client.out"), c2 carried $C2 bytes"
}

mp_setup backup 2 "$@"
require_cmd iptables
make_random_file "$IT_TMP/data" "$SIZE_MB"
total=$((SIZE_MB * 1024 * 1024))
xfer primary-works 0
[ "$C2" -lt $((total / 20)) ] ||
	check_fail "backup path carried $C2 of $total bytes while c1 worked"
xfer primary-blackholed 1
[ "$C2" -gt $((total / 3)) ] ||
	check_fail "backup path carried only $C2 bytes with c1 blackholed"
it_finish

#!/bin/bash
#
# multipath-failover.sh: two shaped paths, both ends shimmed.  About a
# second into a transfer the primary path (c1, the program's own
# connection) is blackholed (iptables DROP), reset (REJECT with
# tcp-reset) or taken down (link down), with the data flowing client to
# server and server to client.  The transfer must complete intact; the
# fault is then lifted, and the path must carry data again before the
# transfer ends (a new subflow, or the old one recovering).  The longest
# gap without progress is printed (the stall).

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/multipath-topo.bash"

SIZE_MB=${MP_SIZE_MB:-16}
PORT=5700

fault()
{
	local on=$1 kind=$2 op

	[ "$on" = on ] && op=-I || op=-D
	case $kind in
	blackhole)
		ip netns exec "$NS_A" iptables "$op" INPUT -i c1 -j DROP
		ip netns exec "$NS_A" iptables "$op" OUTPUT -o c1 -j DROP
		;;
	reset)
		ip netns exec "$NS_A" iptables "$op" INPUT -i c1 -p tcp \
			-j REJECT --reject-with tcp-reset
		ip netns exec "$NS_A" iptables "$op" OUTPUT -o c1 -p tcp \
			-j REJECT --reject-with tcp-reset
		;;
	linkdown)
		[ "$on" = on ] && op=down || op=up
		ip -n "$NS_A" link set c1 "$op"
		[ "$op" = up ] && ip -n "$NS_A" route add default \
			via 10.20.1.254 dev c1 metric 10 2>/dev/null
		;;
	esac
	return 0
}

# Usage: one KIND DIRECTION
one()
{
	local kind=$1 dir=$2 smode pid rc after_restore c1

	PORT=$((PORT + 1))
	[ "$dir" = send ] && smode=sink || smode=source
	start_server "srv-$kind-$dir" shim "$NS_B" "$PORT" \
		"$PY" "$MPTOOL" --deadline 90 server --bind 0.0.0.0 \
		--port "$PORT" --mode "$smode" --file "$IT_TMP/data" \
		--accepts "$IT_TMP/accepts"
	run_shim "$NS_A" "$PY" "$MPTOOL" --deadline 80 client \
		--host "$SRV" --port "$PORT" --mode "$dir" \
		--file "$IT_TMP/data" >"$IT_TMP/client.out" \
		2>"$IT_TMP/client.err" &
	pid=$!
	sleep 1.2
	fault on "$kind"
	sleep 2
	fault off "$kind"
	after_restore=$(mp_bytes 1)
	c1=0
	for _ in $(seq 600); do
		kill -0 "$pid" 2>/dev/null || break
		[ $(($(mp_bytes 1) - after_restore)) -gt 200000 ] && c1=1
		sleep 0.1
	done
	wait_pid "$pid" 60
	rc=$?
	stop_pid "$SERVER_PID"
	if [ "$rc" -ne 0 ]; then
		check_fail "$kind, client $dir: transfer failed:" \
			"$(excerpt "$IT_TMP/client.err")"
		return
	fi
	[ "$c1" = 1 ] || check_fail "$kind, client $dir: c1 carried no data" \
		"after the fault was lifted"
	say "$kind, client $dir: intact, $(cat "$IT_TMP/client.out")," \
		"c1 used again: $c1"
}

mp_setup failover 2 "$@"
require_cmd iptables
make_random_file "$IT_TMP/data" "$SIZE_MB"
for kind in ${MP_FAULTS:-blackhole reset linkdown}; do
	for dir in send recv; do
		one "$kind" "$dir"
	done
done
it_finish

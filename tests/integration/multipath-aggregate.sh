#!/bin/bash
#
# multipath-aggregate.sh: with 2 and then 3 shaped paths and both ends
# shimmed, 20 MB go each way intact; the client opens one subflow per path
# (counted with ss during the transfer), and every path carries a fair
# share of the bytes (interface counters).  Goodput is printed beside a
# single-path run (MPTCPSHIM_MAX_SUBFLOWS=1); nothing is asserted on time.

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/multipath-topo.bash"

SIZE_MB=${MP_SIZE_MB:-20}
PORT=5601

# One transfer; sets GOT_MBIT, GOT_SUBFLOWS and BYTES[i] per link.
# Usage: xfer NPATHS DIRECTION(send|recv) [ENV...]
xfer()
{
	local npaths=$1 dir=$2 smode pid i before=()

	shift 2
	PORT=$((PORT + 1))
	[ "$dir" = send ] && smode=sink || smode=source
	start_server "srv-$dir" shim "$NS_B" "$PORT" "$@" \
		"$PY" "$MPTOOL" --deadline 60 server --bind 0.0.0.0 \
		--port "$PORT" --mode "$smode" --file "$IT_TMP/data" \
		--accepts "$IT_TMP/accepts"
	for i in $(seq "$npaths"); do
		before[i]=$(mp_bytes "$i")
	done
	run_shim "$NS_A" "$@" "$PY" "$MPTOOL" --deadline 60 client \
		--host "$SRV" --port "$PORT" --mode "$dir" \
		--file "$IT_TMP/data" >"$IT_TMP/client.out" \
		2>"$IT_TMP/client.err" &
	pid=$!
	GOT_SUBFLOWS=$(mp_max_subflows "$pid" 60)
	wait_pid "$pid" 60
	local rc=$?
	stop_pid "$SERVER_PID"
	if [ "$rc" -ne 0 ]; then
		check_fail "$npaths paths $dir: transfer failed:" \
			"$(excerpt "$IT_TMP/client.err")"
		GOT_MBIT=0
		return 1
	fi
	GOT_MBIT=$(sed -n 's/.*mbit=\([0-9.]*\).*/\1/p' "$IT_TMP/client.out")
	for i in $(seq "$npaths"); do
		BYTES[i]=$(($(mp_bytes "$i") - before[i]))
	done
	return 0
}

run_paths()
{
	local npaths=$1 dir i share min_share single

	mp_setup "aggregate$npaths" "$npaths" "${@:2}"
	make_random_file "$IT_TMP/data" "$SIZE_MB"
	for dir in send recv; do
		xfer "$npaths" "$dir" MPTCPSHIM_MAX_SUBFLOWS=1 || continue
		single=$GOT_MBIT
		xfer "$npaths" "$dir" || continue
		say "$npaths paths, client $dir: $GOT_MBIT Mbit/s" \
			"(one path: $single Mbit/s), subflows seen:" \
			"$GOT_SUBFLOWS, bytes per link: ${BYTES[*]:1}"
		[ "$GOT_SUBFLOWS" -eq "$npaths" ] ||
			check_fail "$npaths paths $dir: saw $GOT_SUBFLOWS subflows"
		# every path carries at least a fifth of its even share
		min_share=$((SIZE_MB * 1024 * 1024 / npaths / 5))
		for i in $(seq "$npaths"); do
			share=${BYTES[i]}
			[ "$share" -ge "$min_share" ] ||
				check_fail "$npaths paths $dir: link c$i" \
					"carried only $share bytes"
		done
	done
}

# Each topology in its own process, so that lib.sh's cleanup runs per run.
if [ -z "${MP_ONE:-}" ]; then
	MP_ONE=2 "$0" "$@" || exit $?
	MP_ONE=3 "$0" "$@"
	exit $?
fi
run_paths "$MP_ONE" "$@"
it_finish

#!/bin/bash
#
# iperf3.sh: iperf3 runs to completion through the library.  iperf3 is a
# demanding client of the socket API: a control connection beside the
# data connection, non-blocking sockets, select(), TCP_INFO, and with -R
# the server sending.  For both ends shimmed, only the server and only
# the client, a 2-second test in each direction must exit 0 and report a
# nonzero rate (read from iperf3 -J by nettool.py iperf-rate).  With both
# ends shimmed, tcpdump keeps the first bytes of each packet, and every
# stream (control and data, both directions) must start with a record
# (nettool.py framed): the run really went over MPTCP, not plain TCP.
#
# Usage: iperf3.sh [path/to/libmptcpshim.so]   (or set SHIMLIB)
# Exit: 0 pass, 1 fail, 77 skip.

# shellcheck source=./lib.sh
. "$(dirname "$0")/lib.sh"

it_setup iperf3 "$@"
require_pkg iperf3 iperf3
require_pkg tcpdump tcpdump

SECONDS_PER_RUN=2

# Usage: measure MODE_SERVER MODE_CLIENT PORT [-R]
measure()
{
	local smode=$1 cmode=$2 port=$3 dir=up label json rate rc framed=0

	[ "${4:-}" = -R ] && dir=down
	label=$dir-server-$smode-client-$cmode
	json=$IT_TMP/$label.json
	FRAMED_MSG=
	[ "$smode$cmode" = shimshim ] && heads_start "$label" "$port"
	start_server "$label" "$smode" "$NS_B" "$port" \
		timeout 30 iperf3 -s -1 -B "$B4" -p "$port"
	run_as "$cmode" "$NS_A" timeout 30 iperf3 -c "$B4" -p "$port" \
		-t "$SECONDS_PER_RUN" -J ${4:+"$4"} >"$json" \
		2>"$IT_TMP/$label.client.err"
	rc=$?
	wait_pid "$SERVER_PID" 10 >/dev/null 2>&1
	if [ "$smode$cmode" = shimshim ]; then
		heads_framed "$label" "$port"
		framed=$?
	fi

	if [ "$rc" -ne 0 ]; then
		check_fail "$label: iperf3 -c exited with $rc:" \
			"$(excerpt "$IT_TMP/$label.client.err")" \
			"$("$PY" "$NETTOOL" iperf-rate "$json" 2>&1)"
	elif ! rate=$("$PY" "$NETTOOL" iperf-rate "$json" \
		2>"$IT_TMP/$label.rate.err"); then
		check_fail "$label: $(excerpt "$IT_TMP/$label.rate.err")"
	elif [ "$framed" -ne 0 ]; then
		check_fail "$label: not MPTCP on the wire: $FRAMED_MSG"
	else
		say "ok - $label: $((rate / 1000000))" \
			"Mbit/s${FRAMED_MSG:+; $FRAMED_MSG}"
	fi
}

port=5300
for modes in "shim shim" "shim plain" "plain shim"; do
	# shellcheck disable=SC2086 # two words on purpose
	set -- $modes
	measure "$1" "$2" $((port + 1))
	measure "$1" "$2" $((port + 2)) -R
	port=$((port + 10))
done
it_finish

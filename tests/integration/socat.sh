#!/bin/bash
#
# socat.sh: bytes through socat in both directions, and a protocol where
# the server speaks first, for every combination of shimmed ends.
#
#   upload    client -> server, 10 MiB, over IPv4: socat -u FILE TCP
#             into socat -u TCP-LISTEN FILE
#   download  server -> client, 10 MiB, over IPv6: the listening socat
#             sends, the connecting one receives; the sender exits as
#             soon as it has written everything, so bytes the library
#             still holds must survive its exit (five runs when both ends
#             are shimmed, since that is a race)
#   banner    server speaks first (nettool.py banner-server): it writes a
#             banner at once, then echoes; the client reads the whole
#             banner before it writes 1 MiB, and must get back exactly
#             banner + its data (a shim that waited for the client's first
#             bytes would stall here, one that injected bytes would fail)
#
# Each runs with both ends shimmed, only the server, only the client, and
# neither (baseline).  Every byte is checked with sha256.  With both ends
# shimmed, tcpdump keeps the first bytes of each packet, and each stream
# must start with a record (nettool.py framed): the case ran over MPTCP.
#
# Usage: socat.sh [path/to/libmptcpshim.so]   (or set SHIMLIB)
# Exit: 0 pass, 1 fail, 77 skip.

# shellcheck source=./lib.sh
. "$(dirname "$0")/lib.sh"

it_setup socat "$@"
require_pkg socat socat
require_pkg tcpdump tcpdump

make_random_file "$IT_TMP/up.bin" 10
make_random_file "$IT_TMP/down.bin" 10
make_random_file "$IT_TMP/echo.bin" 1
printf 'HELLO mptcpshim-test %s ready\r\n' "$(od -An -N8 -tx1 /dev/urandom |
	tr -d ' \n')" >"$IT_TMP/banner.txt"
cat "$IT_TMP/banner.txt" "$IT_TMP/echo.bin" >"$IT_TMP/banner-echo.bin"

# Start recording packet heads when both ends are shimmed.
# Usage: maybe_heads MODE_SERVER MODE_CLIENT LABEL PORT
maybe_heads()
{
	FRAMED_MSG=
	HEADS_ON=0
	if [ "$1$2" = shimshim ]; then
		heads_start "$3" "$4"
		HEADS_ON=1
	fi
}

# After the client of a transfer ended with CLIENT_RC: wait for the
# server, then judge: both exited 0, ACTUAL equals EXPECTED, and with
# both ends shimmed, the streams were MPTCP.
# Usage: finish_transfer LABEL PORT CLIENT_RC EXPECTED ACTUAL
finish_transfer()
{
	local label=$1 port=$2 crc=$3 src=$4 out=$5 src_rc=0 framed=0

	if [ "$crc" -eq 0 ]; then
		wait_pid "$SERVER_PID" 10
		src_rc=$?
	else
		stop_pid "$SERVER_PID"
	fi
	if [ "$HEADS_ON" -eq 1 ]; then
		heads_framed "$label" "$port"
		framed=$?
	fi

	if [ "$crc" -ne 0 ]; then
		check_fail "$label: client exited with $crc:" \
			"$(excerpt "$IT_TMP/$label.client.err")"
	elif [ "$src_rc" -ne 0 ]; then
		check_fail "$label: server exited with $src_rc:" \
			"$(excerpt "$IT_TMP/$label.err")"
	elif ! same_sha256 "$src" "$out"; then
		check_fail "$label: $(describe_diff "$src" "$out")"
	elif [ "$framed" -ne 0 ]; then
		check_fail "$label: not MPTCP on the wire: $FRAMED_MSG"
	else
		say "ok - $label: sha256 matches${FRAMED_MSG:+; $FRAMED_MSG}"
	fi
	rm -f "$out"
}

# Usage: upload MODE_SERVER MODE_CLIENT PORT
upload()
{
	local label=upload-server-$1-client-$2 out rc

	out=$IT_TMP/$label.bin
	maybe_heads "$1" "$2" "$label" "$3"
	start_server "$label" "$1" "$NS_B" "$3" \
		timeout "$IT_XFER_WAIT" socat -u \
		"TCP4-LISTEN:$3,bind=$B4,reuseaddr" "CREATE:$out"
	run_as "$2" "$NS_A" timeout "$IT_XFER_WAIT" socat -u \
		"OPEN:$IT_TMP/up.bin,rdonly" "TCP4:$B4:$3" \
		2>"$IT_TMP/$label.client.err"
	rc=$?
	finish_transfer "$label" "$3" "$rc" "$IT_TMP/up.bin" "$out"
}

# Usage: download MODE_SERVER MODE_CLIENT PORT [RUN]
download()
{
	local label=download-server-$1-client-$2${4:+-run$4} out rc

	out=$IT_TMP/$label.bin
	# The repeated runs go without a capture, which slows the race.
	maybe_heads "$1" "$2${4:+-again}" "$label" "$3"
	start_server "$label" "$1" "$NS_B" "$3" \
		timeout "$IT_XFER_WAIT" socat -u \
		"OPEN:$IT_TMP/down.bin,rdonly" \
		"TCP6-LISTEN:$3,bind=[$B6],reuseaddr"
	run_as "$2" "$NS_A" timeout "$IT_XFER_WAIT" socat -u \
		"TCP6:[$B6]:$3" "CREATE:$out" \
		2>"$IT_TMP/$label.client.err"
	rc=$?
	finish_transfer "$label" "$3" "$rc" "$IT_TMP/down.bin" "$out"
}

# Usage: banner MODE_SERVER MODE_CLIENT PORT
banner()
{
	local label=banner-server-$1-client-$2 out rc

	out=$IT_TMP/$label.bin
	maybe_heads "$1" "$2" "$label" "$3"
	start_server "$label" "$1" "$NS_B" "$3" \
		"$PY" "$NETTOOL" banner-server --bind "$B4" --port "$3" \
		--banner "$IT_TMP/banner.txt"
	run_as "$2" "$NS_A" "$PY" "$NETTOOL" banner-client \
		--host "$B4" --port "$3" --banner "$IT_TMP/banner.txt" \
		--data "$IT_TMP/echo.bin" --out "$out" \
		2>"$IT_TMP/$label.client.err"
	rc=$?
	finish_transfer "$label" "$3" "$rc" "$IT_TMP/banner-echo.bin" "$out"
}

port=9100
for modes in "plain plain" "shim shim" "shim plain" "plain shim"; do
	# shellcheck disable=SC2086 # two words on purpose
	set -- $modes
	upload "$1" "$2" $((port + 1))
	download "$1" "$2" $((port + 2))
	banner "$1" "$2" $((port + 3))
	if [ "$1$2" = shimshim ]; then
		# The sending socat exits as soon as it has written the
		# file: what the library still holds must reach the peer
		# all the same.  A race, so try it a few more times.
		for run in 2 3 4 5; do
			download "$1" "$2" $((port + 3 + run)) "$run"
		done
	fi
	port=$((port + 10))
done
it_finish

#!/bin/bash
#
# http-curl.sh: curl downloads a 20 MiB random file from python3's
# http.server, in four combinations: both ends shimmed (an MPTCP
# connection), only the server shimmed, only the client shimmed (both
# must fall back to plain TCP without a byte of damage) and neither (the
# baseline that proves the harness).  The sha256 of the download must
# equal the file's in every case.  With both ends shimmed, tcpdump keeps
# the first bytes of each packet, and each stream must start with a record
# (nettool.py framed): the download really went over MPTCP.
#
# Usage: http-curl.sh [path/to/libmptcpshim.so]   (or set SHIMLIB)
# Exit: 0 pass, 1 fail, 77 skip.

# shellcheck source=./lib.sh
. "$(dirname "$0")/lib.sh"

it_setup http-curl "$@"
require_pkg curl curl
require_pkg tcpdump tcpdump

SIZE_MB=20
SRC=$IT_TMP/www
mkdir -p "$SRC"
make_random_file "$SRC/blob.bin" "$SIZE_MB"

# Usage: download MODE_SERVER MODE_CLIENT PORT
download()
{
	local smode=$1 cmode=$2 port=$3 label out took start rc framed=0

	label=server-$smode-client-$cmode
	out=$IT_TMP/$label.bin
	FRAMED_MSG=
	[ "$smode$cmode" = shimshim ] && heads_start "$label" "$port"
	start_server "$label" "$smode" "$NS_B" "$port" \
		"$PY" -m http.server "$port" --bind "$B4" --directory "$SRC"
	start=$(now_ms)
	run_as "$cmode" "$NS_A" timeout "$IT_XFER_WAIT" \
		curl -sS --fail --max-time "$IT_XFER_WAIT" \
		-o "$out" "http://$B4:$port/blob.bin" \
		2>"$IT_TMP/$label.curl.err"
	rc=$?
	took=$(seconds_since "$start")
	stop_pid "$SERVER_PID"
	if [ "$smode$cmode" = shimshim ]; then
		heads_framed "$label" "$port"
		framed=$?
	fi

	if [ "$rc" -ne 0 ]; then
		check_fail "$label: curl exited with $rc:" \
			"$(excerpt "$IT_TMP/$label.curl.err")"
	elif ! same_sha256 "$SRC/blob.bin" "$out"; then
		check_fail "$label: download differs:" \
			"$(describe_diff "$SRC/blob.bin" "$out")"
	elif [ "$framed" -ne 0 ]; then
		check_fail "$label: not MPTCP on the wire: $FRAMED_MSG"
	else
		say "ok - $label: $SIZE_MB MiB, sha256 matches" \
			"(${took}s)${FRAMED_MSG:+; $FRAMED_MSG}"
	fi
	rm -f "$out"
}

download plain plain 8001
download shim shim 8002
download shim plain 8003
download plain shim 8004
it_finish

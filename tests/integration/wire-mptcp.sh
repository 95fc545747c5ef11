#!/bin/bash
#
# wire-mptcp.sh: proves that a shim-to-shim connection really is MPTCP on
# the wire, and that the programs still see their own bytes.
#
# tcpdump records the veth while a shimmed client (nettool.py send) sends a
# known payload (a recognizable text line, then 300 KiB of random bytes) to
# a shimmed server (nettool.py sink), which answers with a short line.
# nettool.py records then reassembles each TCP byte stream from the pcap
# (python3 standard library only) and parses it as records (4-byte header
# 0x4d, L, payload length; then an MPTCP option of kind 30 and length L;
# then the payload).  It requires:
#   - every byte of every subflow belongs to a record (nothing unframed,
#     no fall back to an infinite mapping);
#   - the client's first record is MP_CAPABLE (subtype 0), and the
#     program's raw bytes do not start the stream;
#   - payload travels in DSS records (subtype 2), or in the MP_CAPABLE
#     form that carries a data-level length; the payloads put in order by
#     their data sequence numbers (IDSN from the MP_CAPABLE keys) equal the
#     program's bytes exactly, in both directions; with one subflow, the
#     payloads in stream order do too.
# Both programs must also see exactly the other's bytes.
#
# Usage: wire-mptcp.sh [path/to/libmptcpshim.so]   (or set SHIMLIB)
# Exit: 0 pass, 1 fail, 77 skip.

# shellcheck source=./lib.sh
. "$(dirname "$0")/lib.sh"

it_setup wire-mptcp "$@"
require_pkg tcpdump tcpdump
require_cmd cmp

PORT=7400
PAYLOAD=$IT_TMP/payload.bin
RECEIVED=$IT_TMP/received.bin
REPLY=$IT_TMP/reply.txt
PCAP=$IT_TMP/wire.pcap

{
	printf 'GET /known-payload HTTP/1.1\r\nHost: mptcpshim.test\r\n\r\n'
	head -c $((300 * 1024)) /dev/urandom
} >"$PAYLOAD"

capture_start "$NS_B" "$IF_B" "$PCAP" tcp and host "$B4" and host "$A4"
start_server sink shim "$NS_B" "$PORT" \
	"$PY" "$NETTOOL" sink --bind "$B4" --port "$PORT" --out "$RECEIVED"
run_shim "$NS_A" "$PY" "$NETTOOL" send --host "$B4" --port "$PORT" \
	--in "$PAYLOAD" --reply-out "$REPLY" 2>"$IT_TMP/send.err" ||
	fail "shimmed client: $(excerpt "$IT_TMP/send.err")"
wait_pid "$SERVER_PID" 10 ||
	fail "shimmed server: $(excerpt "$IT_TMP/sink.err")"
capture_stop

# The programs first: each saw exactly the other's bytes.
cmp -s "$PAYLOAD" "$RECEIVED" ||
	fail "the server received other bytes than sent:" \
		"$(describe_diff "$PAYLOAD" "$RECEIVED")"
want="OK $(stat -c %s "$PAYLOAD") $(sha256_of "$PAYLOAD")"
[ "$(cat "$REPLY")" = "$want" ] ||
	fail "the client got the reply '$(excerpt "$REPLY")', want '$want'"
say "ok - both programs saw exactly the other's bytes"

# Then the wire.
"$PY" "$NETTOOL" records --pcap "$PCAP" --client "$A4" --server "$B4" \
	--port "$PORT" --payload "$PAYLOAD" --reply "$REPLY" \
	>"$IT_TMP/records.out" 2>"$IT_TMP/records.err"
rc=$?
sed "s/^/$IT_NAME: /" "$IT_TMP/records.out"
[ "$rc" -eq 0 ] || fail "on the wire: $(excerpt "$IT_TMP/records.err")"
it_finish

#!/bin/bash
#
# direct-send.sh: writes that program threads send themselves (direct
# send) and writes that go through the socket pair and the event-loop
# thread keep the program's byte order, whatever mix of them a program
# makes.  Both ends shimmed; the client (mixwrite.py) sends 24 MiB to
# nettool.py's sink as a random mix of tiny send()s, large send()s,
# three-buffer sendmsg()s, send(MSG_MORE) (which never goes direct) and
# sendfile() (which never does either), with no pause between them.  In
# each run the sink's count and sha256 must equal the client's, and the
# client's direct_send_bytes counter (mptcpshim counters) must show which
# way the bytes went:
#
#   - blocking, TCP_NODELAY: some bytes direct, never sendfile's;
#   - blocking, Nagle on: the same (tiny writes behind unacknowledged
#     data take the socket pair);
#   - non-blocking, TCP_NODELAY, each piece completed through poll():
#     the same;
#   - MPTCPSHIM_DIRECT_SEND=0: no byte direct.
#
# Usage: direct-send.sh [path/to/libmptcpshim.so [path/to/mptcpshim]]
# Exit: 0 pass, 1 fail, 77 skip.

# shellcheck source=./lib.sh
. "$(dirname "$0")/lib.sh"

it_setup direct-send "$1"
CMD=$(find_shim_cmd "${2:-}") ||
	skip "the mptcpshim command is not built (give its path)"
private_runtime_dir
TOOL=$IT_DIR/mixwrite.py
SINK=$IT_DIR/nettool.py
BYTES=$((24 * 1024 * 1024))

# Usage: mix LABEL PORT DIRECT(0|1) CLIENT-OPTION...
mix()
{
	local label=$1 port=$2 direct=$3 verdict
	shift 3

	start_server "$label" shim "$NS_B" "$port" \
		MPTCPSHIM_DIRECT_SEND="$direct" "$PY" "$SINK" --deadline 60 \
		sink --bind 0.0.0.0 --port "$port" --out "$IT_TMP/$label.got"
	run_shim "$NS_A" MPTCPSHIM_DIRECT_SEND="$direct" "$PY" "$TOOL" \
		--deadline "$IT_XFER_WAIT" --host "$B4" --port "$port" \
		--bytes "$BYTES" --counters "$CMD" "$@" \
		>"$IT_TMP/$label.client" 2>"$IT_TMP/$label.client.err"
	wait_pid "$SERVER_PID" "$IT_XFER_WAIT"
	rm -f "$IT_TMP/$label.got"
	# the sink's answer must be what was sent, and direct_send_bytes
	# say which way the bytes went: some, never sendfile's; or none
	verdict=$("$PY" -c 'import json, sys
r = json.load(sys.stdin)
sent = "OK %d %s" % (r["bytes"], r["sha256"])
d = r["direct"]
if r["answer"] != sent:
    print("the sink answered %r, the client sent %r" % (r["answer"], sent))
elif (0 < d <= r["bytes"] - r["sendfile"]) != (sys.argv[1] == "1"):
    print("direct_send_bytes %d with MPTCPSHIM_DIRECT_SEND=%s" %
          (d, sys.argv[1]))
else:
    print("ok %d" % d)' "$direct" <"$IT_TMP/$label.client" 2>/dev/null)
	case $verdict in
	"ok "*) say "ok - $label: $BYTES bytes in order," \
		"direct_send_bytes ${verdict#ok }" ;;
	"") check_fail "$label: the client failed:" \
		"$(excerpt "$IT_TMP/$label.client.err")" ;;
	*) check_fail "$label: $verdict" ;;
	esac
}

mix blocking-nodelay 7301 1 --nodelay
mix blocking-nagle 7302 1
mix nonblocking 7303 1 --nodelay --nonblock
mix direct-off 7304 0 --nodelay
it_finish

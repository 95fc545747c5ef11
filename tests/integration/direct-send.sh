#!/bin/bash
#
# direct-send.sh: writes that program threads send themselves (direct
# send) and writes that go through the socket pair and the event-loop
# thread keep the program's byte order, whatever mix of them a program
# makes.  Both ends shimmed; the client (mixwrite.py) sends 24 MiB as a
# random mix of tiny send()s, large send()s, three-buffer sendmsg()s,
# send(MSG_MORE) (which never goes direct) and sendfile() (which never
# does either), with no pause between them.  In each run the server's
# sha256 must equal the client's, and the client's direct_send_bytes
# counter (mptcpshim counters) must show which way the bytes went:
#
#   - blocking, TCP_NODELAY: some bytes direct, never sendfile's;
#   - blocking, Nagle on: the same (tiny writes behind unacknowledged
#     data take the socket pair);
#   - non-blocking, TCP_NODELAY, each piece completed through select():
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
BYTES=$((24 * 1024 * 1024))

# Usage: mix LABEL PORT DIRECT(0|1) CLIENT-OPTION...
mix()
{
	local label=$1 port=$2 direct=$3 got want res
	shift 3

	start_server "$label" shim "$NS_B" "$port" \
		MPTCPSHIM_DIRECT_SEND="$direct" "$PY" "$TOOL" server --port "$port"
	run_shim "$NS_A" MPTCPSHIM_DIRECT_SEND="$direct" timeout \
		"$IT_XFER_WAIT" "$PY" "$TOOL" client --host "$B4" \
		--port "$port" --bytes "$BYTES" --counters "$CMD" "$@" \
		>"$IT_TMP/$label.client" 2>"$IT_TMP/$label.client.err"
	wait_pid "$SERVER_PID" "$IT_XFER_WAIT"
	got=$(cat "$IT_TMP/$label.out")
	want=$("$PY" -c 'import json,sys; r=json.load(sys.stdin);
print(r["bytes"], r["sha256"])' <"$IT_TMP/$label.client" 2>/dev/null)
	if [ -z "$want" ]; then
		check_fail "$label: the client failed:" \
			"$(excerpt "$IT_TMP/$label.client.err")"
		return
	fi
	if [ "$got" != "$want" ]; then
		check_fail "$label: the server got '$got', the client sent" \
			"'$want'"
		return
	fi
	# which way the bytes went: direct > 0 and never sendfile's, or 0
	res=$("$PY" -c 'import json,sys; r=json.load(sys.stdin);
d=r["direct"]; print(d, "ok" if (d > 0 and d <= r["bytes"] - r["sendfile"])
== (sys.argv[1] == "1") and d >= 0 else "bad")' "$direct" \
		<"$IT_TMP/$label.client")
	case $res in
	*ok) say "ok - $label: $BYTES bytes in order, direct_send_bytes" \
		"${res% ok}" ;;
	*) check_fail "$label: direct_send_bytes ${res% bad} with" \
		"MPTCPSHIM_DIRECT_SEND=$direct" \
		"($(cat "$IT_TMP/$label.client"))" ;;
	esac
}

mix blocking-nodelay 7301 1 --nodelay
mix blocking-nagle 7302 1
mix nonblocking 7303 1 --nodelay --nonblock
mix direct-off 7304 0 --nodelay
it_finish

#!/bin/bash
#
# wireshark-lua.sh: checks tools/wireshark/mptcpshim.lua, the tshark
# dissector for in-band records, on a real capture.
#
# As in wire-mptcp.sh, tcpdump records the veth while a shimmed client
# (nettool.py send) sends a text line and 200 KiB of random bytes to a
# shimmed server (nettool.py sink).  tshark, with the dissector loaded,
# must then find:
#   - the client's first record is MP_CAPABLE (subtype 0);
#   - DSS records (subtype 2), and payload lengths of the client's
#     mapping records (DSS, and the MP_CAPABLE form with data) that add
#     up to exactly the bytes the program sent;
#   - the server's records too, and no expert error, "Lua Error" or
#     "Malformed" anywhere in tshark -V.
# A capture of the same transfer without the library must give no
# mptcpshim field at all.
#
# tshark is installed with apt-get when missing; the test skips when it
# cannot be installed or cannot run Lua.
#
# Usage: wireshark-lua.sh [path/to/libmptcpshim.so]   (or set SHIMLIB)
# Exit: 0 pass, 1 fail, 77 skip.

# shellcheck source=./lib.sh
. "$(dirname "$0")/lib.sh"

LUA=$(cd "$IT_DIR/../../tools/wireshark" 2>/dev/null && pwd)/mptcpshim.lua

# Install tshark without asking whether non-root users may capture.
require_tshark()
{
	if ! command -v tshark >/dev/null && [ "$(id -u)" -eq 0 ] &&
		command -v debconf-set-selections >/dev/null; then
		echo "wireshark-common wireshark-common/install-setuid" \
			"boolean false" | debconf-set-selections
	fi
	require_pkg tshark tshark
}

# Skip unless tshark runs Lua scripts (a build without Lua ignores -X
# lua_script quietly, so a script must prove it ran).
require_tshark_lua()
{
	local probe=$IT_TMP/probe.lua out

	echo 'print("mptcpshim-lua-probe " .. _VERSION)' >"$probe"
	out=$(tshark -X "lua_script:$probe" -r "$PLAIN_PCAP" -c 1 2>&1)
	echo "$out" | grep -q 'mptcpshim-lua-probe' ||
		skip "tshark cannot run Lua scripts: $(echo "$out" | head -1)"
}

# tshark with the dissector, quiet about running as root.
tshark_lua()
{
	tshark -X "lua_script:$LUA" "$@" 2>"$IT_TMP/tshark.err"
}

# One transfer from A to B; MODE is shim or plain.
# Usage: transfer MODE PORT PCAP
transfer()
{
	local mode=$1 port=$2 pcap=$3 got=$IT_TMP/received-$1.bin

	capture_start "$NS_B" "$IF_B" "$pcap" tcp port "$port"
	start_server "sink-$mode" "$mode" "$NS_B" "$port" \
		"$PY" "$NETTOOL" sink --bind "$B4" --port "$port" --out "$got"
	run_as "$mode" "$NS_A" "$PY" "$NETTOOL" send --host "$B4" \
		--port "$port" --in "$PAYLOAD" \
		--reply-out "$IT_TMP/reply-$mode.txt" \
		2>"$IT_TMP/send-$mode.err" ||
		fail "$mode client: $(excerpt "$IT_TMP/send-$mode.err")"
	wait_pid "$SERVER_PID" 10 ||
		fail "$mode server: $(excerpt "$IT_TMP/sink-$mode.err")"
	capture_stop
	cmp -s "$PAYLOAD" "$got" ||
		fail "$mode: the server received other bytes than sent:" \
			"$(describe_diff "$PAYLOAD" "$got")"
}

# Print one line per record of the client's direction: frame, subtype,
# payload length (tshark lists a frame's records in order, and every
# record has exactly one of each).
client_records()
{
	tshark_lua -r "$SHIM_PCAP" -Y "mptcpshim && ip.src == $A4" \
		-T fields -E occurrence=a -E aggregator=, \
		-e frame.number -e mptcpshim.subtype -e mptcpshim.payload_len |
		awk -F'\t' '{
			n = split($2, st, ","); m = split($3, pl, ",")
			if (n != m) { print "mismatch " $1; next }
			for (i = 1; i <= n; i++) print $1, st[i], pl[i]
		}'
}

check_first_record()
{
	local first

	first=$(awk 'NR == 1 { print $2 }' "$IT_TMP/client.records")
	if [ "$first" = 0 ]; then
		say "ok - the client's first record is MP_CAPABLE"
	else
		check_fail "the client's first record has subtype" \
			"'$first', want 0 (MP_CAPABLE)"
	fi
}

check_payload_sum()
{
	local want dss sum

	want=$(stat -c %s "$PAYLOAD")
	if grep -q '^mismatch' "$IT_TMP/client.records"; then
		check_fail "tshark listed subtypes and payload lengths" \
			"that do not pair up"
		return
	fi
	dss=$(awk '$2 == 2' "$IT_TMP/client.records" | wc -l)
	sum=$(awk '$2 == 0 || $2 == 2 { s += $3 } END { print s + 0 }' \
		"$IT_TMP/client.records")
	if [ "$dss" -eq 0 ]; then
		check_fail "no DSS record from the client"
	elif [ "$sum" -ne "$want" ]; then
		check_fail "the client's mapped payloads add up to $sum" \
			"bytes, want $want"
	else
		say "ok - $dss client DSS records;" \
			"payloads add up to $want bytes"
	fi
}

check_server_records()
{
	local n

	n=$(tshark_lua -r "$SHIM_PCAP" -Y "mptcpshim && ip.src == $B4" \
		-T fields -e frame.number | wc -l)
	if [ "$n" -gt 0 ]; then
		say "ok - $n server frames carry records"
	else
		check_fail "no records found in the server's direction"
	fi
}

check_no_errors()
{
	local verbose=$IT_TMP/verbose.txt bad

	tshark_lua -r "$SHIM_PCAP" -V >"$verbose"
	bad=$(cat "$verbose" "$IT_TMP/tshark.err" |
		grep -E 'Lua Error|Malformed|Expert Info \(Error' | head -3)
	if [ -n "$bad" ]; then
		check_fail "tshark -V reports: $(echo "$bad" | tr '\n' ' ')"
	elif ! grep -q 'mptcpshim in-band MPTCP records' "$verbose"; then
		check_fail "tshark -V shows no mptcpshim tree"
	else
		say "ok - no expert error, Lua error or malformed packet"
	fi
}

check_plain_capture()
{
	local found

	found=$(tshark_lua -r "$PLAIN_PCAP" -T fields \
		-e mptcpshim.subtype | grep -c .)
	if [ "$found" -eq 0 ]; then
		say "ok - a plain TCP capture shows no mptcpshim field"
	else
		check_fail "$found frames of a plain TCP capture show" \
			"mptcpshim fields"
	fi
}

it_setup wireshark-lua "$@"
require_pkg tcpdump tcpdump
require_cmd cmp awk
[ -f "$LUA" ] || fail "no dissector at $LUA"
require_tshark

PAYLOAD=$IT_TMP/payload.bin
SHIM_PCAP=$IT_TMP/shim.pcap
PLAIN_PCAP=$IT_TMP/plain.pcap
{
	printf 'GET /known-payload HTTP/1.1\r\nHost: mptcpshim.test\r\n\r\n'
	head -c $((200 * 1024)) /dev/urandom
} >"$PAYLOAD"

# TCP offers a segment to heuristic dissectors only when no dissector
# registered for either port takes it, and a few ephemeral ports are
# registered (57000, for one): keep the client's ports clear of them.
ip netns exec "$NS_A" sysctl -qw net.ipv4.ip_local_port_range="50000 50999" ||
	fail "cannot set the client's port range"

transfer plain 7410 "$PLAIN_PCAP"
require_tshark_lua
transfer shim 7411 "$SHIM_PCAP"

client_records >"$IT_TMP/client.records"
[ -s "$IT_TMP/client.records" ] ||
	fail "tshark found no record from the client:" \
		"$(excerpt "$IT_TMP/tshark.err")"
check_first_record
check_payload_sum
check_server_records
check_no_errors
check_plain_capture
it_finish

#!/bin/bash
#
# plain-peer.sh: proves that a peer without the library never receives a
# byte of ours, whichever side of its protocol speaks first, and that the
# handshake carries the negotiation signal the design specifies.
#
#   1. shimmed client -> plain server, client speaks first (IPv4): the
#      server (nettool.py sink) stores everything it receives; it must
#      equal exactly what the client program sent, for a short request
#      and for 1 MiB; the client must get exactly the server's answer.
#   2. plain client -> shimmed server, server speaks first (IPv4 and IPv6):
#      the server (nettool.py banner-server) writes a banner at once, then
#      echoes; the client reads the banner before writing, and must
#      receive exactly banner + its own bytes, nothing else.
#   3. shimmed client -> shimmed server (IPv6), as a reference for the
#      handshake: bytes must arrive intact.
#
# tcpdump records every SYN and SYN-ACK; read back with tcpdump -v, the
# MSS option must say: a shimmed client's SYN 1219, a shim listener's
# SYN-ACK 1213, a plain client's SYN not 1219, a plain listener's SYN-ACK
# not 1213.
#
# Usage: plain-peer.sh [path/to/libmptcpshim.so]   (or set SHIMLIB)
# Exit: 0 pass, 1 fail, 77 skip.

# shellcheck source=./lib.sh
. "$(dirname "$0")/lib.sh"

it_setup plain-peer "$@"
require_pkg tcpdump tcpdump
require_cmd cmp

PCAP=$IT_TMP/syn.pcap
printf 'HELLO from a shim listener %s\r\n' "$(od -An -N8 -tx1 \
	/dev/urandom | tr -d ' \n')" >"$IT_TMP/banner.txt"
printf 'GET / HTTP/1.0\r\nHost: plain.test\r\n\r\n\n' >"$IT_TMP/small.bin"
make_random_file "$IT_TMP/big.bin" 1
cat "$IT_TMP/banner.txt" "$IT_TMP/big.bin" >"$IT_TMP/banner-echo.bin"

# Client speaks first, into a server that records what it receives.
# Usage: client_first MODE_SERVER MODE_CLIENT ADDR PORT PAYLOAD
client_first()
{
	local smode=$1 cmode=$2 addr=$3 port=$4 payload=$5 label got reply want

	label=client-first-server-$smode-client-$cmode-$port
	got=$IT_TMP/$label.received
	reply=$IT_TMP/$label.reply
	start_server "$label" "$smode" "$NS_B" "$port" \
		"$PY" "$NETTOOL" sink --bind "$addr" --port "$port" --out "$got"
	if ! run_as "$cmode" "$NS_A" "$PY" "$NETTOOL" send --host "$addr" \
		--port "$port" --in "$payload" --reply-out "$reply" \
		2>"$IT_TMP/$label.client.err"; then
		check_fail "$label: client:" \
			"$(excerpt "$IT_TMP/$label.client.err")"
		stop_pid "$SERVER_PID"
		return
	fi
	if ! wait_pid "$SERVER_PID" 10; then
		check_fail "$label: server: $(excerpt "$IT_TMP/$label.err")"
		return
	fi
	if ! cmp -s "$payload" "$got"; then
		check_fail "$label: the server received other bytes than" \
			"the client sent: $(describe_diff "$payload" "$got")"
		return
	fi
	want="OK $(stat -c %s "$payload") $(sha256_of "$payload")"
	if [ "$(cat "$reply")" != "$want" ]; then
		check_fail "$label: the client got" \
			"'$(excerpt "$reply")', want '$want'"
		return
	fi
	say "ok - $label: $(stat -c %s "$payload") bytes received" \
		"exactly, answer exact"
}

# Server speaks first, then echoes.
# Usage: server_first MODE_SERVER MODE_CLIENT ADDR PORT
server_first()
{
	local smode=$1 cmode=$2 addr=$3 port=$4 label out

	label=server-first-server-$smode-client-$cmode-$port
	out=$IT_TMP/$label.bin
	start_server "$label" "$smode" "$NS_B" "$port" \
		"$PY" "$NETTOOL" banner-server --bind "$addr" --port "$port" \
		--banner "$IT_TMP/banner.txt"
	if ! run_as "$cmode" "$NS_A" "$PY" "$NETTOOL" banner-client \
		--host "$addr" --port "$port" --banner "$IT_TMP/banner.txt" \
		--data "$IT_TMP/big.bin" --out "$out" \
		2>"$IT_TMP/$label.client.err"; then
		check_fail "$label: $(excerpt "$IT_TMP/$label.client.err")"
		stop_pid "$SERVER_PID"
		return
	fi
	wait_pid "$SERVER_PID" 10 ||
		check_fail "$label: server: $(excerpt "$IT_TMP/$label.err")"
	if cmp -s "$IT_TMP/banner-echo.bin" "$out"; then
		say "ok - $label: the client received exactly banner + echo"
	else
		check_fail "$label: the client received other bytes than" \
			"banner + echo:" \
			"$(describe_diff "$IT_TMP/banner-echo.bin" "$out")"
	fi
}

# Print the MSS of the first SYN (KIND S) to PORT, or of the first
# SYN-ACK (KIND S.) from PORT, as tcpdump -v shows it; "none" when absent.
# Usage: handshake_mss S|S. PORT
handshake_mss()
{
	local kind=$1 port=$2 pattern mss

	# "ADDR.SPORT > ADDR.DPORT: Flags [S], ... options [mss N,..." ->
	# "SPORT DPORT S N"
	pattern='s/.*\.([0-9]+) > [0-9a-f.:]+\.([0-9]+): Flags \[(S\.?)\]'
	pattern=$pattern'.*[[ ]mss ([0-9]+)[],].*/\1 \2 \3 \4/p'
	mss=$(tcpdump -nn -v -r "$PCAP" 2>/dev/null | sed -n -E "$pattern" |
		awk -v kind="$kind" -v port="$port" '
			$3 != kind { next }
			kind == "S" && $2 == port { print $4; exit }
			kind == "S." && $1 == port { print $4; exit }')
	echo "${mss:-none}"
}

# Usage: expect_mss S|S. PORT is|not VALUE WHAT
expect_mss()
{
	local got

	got=$(handshake_mss "$1" "$2")
	if [ "$got" = none ]; then
		check_fail "port $2: no $5 with an MSS option in the capture"
	elif [ "$3" = is ] && [ "$got" != "$4" ]; then
		check_fail "port $2: $5 says MSS $got, want $4"
	elif [ "$3" = not ] && [ "$got" = "$4" ]; then
		check_fail "port $2: $5 says MSS $got, which only the shim" \
			"may say"
	else
		say "ok - port $2: $5 says MSS $got"
	fi
}

capture_start "$NS_B" "$IF_B" "$PCAP" tcp

client_first plain shim "$B4" 7501 "$IT_TMP/small.bin"
client_first plain shim "$B4" 7502 "$IT_TMP/big.bin"
server_first shim plain "$B4" 7511
server_first shim plain "$B6" 7512
client_first shim shim "$B6" 7521 "$IT_TMP/big.bin"

capture_stop

expect_mss S 7501 is 1219 "the shimmed client's SYN"
expect_mss S. 7501 not 1213 "the plain listener's SYN-ACK"
expect_mss S 7502 is 1219 "the shimmed client's SYN"
expect_mss S 7511 not 1219 "the plain client's SYN"
expect_mss S. 7511 is 1213 "the shim listener's SYN-ACK"
expect_mss S 7512 not 1219 "the plain client's SYN (IPv6)"
expect_mss S. 7512 is 1213 "the shim listener's SYN-ACK (IPv6)"
expect_mss S 7521 is 1219 "the shimmed client's SYN (IPv6)"
expect_mss S. 7521 is 1213 "the shim listener's SYN-ACK (IPv6)"
it_finish

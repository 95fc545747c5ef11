#!/bin/bash
#
# capture-tshark.sh: MPTCPSHIM_CAPTURE writes a pcap that tshark's own
# MPTCP analysis reads as kernel MPTCP.
#
# Two paths (multipath-topo.bash); python3's http.server, shimmed, serves
# a random file of a few MB to curl, shimmed; both write captures.  Then,
# for the client's capture and the server's, tshark with the MPTCP
# analysis on must find:
#   - two or more TCP streams (subflows) carrying MPTCP options, all in
#     one mptcp.stream;
#   - the MP_CAPABLE keys: a SYN/ACK with the server's key, a third ACK
#     whose receiver's key echoes it and whose sender's key is the
#     client's;
#   - MP_JOIN SYN, SYN/ACK and ACK, the SYN's token being the one tshark
#     derives from the server's key;
#   - no expert info about MPTCP (a segment with payload and no mapping,
#     echoed key mismatch, algorithm, infinite mapping), nothing
#     malformed, and every IP and TCP checksum good;
#   - the data sequence range the server sent covers the file (relative
#     DSNs), and the server's payload bytes add up to at least the file.
# The same for protocol version 0 and for DSS checksums.
#
# Usage: capture-tshark.sh [path/to/libmptcpshim.so]   (or set SHIMLIB)
# Exit: 0 pass, 1 fail, 77 skip (no tshark, curl or namespaces).

# shellcheck source=./lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=./multipath-topo.bash
. "$(dirname "$0")/multipath-topo.bash"

command -v tshark >/dev/null || skip "needs tshark (package tshark)"
require_cmd curl

SIZE_MB=${CAP_SIZE_MB:-3}
PORT=7700
TSHARK_OPTS=(-o mptcp.analyze_mptcp:TRUE -o mptcp.analyze_mappings:TRUE
	-o mptcp.relative_sequence_numbers:TRUE
	-o tcp.analyze_sequence_numbers:TRUE
	-o tcp.check_checksum:TRUE -o ip.check_checksum:TRUE
	--disable-protocol http)

# tshark fields of the frames matching a filter, one line per frame.
# Usage: fields PCAP FILTER FIELD...
fields()
{
	local pcap=$1 filter=$2 f args=()

	shift 2
	for f in "$@"; do
		args+=(-e "$f")
	done
	tshark -r "$pcap" "${TSHARK_OPTS[@]}" -Y "$filter" -T fields \
		-E separator=' ' "${args[@]}" 2>/dev/null
}

count()
{
	fields "$1" "$2" frame.number | wc -l
}

# One shimmed download, both ends capturing.  Usage: xfer LABEL [ENV...]
xfer()
{
	local label=$1 dir=$IT_TMP/$1

	shift
	PORT=$((PORT + 1))
	mkdir -p "$dir/srv" "$dir/cli"
	start_server "srv-$label" shim "$NS_B" "$PORT" \
		MPTCPSHIM_CAPTURE="$dir/srv/%p.pcap" "$@" \
		"$PY" -m http.server --bind "$SRV" --directory "$IT_TMP/www" \
		"$PORT"
	run_shim "$NS_A" MPTCPSHIM_CAPTURE="$dir/cli/%p.pcap" "$@" \
		curl -sS --max-time 60 -o "$dir/got" \
		"http://$SRV:$PORT/data" 2>"$dir/curl.err" ||
		check_fail "$label: curl failed: $(excerpt "$dir/curl.err")"
	# the server flushes its file when the connection ends: wait for
	# its subflows to go (loaded machines are slow), then for the file
	local tries=100
	while [ "$tries" -gt 0 ] && [ -n "$(ip netns exec "$NS_B" \
		ss -tnH state established "sport = :$PORT")" ]; do
		sleep 0.1
		tries=$((tries - 1))
	done
	settle "$dir/srv"
	stop_pid "$SERVER_PID"
	cmp -s "$dir/got" "$IT_TMP/www/data" ||
		check_fail "$label: curl got other bytes than served"
}

# Every check on one capture.  Usage: check_pcap LABEL PCAP
check_pcap()
{
	local label=$1 pcap=$2 n streams mstreams synack_key ack key tok
	local expert first last range paylen size

	size=$(stat -c %s "$IT_TMP/www/data")
	[ -s "$pcap" ] || { check_fail "$label: no capture"; return; }

	streams=$(fields "$pcap" tcp.options.mptcp.subtype tcp.stream |
		sort -u | wc -l)
	mstreams=$(fields "$pcap" tcp.options.mptcp.subtype mptcp.stream |
		grep . | sort -u)
	say "$label: $(count "$pcap" frame) frames, $streams subflows," \
		"mptcp.stream: $(echo "$mstreams" | tr '\n' ' ')"
	[ "$streams" -ge 2 ] ||
		check_fail "$label: $streams TCP streams carry MPTCP, not 2+"
	[ "$(echo "$mstreams" | wc -l)" -eq 1 ] && [ -n "$mstreams" ] ||
		check_fail "$label: subflows in mptcp.streams: $mstreams"

	# RFC 8684 section 3.1: the SYN/ACK's key comes back in the ACK
	synack_key=$(fields "$pcap" "tcp.options.mptcp.subtype == 0 &&
		tcp.flags.syn == 1 && tcp.flags.ack == 1" \
		tcp.options.mptcp.sendkey | head -1)
	ack=$(fields "$pcap" "tcp.options.mptcp.subtype == 0 &&
		tcp.flags.syn == 0 && tcp.options.mptcp.recvkey" \
		tcp.options.mptcp.sendkey tcp.options.mptcp.recvkey | head -1)
	say "$label: SYN/ACK key $synack_key, ACK keys $ack"
	[ -n "$synack_key" ] && [ "${ack#* }" = "$synack_key" ] &&
		[ -n "${ack%% *}" ] && [ "${ack%% *}" != "$synack_key" ] ||
		check_fail "$label: MP_CAPABLE keys missing or not echoed"

	# MP_JOIN: SYN (token), SYN/ACK (truncated HMAC), ACK (HMAC)
	tok=$(fields "$pcap" "tcp.options.mptcp.subtype == 1 &&
		tcp.flags.syn == 1 && tcp.flags.ack == 0" \
		tcp.options.mptcp.recvtok | head -1)
	key=$(fields "$pcap" "mptcp.expected_token" mptcp.expected_token |
		tr ' ' '\n' | sort -u | tr '\n' ' ')
	n=$(count "$pcap" "tcp.options.mptcp.subtype == 1")
	say "$label: MP_JOIN segments $n, SYN token $tok," \
		"tokens from keys: $key"
	[ "$n" -ge 3 ] && [ "$(count "$pcap" "tcp.options.mptcp.subtype == 1 &&
		tcp.flags.syn == 1 && tcp.flags.ack == 1 &&
		tcp.options.mptcp.sendtrunchmac")" -ge 1 ] &&
		[ "$(count "$pcap" "tcp.options.mptcp.subtype == 1 &&
		tcp.flags.syn == 0 && tcp.options.mptcp.sendhmac")" -ge 1 ] ||
		check_fail "$label: MP_JOIN handshake incomplete ($n segments)"
	[ -n "$tok" ] && echo " $key" | grep -qi " ${tok} " ||
		check_fail "$label: join token $tok is no key's token ($key)"

	# tshark 4.0 says "No mapping available" of every segment without
	# payload past its sender's last mapping (only relative sequence 1 is
	# exempt): captures of kernel MPTCP show it on pure ACKs too.  So
	# that warning counts only on segments with payload.
	expert=$(tshark -r "$pcap" "${TSHARK_OPTS[@]}" -q -z expert 2>&1 |
		grep -Ei 'mptcp|mapping|echoed|algorithm|malformed|checksum' |
		grep -v 'No mapping available')
	[ -z "$expert" ] ||
		check_fail "$label: tshark expert info: $(echo "$expert" |
			head -5 | tr '\n' ' ')"
	n=$(count "$pcap" "(mptcp.dss.missing_mapping && tcp.len > 0) ||
		mptcp.connection.echoed_key_mismatch ||
		mptcp.dss.infinite_mapping ||
		tcp.checksum.status == 0 || ip.checksum.status == 0 ||
		_ws.malformed")
	[ "$n" -eq 0 ] || check_fail "$label: $n frames with MPTCP errors" \
		"or bad checksums"
	[ "$(count "$pcap" "tcp.checksum.status == 1")" -gt 0 ] ||
		check_fail "$label: no TCP checksum verified"

	# the server's data sequence range (relative) covers the file
	read -r first last < <(fields "$pcap" "ip.src == $SRV &&
		tcp.len > 0 && mptcp.dsn" mptcp.dsn tcp.len |
		awk 'NR == 1 || $1 < lo { lo = $1 }
			$1 + $2 > hi { hi = $1 + $2 }
			END { printf "%.0f %.0f\n", lo, hi }')
	range=$((${last:-0} - ${first:-0}))
	paylen=$(fields "$pcap" "ip.src == $SRV && tcp.len > 0" \
		tcp.len | awk '{ s += $1 } END { print s + 0 }')
	say "$label: server DSNs $first..$last ($range bytes)," \
		"payload $paylen bytes, file $size bytes"
	[ "$range" -ge "$size" ] && [ "$range" -le $((size + 4096)) ] ||
		check_fail "$label: data sequence range $range does not" \
			"cover the file ($size bytes)"
	[ "$paylen" -ge "$size" ] ||
		check_fail "$label: server payload $paylen < $size bytes"
}

mp_setup capture-tshark 2 "$@"
mkdir -p "$IT_TMP/www"
make_random_file "$IT_TMP/www/data" "$SIZE_MB"

for mode in v1 v0 csum; do
	case $mode in
	v1) xfer v1 ;;
	v0) xfer v0 MPTCPSHIM_VERSION=0 ;;
	csum) xfer csum MPTCPSHIM_CHECKSUM=1 ;;
	esac
	for side in cli srv; do
		set -- "$IT_TMP/$mode/$side"/*.pcap
		[ $# -eq 1 ] && [ -f "$1" ] || {
			check_fail "$mode $side: expected one capture: $*"
			continue
		}
		check_pcap "$mode $side" "$1"
	done
done
it_finish

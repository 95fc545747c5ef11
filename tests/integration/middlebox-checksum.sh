#!/bin/bash
#
# middlebox-checksum.sh: a middlebox changes one byte of payload, and DSS
# checksums must catch it.  Both ends are shimmed with MPTCPSHIM_CHECKSUM=1
# and the client sends a file to the server.  In the router,
# testbed/mangleq (an NFQUEUE program) inverts one byte in the middle of
# the Nth packet with at least 1000 bytes of payload that path 1 (c1)
# carries towards the server, once, and fixes the TCP checksum, so TCP
# accepts the change and only the DSS checksum sees it.
#
#   twopaths  two subflows: the damaged one is reset (MP_TCPRST,
#             middlebox interference), its data is sent again on the
#             other, and the server reads the exact bytes.
#   onepath   MPTCPSHIM_MAX_SUBFLOWS=1: MP_FAIL, both ends fall back to
#             plain TCP, and the server still reads the exact bytes.
#
# Each case also needs the logs (MPTCPSHIM_LOG_LEVEL=info) of client or
# server to show the event: the reset of a subflow with EBADMSG, or
# mp-fail (MB_LOG_LEVEL changes the level).  MB_CASES picks cases
# (default: both), MB_SIZE_MB the size (16), MB_NTH the packet changed
# (2000).  mangleq is built with cc into ~/.cache/mptcpshim-testbed/ (or
# $TB_CACHE), or taken from $MANGLEQ.

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/multipath-topo.bash"

SIZE_MB=${MB_SIZE_MB:-16}
NTH=${MB_NTH:-2000}
QUEUE=${MB_QUEUE:-170}
PORT=5760

# Events the logs must show, per case (extended regular expressions): a
# subflow ended by EBADMSG (74), which only a failed DSS checksum gives,
# and MP_FAIL.
EVENT_twopaths='subflow-error .*err=74'
EVENT_onepath='mp-fail '
LOG_LEVEL=${MB_LOG_LEVEL:-info}

# Print the path of a mangleq binary; skip when it cannot be built.
mangleq_binary()
{
	local src=$IT_DIR/../../testbed/mangleq.c cache bin

	if [ -n "${MANGLEQ:-}" ]; then
		[ -x "$MANGLEQ" ] || fail "MANGLEQ=$MANGLEQ is not executable"
		MANGLEQ_BIN=$MANGLEQ
		return
	fi
	cache=${TB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mptcpshim-testbed}
	bin=$cache/mangleq
	if [ ! -x "$bin" ] || [ "$src" -nt "$bin" ]; then
		require_cmd cc pkg-config
		pkg-config --exists libnetfilter_queue ||
			skip "needs libnetfilter-queue-dev (NFQUEUE)"
		mkdir -p "$cache" || fail "cannot create $cache"
		# shellcheck disable=SC2046
		cc -O2 -Wall -Wextra -o "$bin.tmp" "$src" \
			$(pkg-config --cflags --libs libnetfilter_queue) ||
			fail "cannot build mangleq"
		mv "$bin.tmp" "$bin"
	fi
	MANGLEQ_BIN=$bin
}

# Start mangleq in the router and send c1's TCP towards the server
# through it.  Skips when NFQUEUE is not available.
# Usage: mangle_start LABEL
mangle_start()
{
	local label=$1 ready=$IT_TMP/$1.mq.ready tries=100

	rm -f "$ready"
	ip netns exec "$NS_R" "$MANGLEQ_BIN" -r "$ready" \
		-s "$IT_TMP/$label.mq.stats" -n "$NTH" -m 1000 -c 1 "$QUEUE" \
		</dev/null 2>"$IT_TMP/$label.mq.err" &
	MANGLE_PID=$!
	while [ ! -e "$ready" ]; do
		if ! kill -0 "$MANGLE_PID" 2>/dev/null; then
			wait "$MANGLE_PID" 2>/dev/null
			skip "NFQUEUE unavailable:" \
				"$(excerpt "$IT_TMP/$label.mq.err")"
		fi
		[ "$tries" -gt 0 ] || fail "mangleq did not start in 5s"
		sleep 0.05
		tries=$((tries - 1))
	done
	ip netns exec "$NS_R" iptables -w -I FORWARD -i r1 -p tcp \
		-j NFQUEUE --queue-num "$QUEUE" 2>"$IT_TMP/$label.ipt.err" ||
		skip "iptables cannot use NFQUEUE:" \
			"$(excerpt "$IT_TMP/$label.ipt.err")"
}

# Take the rule away, stop mangleq and leave its counts in MANGLE_STATS.
mangle_stop()
{
	ip netns exec "$NS_R" iptables -w -D FORWARD -i r1 -p tcp \
		-j NFQUEUE --queue-num "$QUEUE" 2>/dev/null
	kill -TERM "$MANGLE_PID" 2>/dev/null
	wait_pid "$MANGLE_PID" 5 >/dev/null 2>&1
	MANGLE_STATS=$(cat "$IT_TMP/$1.mq.stats" 2>/dev/null)
}

# Usage: one CASE
one()
{
	local name=$1 max=4 pid rc logs pat hits mangled

	[ "$name" = onepath ] && max=1
	PORT=$((PORT + 1))
	mangle_start "$name"
	start_server "$name-srv" shim "$NS_B" "$PORT" \
		MPTCPSHIM_CHECKSUM=1 MPTCPSHIM_MAX_SUBFLOWS=$max \
		MPTCPSHIM_LOG_LEVEL="$LOG_LEVEL" \
		MPTCPSHIM_LOG_FILE="$IT_TMP/$name-srv-%p.log" \
		"$PY" "$MPTOOL" --deadline 90 server --bind 0.0.0.0 \
		--port "$PORT" --mode sink --accepts "$IT_TMP/$name.accepts"
	run_shim "$NS_A" MPTCPSHIM_CHECKSUM=1 MPTCPSHIM_MAX_SUBFLOWS=$max \
		MPTCPSHIM_LOG_LEVEL="$LOG_LEVEL" \
		MPTCPSHIM_LOG_FILE="$IT_TMP/$name-cli-%p.log" \
		"$PY" "$MPTOOL" --deadline 80 client --host "$SRV" \
		--port "$PORT" --mode send --file "$IT_TMP/data" \
		>"$IT_TMP/$name.out" 2>"$IT_TMP/$name.err" &
	pid=$!
	wait_pid "$pid" 85
	rc=$?
	stop_pid "$SERVER_PID"
	mangle_stop "$name"

	logs=$(ls "$IT_TMP/$name"-srv-*.log "$IT_TMP/$name"-cli-*.log \
		2>/dev/null)
	say "$name: mangleq: $MANGLE_STATS"
	sed -n 's/^/  /p' "$IT_TMP/$name.mq.err" | grep 'inverted'
	mangled=$(echo "$MANGLE_STATS" | sed -n 's/.*mangled=\([0-9]*\).*/\1/p')
	if [ "${mangled:-0}" -ne 1 ]; then
		check_fail "$name: the middlebox changed ${mangled:-no}" \
			"packets, not 1 (transfer too short for MB_NTH=$NTH?)"
	fi

	pat=EVENT_$name
	# shellcheck disable=SC2086
	hits=$(grep -E -H "${!pat}" $logs /dev/null |
		sed "s|^$IT_TMP/||" | head -20)
	if [ -n "$hits" ]; then
		say "$name: log lines:"
		echo "$hits" | sed 's/^/  /'
	else
		check_fail "$name: no log line matches /${!pat}/ in" \
			"$(echo "$logs" | wc -w) logs"
	fi

	if [ "$rc" -ne 0 ]; then
		check_fail "$name: transfer failed (status $rc):" \
			"$(excerpt "$IT_TMP/$name.err")"
		return
	fi
	say "$name: server read the exact bytes (sha256 checked)," \
		"$(cat "$IT_TMP/$name.out")"
}

mp_setup middlebox-checksum 2 "$@"
require_cmd iptables
mangleq_binary
make_random_file "$IT_TMP/data" "$SIZE_MB"
for c in ${MB_CASES:-twopaths onepath}; do
	one "$c"
done
it_finish

#!/bin/bash
#
# errors.sh: a shimmed socket fails the way a TCP socket does (-1 and the
# same errno), with both ends shimmed.  The probes are nettool.py
# subcommands (python3's socket module calls libc's connect, recv, send,
# so the preload applies):
#
#   probe-refused       blocking connect to a closed port: ECONNREFUSED
#                       (IPv4 and IPv6)
#   probe-nb-refused    non-blocking connect to a closed port: EINPROGRESS
#                       at once, then writable, SO_ERROR ECONNREFUSED
#   probe-nb-connect    non-blocking connect to a listening echo server:
#                       EINPROGRESS at once, writable, SO_ERROR 0, echo
#   probe-nb-blackhole  non-blocking connect to an address that never
#                       answers: EINPROGRESS within 0.5 s (nothing blocks
#                       inside connect waiting for a handshake)
#   probe-reset         the peer aborts (SO_LINGER 0, close): recv gives
#                       ECONNRESET
#   probe-epipe         the peer closed: send(MSG_NOSIGNAL) ends in EPIPE,
#                       and no SIGPIPE kills the prober
#
# Every probe first runs without the library (baseline: proves the probe
# right against kernel TCP), then with both ends shimmed.
#
# Usage: errors.sh [path/to/libmptcpshim.so]   (or set SHIMLIB)
# Exit: 0 pass, 1 fail, 77 skip.

# shellcheck source=./lib.sh
. "$(dirname "$0")/lib.sh"

it_setup errors "$@"

: >"$IT_TMP/empty"
SILENT4=10.251.0.99	# on the link, never answers ARP

# Run a probe in NS_A; report its line.
# Usage: probe MODE LABEL SUBCOMMAND HOST PORT
probe()
{
	local mode=$1 label="$1: $2" out rc

	out=$IT_TMP/probe-$1-$5.out
	run_as "$mode" "$NS_A" "$PY" "$NETTOOL" --deadline 20 "$3" \
		--host "$4" --port "$5" >"$out" 2>&1
	rc=$?
	if [ "$rc" -eq 0 ]; then
		say "ok - $label: $(sed 's/^ok: //' "$out" | head -1)"
	elif [ "$rc" -gt 128 ]; then
		check_fail "$label: the prober died of signal" \
			"$((rc - 128)) $(excerpt "$out")"
	else
		check_fail "$label: $(excerpt "$out")"
	fi
}

# Usage: probe_with_server MODE LABEL PROBE PORT SERVER_ARGS...
probe_with_server()
{
	local mode=$1 label=$2 subcmd=$3 port=$4

	shift 4
	start_server "$mode-$1-$port" "$mode" "$NS_B" "$port" \
		"$PY" "$NETTOOL" "$@" --bind "$B4" --port "$port"
	probe "$mode" "$label" "$subcmd" "$B4" "$port"
	stop_pid "$SERVER_PID"
}

# Usage: run_probes MODE BASE_PORT
run_probes()
{
	local mode=$1 p=$2

	probe "$mode" "blocking connect, closed port, IPv4" \
		probe-refused "$B4" $((p + 1))
	probe "$mode" "blocking connect, closed port, IPv6" \
		probe-refused "$B6" $((p + 2))
	probe "$mode" "non-blocking connect, closed port" \
		probe-nb-refused "$B4" $((p + 3))
	probe "$mode" "non-blocking connect, silent address" \
		probe-nb-blackhole "$SILENT4" $((p + 4))
	probe_with_server "$mode" "non-blocking connect, echo server" \
		probe-nb-connect $((p + 5)) \
		banner-server --banner "$IT_TMP/empty"
	probe_with_server "$mode" "peer aborts" \
		probe-reset $((p + 6)) abort-server
	probe_with_server "$mode" "peer closed, then write" \
		probe-epipe $((p + 7)) close-server
}

run_probes plain 7600
run_probes shim 7700
it_finish

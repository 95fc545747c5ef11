#!/bin/bash
#
# bench-loopback.sh: what relaying every byte in user space costs.  A
# benchmark, not a test: it prints figures, and never fails on them.
#
# In one run, on the loopback interface of a private network namespace
# (the host's loopback when not root), it measures for three modes:
#
#   plain TCP      the programs as they are
#   kernel MPTCP   the same programs under mptcpize run (package mptcpd),
#                  net.mptcp.enabled=1; checked with the MPTcpExt counters
#   mptcpshim      LD_PRELOAD=libmptcpshim.so on both ends
#
# - throughput: iperf3, client to server and back (-R), DURATION seconds;
# - latency: one-byte request/response round trips with TCP_NODELAY
#   (scripts/pingpong.c, built here with cc), median, mean and p99, with
#   both processes pinned to one CPU, with one CPU each, and not pinned;
# - the subflow MSS seen in ss during the throughput run (the shim's
#   handshake signal clamps it to about 1219 bytes, which on loopback,
#   MTU 65536, multiplies the packets by about 50).
#
# Further libraries (a build before and after a change) are measured in
# the same run, as modes "mptcpshim 2", "mptcpshim 3" and so on, so that
# they are compared under the same load.
#
# Every measurement is repeated REPEATS times, the modes taking turns
# (plain, kernel, shim, plain, ...), and each figure printed is the median
# of its repeats: a slow second of the machine then spoils one repeat of
# one mode, not the mode's figure and every ratio to it.  The repeats are
# listed after the tables.
#
# It prints a table with the ratios mode/plain.  Figures move from run to
# run: compare within one run.  As root it installs iperf3 and mptcpd with
# apt-get when missing.
#
# Usage: bench-loopback.sh path/to/libmptcpshim.so [another.so ...]
# Environment: DURATION (seconds per iperf3 run, default 3), ROUNDS
# (timed round trips per latency run, default 20000), REPEATS (runs of
# each measurement, default 3), BENCH_SUMMARY (a file that also receives
# every figure as KEY=VALUE lines, for bench/targets.sh).

set -u

HERE=$(cd "$(dirname "$0")" && pwd)
DURATION=${DURATION:-3}
ROUNDS=${ROUNDS:-20000}
REPEATS=${REPEATS:-3}
NS=
TMP=

usage()
{
	echo "usage: $0 path/to/libmptcpshim.so [another.so ...]" >&2
	exit 2
}

[ $# -ge 1 ] || usage
SHIMLIBS=()	# mode shim is SHIMLIBS[0], shim2 SHIMLIBS[1], ...
SHIM_MODES=
for lib in "$@"; do
	[ -f "$lib" ] || usage
	SHIMLIBS+=("$(cd "$(dirname "$lib")" && pwd)/$(basename "$lib")")
	if [ ${#SHIMLIBS[@]} -eq 1 ]; then
		SHIM_MODES=shim
	else
		SHIM_MODES+=" shim${#SHIMLIBS[@]}"
	fi
done

cleanup()
{
	local pid

	for pid in $(jobs -p); do
		kill "$pid" 2>/dev/null
	done
	if [ -n "$NS" ]; then
		for pid in $(ip netns pids "$NS" 2>/dev/null); do
			kill -9 "$pid" 2>/dev/null
		done
		ip netns del "$NS" 2>/dev/null
	fi
	[ -n "$TMP" ] && rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Install a Debian package when its command is missing and we are root.
# Usage: ensure COMMAND PACKAGE
ensure()
{
	command -v "$1" >/dev/null && return 0
	if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
		echo "installing $2 ..." >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" \
			>/dev/null 2>&1 ||
			{ apt-get update -qq >/dev/null 2>&1 &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y \
				-qq "$2" >/dev/null 2>&1; }
	fi
	command -v "$1" >/dev/null
}

# Run a command where the benchmark runs (the namespace or the host).
here()
{
	if [ -n "$NS" ]; then
		ip netns exec "$NS" "$@"
	else
		"$@"
	fi
}

# Run a command in one of the three modes.
# Usage: as_mode plain|kernel|shim COMMAND...
as_mode()
{
	local mode=$1

	shift
	case $mode in
	plain) here env -u LD_PRELOAD "$@" ;;
	kernel) here env -u LD_PRELOAD mptcpize run "$@" ;;
	shim) here env LD_PRELOAD="${SHIMLIBS[0]}" "$@" ;;
	shim*) here env LD_PRELOAD="${SHIMLIBS[${mode#shim} - 1]}" "$@" ;;
	esac
}

# Poll (at most 10 s) until PORT listens.
wait_listen()
{
	local i

	for i in $(seq 200); do
		here ss -ltnH "sport = :$1" | grep -q . && return 0
		sleep 0.05
	done
	return 1
}

# Print a counter of /proc/net/netstat (MPTcpExt), 0 when absent.
mptcp_counter()
{
	here cat /proc/net/netstat | awk -v name="$1" '
		$1 == "MPTcpExt:" && !hdr { for (i = 2; i <= NF; i++)
			if ($i == name) col = i; hdr = 1; next }
		$1 == "MPTcpExt:" && hdr && col { print $col; exit }
		END { if (!col) print 0 }'
}

NEXT_PORT=$((20000 + RANDOM % 20000))
next_port()
{
	NEXT_PORT=$((NEXT_PORT + 1))
	PORT=$NEXT_PORT
}

# Print the rate in Gbit/s of one iperf3 run, or "failed".
# Usage: throughput MODE [-R]
throughput()
{
	local mode=$1 json=$TMP/iperf-$1${2:-}.json client spid

	next_port
	as_mode "$mode" timeout 60 iperf3 -s -1 -B 127.0.0.1 -p "$PORT" \
		>/dev/null 2>"$TMP/iperf-s.err" &
	spid=$!
	if ! wait_listen "$PORT"; then
		echo failed
		return
	fi
	as_mode "$mode" timeout $((DURATION + 30)) iperf3 -c 127.0.0.1 \
		-p "$PORT" -t "$DURATION" -J ${2:+"$2"} >"$json" 2>&1 &
	client=$!
	if [ -z "${2:-}" ]; then
		sleep 1
		here ss -tinH "( dport = :$PORT )" | grep -o 'mss:[0-9]*' |
			sed -n '$s/mss://p' >"$TMP/mss-$mode"
	fi
	wait "$client"
	wait "$spid" 2>/dev/null
	python3 -c '
import json, sys
try:
    r = json.load(open(sys.argv[1]))
    print("%.2f" % (r["end"]["sum_received"]["bits_per_second"] / 1e9))
except Exception:
    print("failed")' "$json"
}

# Print the median of the numbers among the arguments, or "failed".
median()
{
	printf '%s\n' "$@" | grep -E '^[0-9.]+$' | sort -g | awk '
		{ v[++n] = $1 }
		END {
			if (n == 0) print "failed"
			else if (n % 2) print v[(n + 1) / 2]
			else printf "%.2f\n", (v[n / 2] + v[n / 2 + 1]) / 2
		}'
}

# Print "median mean p99" in us of one-byte round trips, or "failed".
# PLACEMENT "one": both processes (all their threads) on CPU 0; "two":
# the server on CPU 0, the client on CPU 1; "any": not pinned, where the
# scheduler puts them, as a user runs them.  Waking a process on another
# CPU costs tens of microseconds in some virtual machines, so the pinned
# placements are reported apart as well.
# Usage: latency MODE one|two|any
latency()
{
	local mode=$1 spid out scpu=(taskset -c 0) ccpu=(taskset -c 0)

	[ "$2" = two ] && ccpu=(taskset -c 1)
	[ "$2" = any ] && scpu=() ccpu=()
	next_port
	as_mode "$mode" timeout 120 "${scpu[@]}" "$TMP/pingpong" server \
		"$PORT" 127.0.0.1 2>"$TMP/pp-s.err" &
	spid=$!
	if ! wait_listen "$PORT"; then
		echo failed failed failed
		return
	fi
	out=$(as_mode "$mode" timeout 120 "${ccpu[@]}" \
		"$TMP/pingpong" client 127.0.0.1 "$PORT" "$ROUNDS" \
		2>"$TMP/pp-c-$mode.err")
	wait "$spid" 2>/dev/null
	echo "${out:-failed failed failed}"
}

# Usage: ratio VALUE PLAIN
ratio()
{
	awk -v v="$1" -v p="$2" 'BEGIN {
		if (v + 0 > 0 && p + 0 > 0)
			printf "%.2f", v / p
		else
			print "-"
	}'
}

# --- setup ---------------------------------------------------------------

TMP=$(mktemp -d /tmp/mptcpshim-bench.XXXXXX)
ensure iperf3 iperf3 || { echo "needs iperf3" >&2; exit 1; }
ensure cc gcc || { echo "needs a C compiler" >&2; exit 1; }
ensure python3 python3 || { echo "needs python3" >&2; exit 1; }
HAVE_KERNEL=1
ensure mptcpize mptcpd || HAVE_KERNEL=0

cc -O2 -Wall -o "$TMP/pingpong" "$HERE/pingpong.c" ||
	{ echo "cannot build pingpong" >&2; exit 1; }

WHERE="the host's loopback"
if [ "$(id -u)" -eq 0 ]; then
	NS=mps-bench-$$-$RANDOM
	if ip netns add "$NS" 2>/dev/null; then
		ip -n "$NS" link set lo up
		WHERE="loopback inside a private network namespace"
	else
		NS=
	fi
fi

if [ "$HAVE_KERNEL" -eq 1 ] &&
	[ "$(here sysctl -n net.mptcp.enabled 2>/dev/null)" != 1 ]; then
	here sysctl -qw net.mptcp.enabled=1 2>/dev/null || HAVE_KERNEL=0
fi

# --- measure -------------------------------------------------------------

declare -A UP DOWN NOTE SYNS PP_ERR
declare -A P50 MEAN P99	# keyed "mode placement"
declare -A RUNS_UP RUNS_DOWN RUNS_P50 RUNS_MEAN RUNS_P99 # the repeats
MODES="plain kernel $SHIM_MODES"
[ "$HAVE_KERNEL" -eq 1 ] || MODES="plain $SHIM_MODES"
PLACEMENTS="one"
[ "$(nproc)" -ge 2 ] && PLACEMENTS="one two any"

for rep in $(seq "$REPEATS"); do
	for mode in $MODES; do
		echo "measuring $mode ($rep of $REPEATS) ..." >&2
		before=$(mptcp_counter MPCapableSYNRX)
		RUNS_UP[$mode]+=" $(throughput "$mode")"
		RUNS_DOWN[$mode]+=" $(throughput "$mode" -R)"
		for cpus in $PLACEMENTS; do
			read -r p50 mean p99 <<<"$(latency "$mode" "$cpus")"
			RUNS_P50[$mode $cpus]+=" $p50"
			RUNS_MEAN[$mode $cpus]+=" $mean"
			RUNS_P99[$mode $cpus]+=" $p99"
		done
		after=$(mptcp_counter MPCapableSYNRX)
		SYNS[$mode]=$((${SYNS[$mode]:-0} + after - before))
		if [ -s "$TMP/pp-c-$mode.err" ] && [ -z "${PP_ERR[$mode]:-}" ]; then
			PP_ERR[$mode]="; $(head -1 "$TMP/pp-c-$mode.err")"
		fi
	done
done

for mode in $MODES; do
	# shellcheck disable=SC2086 # the repeats, split on purpose
	UP[$mode]=$(median ${RUNS_UP[$mode]})
	# shellcheck disable=SC2086
	DOWN[$mode]=$(median ${RUNS_DOWN[$mode]})
	for cpus in $PLACEMENTS; do
		k="$mode $cpus"
		# shellcheck disable=SC2086
		P50[$k]=$(median ${RUNS_P50[$k]})
		# shellcheck disable=SC2086
		MEAN[$k]=$(median ${RUNS_MEAN[$k]})
		# shellcheck disable=SC2086
		P99[$k]=$(median ${RUNS_P99[$k]})
	done
	NOTE[$mode]="subflow mss $(cat "$TMP/mss-$mode" 2>/dev/null)"
	if [ "$mode" = kernel ] && [ "${SYNS[$mode]}" -eq 0 ]; then
		NOTE[$mode]+="; NOT MPTCP (no MP_CAPABLE SYN seen)"
	elif [ "$mode" = kernel ]; then
		NOTE[$mode]+="; ${SYNS[$mode]} MP_CAPABLE SYNs"
	fi
	NOTE[$mode]+=${PP_ERR[$mode]:-}
done

# --- report --------------------------------------------------------------

name_of()
{
	case $1 in
	plain) echo "plain TCP" ;;
	kernel) echo "kernel MPTCP" ;;
	shim) echo "mptcpshim" ;;
	shim*) echo "mptcpshim ${1#shim}" ;;
	esac
}

echo
echo "mptcpshim benchmark: $WHERE; $(uname -r); $(nproc) cores"
i=1
for lib in "${SHIMLIBS[@]}"; do
	if [ $i -eq 1 ]; then
		echo "library: $lib"
	else
		echo "library $i: $lib"
	fi
	i=$((i + 1))
done
echo
echo "Throughput, iperf3, one stream, ${DURATION}s per direction (Gbit/s):"
printf '%-13s %9s %6s %9s %6s\n' mode up ratio down ratio
for mode in $MODES; do
	printf '%-13s %9s %6s %9s %6s\n' "$(name_of "$mode")" \
		"${UP[$mode]}" "$(ratio "${UP[$mode]}" "${UP[plain]}")" \
		"${DOWN[$mode]}" "$(ratio "${DOWN[$mode]}" "${DOWN[plain]}")"
done
echo
echo "Latency, $ROUNDS one-byte round trips (microseconds):"
printf '%-13s %-9s %8s %6s %8s %8s %6s\n' mode cpus p50 ratio mean p99 ratio
for mode in $MODES; do
	for cpus in $PLACEMENTS; do
		k="$mode $cpus"
		printf '%-13s %-9s %8s %6s %8s %8s %6s\n' "$(name_of "$mode")" \
			"$cpus" "${P50[$k]}" \
			"$(ratio "${P50[$k]}" "${P50[plain $cpus]}")" \
			"${MEAN[$k]}" "${P99[$k]}" \
			"$(ratio "${P99[$k]}" "${P99[plain $cpus]}")"
	done
done
echo
echo "Ratios are mode/plain: above 1 is faster for throughput, slower for"
echo "latency.  cpus: one = both processes on CPU 0; two = server on CPU 0,"
echo "client on CPU 1; any = not pinned, placed by the scheduler."
for mode in $MODES; do
	echo "$(name_of "$mode"): ${NOTE[$mode]}"
done
echo
echo "Each figure is the median of $REPEATS runs, the modes taking turns;"
echo "the runs (up, down Gbit/s; p50 per placement, us):"
for mode in $MODES; do
	line=$(printf '%-13s up%s; down%s' "$(name_of "$mode")" \
		"${RUNS_UP[$mode]}" "${RUNS_DOWN[$mode]}")
	for cpus in $PLACEMENTS; do
		line+="; $cpus${RUNS_P50[$mode $cpus]}"
	done
	echo "$line"
done
[ "$HAVE_KERNEL" -eq 1 ] ||
	echo "kernel MPTCP: not measured (no mptcpize or net.mptcp.enabled)"
if [ -n "${BENCH_SUMMARY:-}" ]; then
	for mode in $MODES; do
		echo "up_$mode=${UP[$mode]}"
		echo "down_$mode=${DOWN[$mode]}"
		for cpus in $PLACEMENTS; do
			echo "p50_${cpus}_$mode=${P50[$mode $cpus]}"
		done
	done >"$BENCH_SUMMARY"
fi
exit 0

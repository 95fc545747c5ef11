#!/bin/bash
#
# targets.sh: the performance targets of mptcpshim, each measured in one
# run on this machine and printed as a ratio.  A benchmark, not a test:
# it prints figures and never fails on them.
#
#   1. loopback throughput, one subflow: mptcpshim / plain TCP >= 0.75
#   2. one-byte request/response latency on loopback (median): <= 1.3 x
#      plain TCP
#   3. CPU seconds per gigabyte at a fixed 1 Gbit/s, both ends counted:
#      <= 1.5 x kernel MPTCP
#   4. time to the first response byte over an emulated path with 20 ms
#      one-way delay, peer known to run the library: <= plain TCP + 5 %
#   5. user-space memory per idle connection, many in one process:
#      <= 32 KiB
#   6. (with --multipath) the aggregation and failover scenarios of
#      bench/driver.sh: hetero and failover-blackhole
#
# How each is measured:
#   1, 2  scripts/bench-loopback.sh (iperf3; scripts/pingpong.c), each
#         figure the median of REPEATS runs with the modes taking turns;
#         three placements of the latency run: both ends pinned on one CPU, one
#         CPU each, and not pinned (where the scheduler puts them, as a
#         user runs them); all three are shown, each with its ratio.
#   3     iperf3 -b 1G -n CPU_BYTES in a network namespace's loopback;
#         user + system time of both iperf3 processes with all their
#         threads (GNU time), divided by the bytes.  Loopback delivers
#         in the sender's context, so the receiving kernel work is in
#         the sender's system time, alike for every mode.
#   4     bench/ttfb.c through testbed/netpaths.sh (one path, TTFB_PATH):
#         TTFB_COUNT connections in one client process, the first one
#         apart, the median of the others compared.
#   5     bench/idle.c: IDLE_COUNT connections (at most what
#         RLIMIT_NOFILE allows: a converted connection holds three
#         descriptors in each process), RssAnon of the client and of the
#         server process after one connection and after all of them.
#
# Usage: bench/targets.sh [--multipath] path/to/libmptcpshim.so
# Environment: CPU_BYTES (default 1G), TTFB_PATH (default
# 1gbit:20ms:0), TTFB_COUNT (default 21), IDLE_COUNT (default 10000),
# and those of scripts/bench-loopback.sh (DURATION, ROUNDS, REPEATS).  Needs root
# for the namespaces.

set -u

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$BENCH/.." && pwd)
CPU_BYTES=${CPU_BYTES:-1G}
TTFB_PATH=${TTFB_PATH:-1gbit:20ms:0}
TTFB_COUNT=${TTFB_COUNT:-21}
IDLE_COUNT=${IDLE_COUNT:-10000}
TMP=
NS=

die()
{
	printf 'targets: %s\n' "$*" >&2
	exit 1
}

# Wait (at most 5 s) until PORT listens in namespace NS.
# Usage: ns_wait_listen NS PORT
ns_wait_listen()
{
	for _ in $(seq 100); do
		ip netns exec "$1" ss -ltnH "sport = :$2" | grep -q . &&
			return 0
		sleep 0.05
	done
	return 1
}

# --- inner part of target 4, run by netpaths.sh with the TB_ variables -----

# Usage: targets.sh --ttfb-inner LIB TTFB_BINARY OUT COUNT
if [ "${1:-}" = --ttfb-inner ]; then
	lib=$2 bin=$3 out=$4 count=$5 port=8400
	for mode in plain kernel shim; do
		port=$((port + 1))
		case $mode in
		plain) pre=(env -u LD_PRELOAD) ;;
		kernel) pre=(env -u LD_PRELOAD mptcpize run) ;;
		shim) pre=(env LD_PRELOAD="$lib") ;;
		esac
		[ "$mode" = kernel ] && ! command -v mptcpize >/dev/null &&
			continue
		ip netns exec "$TB_NS_SERVER" "${pre[@]}" "$bin" server \
			0.0.0.0 "$port" 2>/dev/null &
		spid=$!
		ns_wait_listen "$TB_NS_SERVER" "$port"
		echo "$mode $(ip netns exec "$TB_NS_CLIENT" "${pre[@]}" \
			timeout 60 "$bin" client "$TB_SERVER4" "$port" \
			"$count")" >>"$out"
		kill "$spid" 2>/dev/null
		wait "$spid" 2>/dev/null
	done
	exit 0
fi

multipath=0
if [ "${1:-}" = --multipath ]; then
	multipath=1
	shift
fi
[ $# -eq 1 ] && [ -f "$1" ] ||
	die "usage: $0 [--multipath] path/to/libmptcpshim.so"
LIB=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces)"

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

TMP=$(mktemp -d /tmp/mptcpshim-targets.XXXXXX)
for tool in idle ttfb; do
	cc -O2 -Wall -Wextra -o "$TMP/$tool" "$BENCH/$tool.c" ||
		die "cannot build bench/$tool.c"
done
HAVE_KERNEL=0
command -v mptcpize >/dev/null && HAVE_KERNEL=1
MODES="plain shim"
[ "$HAVE_KERNEL" -eq 1 ] && MODES="plain kernel shim"

NS=mps-targets-$$
ip netns add "$NS" || die "cannot create a network namespace"
ip -n "$NS" link set lo up
[ "$HAVE_KERNEL" -eq 1 ] && ip netns exec "$NS" sysctl -qw net.mptcp.enabled=1

# Usage: as_mode MODE COMMAND... (in the namespace)
as_mode()
{
	local mode=$1

	shift
	case $mode in
	plain) ip netns exec "$NS" env -u LD_PRELOAD "$@" ;;
	kernel) ip netns exec "$NS" env -u LD_PRELOAD mptcpize run "$@" ;;
	shim) ip netns exec "$NS" env LD_PRELOAD="$LIB" "$@" ;;
	esac
}

# Usage: ratio VALUE REFERENCE
ratio()
{
	awk -v v="$1" -v r="$2" 'BEGIN {
		if (v + 0 > 0 && r + 0 > 0) printf "%.2f", v / r
		else print "-" }'
}

# Usage: verdict RATIO <=|>= GOAL
verdict()
{
	awk -v r="$1" -v op="$2" -v g="$3" 'BEGIN {
		if (r == "-") { print "not measured"; exit }
		ok = (op == "<=") ? (r + 0 <= g + 0) : (r + 0 >= g + 0)
		print ok ? "met" : "NOT met" }'
}

# --- 1 and 2: loopback --------------------------------------------------

echo "targets: 1, 2: scripts/bench-loopback.sh ..." >&2
BENCH_SUMMARY=$TMP/loopback.sum "$TOP/scripts/bench-loopback.sh" "$LIB" \
	>"$TMP/loopback.out" 2>"$TMP/loopback.err"
declare -A F
while IFS='=' read -r k v; do
	F[$k]=$v
done <"$TMP/loopback.sum"

# --- 3: CPU per gigabyte at 1 Gbit/s -----------------------------------

# Print the CPU seconds per GB of one run, or "-".
cpu_per_gb()
{
	local mode=$1 port=$2 spid

	as_mode "$mode" /usr/bin/time -f '%U %S' -o "$TMP/cpu-s-$mode" \
		iperf3 -s -1 -B 127.0.0.1 -p "$port" >/dev/null 2>&1 &
	spid=$!
	ns_wait_listen "$NS" "$port"
	as_mode "$mode" /usr/bin/time -f '%U %S' -o "$TMP/cpu-c-$mode" \
		timeout 120 iperf3 -c 127.0.0.1 -p "$port" -b 1G \
		-n "$CPU_BYTES" -J >"$TMP/cpu-$mode.json" 2>/dev/null
	wait "$spid"
	python3 - "$TMP/cpu-$mode.json" "$TMP/cpu-s-$mode" \
		"$TMP/cpu-c-$mode" <<-'EOF'
	import json, sys
	try:
	    r = json.load(open(sys.argv[1]))
	    gb = r["end"]["sum_received"]["bytes"] / 1e9
	    cpu = 0.0
	    for f in sys.argv[2:]:
	        last = open(f).read().split("\n")[-2].split()
	        cpu += float(last[0]) + float(last[1])
	    print("%.2f" % (cpu / gb))
	except Exception:
	    print("-")
	EOF
}

echo "targets: 3: CPU per GB at 1 Gbit/s ..." >&2
declare -A CPU
port=8300
for mode in $MODES; do
	port=$((port + 1))
	CPU[$mode]=$(cpu_per_gb "$mode" "$port")
done

# --- 4: time to the first byte over a 20 ms path ------------------------

echo "targets: 4: time to first byte over $TTFB_PATH ..." >&2
"$TOP/testbed/netpaths.sh" run --paths "$TTFB_PATH" -- \
	"$BENCH/targets.sh" --ttfb-inner "$LIB" "$TMP/ttfb" "$TMP/ttfb.out" \
	"$TTFB_COUNT" \
	>/dev/null 2>"$TMP/ttfb.err"
declare -A TTFB_FIRST TTFB_MED
while read -r mode first med _; do
	TTFB_FIRST[$mode]=$first
	TTFB_MED[$mode]=$med
done <"$TMP/ttfb.out"

# --- 5: memory per idle connection ---------------------------------------

# Wait (at most $2 s) until file $1 has a line $3.
wait_line()
{
	local i

	for i in $(seq $(($2 * 20))); do
		grep -qx "$3" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# Print RssAnon in KiB of the process whose command line starts with $1.
rss_of()
{
	local pid

	pid=$(pgrep -n -f "^$1") &&
		awk '/^RssAnon/ { print $2 }' "/proc/$pid/status"
}

# Print "client_bytes server_bytes" per connection, or "- -".  Each idle
# process reads "go" on a FIFO after its first connection.
idle_memory()
{
	local mode=$1 port=$2 n=$3 side s1 c1 s2 c2 sfd cfd

	for side in server client; do
		rm -f "$TMP/idle-$side.out" "$TMP/idle-$side.in"
		mkfifo "$TMP/idle-$side.in"
	done
	as_mode "$mode" "$TMP/idle" server 127.0.0.1 "$port" "$n" \
		<"$TMP/idle-server.in" >"$TMP/idle-server.out" \
		2>>"$TMP/idle.err" &
	exec {sfd}>"$TMP/idle-server.in"
	# a client started before the listen is refused (seen for plain)
	ns_wait_listen "$NS" "$port"
	as_mode "$mode" "$TMP/idle" client 127.0.0.1 "$port" "$n" \
		<"$TMP/idle-client.in" >"$TMP/idle-client.out" \
		2>>"$TMP/idle.err" &
	exec {cfd}>"$TMP/idle-client.in"
	if wait_line "$TMP/idle-client.out" 30 one &&
		wait_line "$TMP/idle-server.out" 30 one; then
		s1=$(rss_of "$TMP/idle server")
		c1=$(rss_of "$TMP/idle client")
		echo go >&"$cfd"
		echo go >&"$sfd"
		if wait_line "$TMP/idle-client.out" 300 ready &&
			wait_line "$TMP/idle-server.out" 60 ready; then
			sleep 1
			s2=$(rss_of "$TMP/idle server")
			c2=$(rss_of "$TMP/idle client")
		fi
	fi
	pkill -f "^$TMP/idle "
	exec {sfd}>&- {cfd}>&-
	wait 2>/dev/null
	if [ -z "${s2:-}" ] || [ -z "${c2:-}" ]; then
		echo "- -"
		return
	fi
	echo "$(((c2 - c1) * 1024 / (n - 1))) $(((s2 - s1) * 1024 / (n - 1)))"
}

limit=$(ulimit -Hn)
ulimit -n "$limit"
idle_n=$IDLE_COUNT
if [ $((idle_n * 3 + 100)) -gt "$limit" ]; then
	idle_n=$(((limit - 100) / 3 / 1000 * 1000))
	IDLE_NOTE="RLIMIT_NOFILE $limit allows $idle_n of the $IDLE_COUNT"
	IDLE_NOTE+=" connections asked for (three descriptors each)"
fi
echo "targets: 5: $idle_n idle connections ..." >&2
declare -A IDLE_C IDLE_S
port=8500
for mode in $MODES; do
	port=$((port + 1))
	read -r c s <<<"$(idle_memory "$mode" "$port" "$idle_n")"
	IDLE_C[$mode]=$c
	IDLE_S[$mode]=$s
done

# --- report --------------------------------------------------------------

echo
echo "mptcpshim performance targets: $(uname -r); $(nproc) cores; one run"
echo "library: $LIB"
echo
printf '%-40s %9s %9s %9s  %-22s %s\n' target plain kernel mptcpshim \
	ratio verdict
row()
{
	local name=$1 p=$2 k=$3 s=$4 rname=$5 r=$6 op=$7 goal=$8

	printf '%-40s %9s %9s %9s  %-22s %s\n' "$name" "$p" "$k" "$s" \
		"$rname $r" "$(verdict "$r" "$op" "$goal") ($op $goal)"
}
for dir in up down; do
	row "1 loopback $dir, Gbit/s" "${F[${dir}_plain]:--}" \
		"${F[${dir}_kernel]:--}" "${F[${dir}_shim]:--}" "shim/plain" \
		"$(ratio "${F[${dir}_shim]:-}" "${F[${dir}_plain]:-}")" \
		'>=' 0.75
done
for cpus in any two one; do
	row "2 round trip p50 ($cpus CPU), us" "${F[p50_${cpus}_plain]:--}" \
		"${F[p50_${cpus}_kernel]:--}" "${F[p50_${cpus}_shim]:--}" \
		"shim/plain" "$(ratio "${F[p50_${cpus}_shim]:-}" \
		"${F[p50_${cpus}_plain]:-}")" '<=' 1.3
done
row "3 CPU s per GB at 1 Gbit/s" "${CPU[plain]:--}" "${CPU[kernel]:--}" \
	"${CPU[shim]:--}" "shim/kernel" \
	"$(ratio "${CPU[shim]:-}" "${CPU[kernel]:-}")" '<=' 1.5
row "4 first byte, peer known, ms" "${TTFB_MED[plain]:--}" \
	"${TTFB_MED[kernel]:--}" "${TTFB_MED[shim]:--}" "shim/plain" \
	"$(ratio "${TTFB_MED[shim]:-}" "${TTFB_MED[plain]:-}")" '<=' 1.05
row "  first byte, first connection, ms" "${TTFB_FIRST[plain]:--}" \
	"${TTFB_FIRST[kernel]:--}" "${TTFB_FIRST[shim]:--}" "shim/plain" \
	"$(ratio "${TTFB_FIRST[shim]:-}" "${TTFB_FIRST[plain]:-}")" '<=' 1.05
for side in client server; do
	if [ $side = client ]; then
		p=${IDLE_C[plain]:--} k=${IDLE_C[kernel]:--}
		s=${IDLE_C[shim]:--}
	else
		p=${IDLE_S[plain]:--} k=${IDLE_S[kernel]:--}
		s=${IDLE_S[shim]:--}
	fi
	row "5 idle conn, $side, bytes each" "$p" "$k" "$s" "shim KiB" \
		"$(awk -v s="$s" 'BEGIN { if (s == "-") print "-";
			else printf "%.1f", s / 1024 }')" '<=' 32
done
echo
echo "Idle connections: $idle_n per process.${IDLE_NOTE:+ $IDLE_NOTE.}"
echo "Loopback details (scripts/bench-loopback.sh):"
sed -n '/^Throughput/,$p' "$TMP/loopback.out"

if [ "$multipath" -eq 1 ]; then
	echo
	echo "6: bench/driver.sh hetero and failover-blackhole:"
	"$BENCH/driver.sh" --shim "$LIB" --no-plot \
		"$BENCH/scenarios/hetero.conf" \
		"$BENCH/scenarios/failover-blackhole.conf" 2>/dev/null
else
	echo
	echo "6: run with --multipath for the aggregation and failover" \
		"scenarios"
fi
exit 0

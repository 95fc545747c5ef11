#!/bin/bash
# accuracy.sh: check that the test bed's paths have the delay and rate
# they were configured with.
#
# Builds a bed with two differently configured paths (testbed/netpaths.sh)
# and measures on each, while the other is idle:
#   - round-trip time: median of ping samples, IPv4 and IPv6; it passes
#     within 10% + 1 ms of twice the configured one-way delay;
#   - rate: iperf3 TCP goodput at the receiver over 4 s after 1 s of slow
#     start, each way; it passes within 5% of the expected goodput.
#
# What "rate" means: the configured rate counts layer-2 bytes, the
# Ethernet header (14 bytes) and the IP packet, as tbf meters them (no
# preamble, no FCS).  A full-sized TCP segment (MTU 1500, timestamps on)
# carries 1448 payload bytes in a 1514-byte frame over IPv4 and 1428 over
# IPv6, so the expected goodput is rate x 1448/1514 (IPv4) or
# rate x 1428/1514 (IPv6).
#
# Exit: 0 pass, 1 fail, 77 skip (no root, no namespaces, no NFQUEUE, no
# IFB or tbf, packages not installable); the reason is printed.
set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
netpaths=$top/testbed/netpaths.sh
name=accuracy
paths="100mbit:5ms:0,20mbit:30ms:0"
failed=0
probe_ns=""

say()
{
	printf '%s: %s\n' "$name" "$*"
}

skip()
{
	printf '%s: SKIP: %s\n' "$name" "$*" >&2
	exit 77
}

cleanup()
{
	local status=$?

	trap - EXIT INT TERM
	if [ -n "$probe_ns" ]; then
		for pid in $(ip netns pids "$probe_ns" 2>/dev/null); do
			kill "$pid" 2>/dev/null || true
		done
		ip netns del "$probe_ns" 2>/dev/null || true
	fi
	if [ -n "${TB_ENV:-}" ] && [ -e "$TB_ENV" ]; then
		"$netpaths" down --env "$TB_ENV" || true
	fi
	exit "$status"
}

# Skip unless the machine can build a bed: root, namespaces, IFB and tbf,
# iptables with NFQUEUE, and a delayq that binds a queue.
require_testbed()
{
	local bin ready

	[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces)"
	"$top/testbed/deps.sh" testbed ||
		skip "cannot install the test bed's packages"
	probe_ns=tb-probe-$$-$RANDOM
	ip netns add "$probe_ns" 2>/dev/null ||
		skip "cannot create a network namespace"
	ip -n "$probe_ns" link add tbifb type ifb 2>/dev/null ||
		skip "no IFB devices in this kernel"
	tc -n "$probe_ns" qdisc add dev tbifb root tbf rate 1mbit \
		burst 3100 limit 10000 2>/dev/null || skip "no tbf qdisc"
	ip netns exec "$probe_ns" iptables -w -A OUTPUT -o lo \
		-j NFQUEUE --queue-num 7 2>/dev/null ||
		skip "iptables has no NFQUEUE target here"

	bin=$("$netpaths" delayq) || skip "cannot build testbed/delayq.c"
	ready=$(mktemp -u)
	ip netns exec "$probe_ns" "$bin" -r "$ready" 7:1000 \
		>/dev/null 2>&1 &
	sleep 0.3
	kill $! 2>/dev/null || true
	wait $! 2>/dev/null || true
	[ -e "$ready" ] || skip "delayq cannot bind an NFQUEUE queue"
	rm -f "$ready"
	ip netns del "$probe_ns"
	probe_ns=""
}

# Print the median of the numbers on standard input.
median()
{
	sort -n | awk '{ v[NR] = $1 }
		END { if (NR == 0) exit 1
		      if (NR % 2) print v[(NR + 1) / 2]
		      else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Succeed when |$1 - $2| <= $3 (all in the same unit).
within()
{
	awk -v m="$1" -v e="$2" -v tol="$3" \
		'BEGIN { d = m - e; if (d < 0) d = -d; exit !(d <= tol) }'
}

# Print one result line and record a failure.
report()
{
	local what=$1 measured=$2 expected=$3 tol=$4 unit=$5 verdict=ok

	if ! within "$measured" "$expected" "$tol"; then
		verdict=FAIL
		failed=1
	fi
	printf '%s: %-28s measured %9.2f %s, expected %9.2f +- %.2f: %s\n' \
		"$name" "$what" "$measured" "$unit" "$expected" "$tol" \
		"$verdict"
}

# Measure the round-trip time of path $1 over IP version $2.
check_rtt()
{
	local i=$1 v=$2 src dst us rtt expected

	us=$(var "TB_DELAY_US_$i")
	src=$(var "TB_CLIENT${v}_$i")
	dst=$(var "TB_SERVER${v}")
	rtt=$(ip netns exec "$TB_NS_CLIENT" ping "-$v" -n -c 60 -i 0.02 \
		-I "$src" "$dst" | sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p' |
		median) || { failed=1; say "path $i: no ping replies"; return; }
	expected=$(awk -v us="$us" 'BEGIN { print 2 * us / 1000 }')
	report "path $i rtt IPv$v" "$rtt" "$expected" \
		"$(awk -v e="$expected" 'BEGIN { print e * 0.1 + 1 }')" ms
}

# Start an iperf3 server for one test in the server namespace, wait until
# it listens on port $1.
start_iperf_server()
{
	local n=0

	ip netns exec "$TB_NS_SERVER" iperf3 -s -1 -p "$1" >/dev/null 2>&1 &
	until ip netns exec "$TB_NS_SERVER" ss -Hltn "sport = :$1" |
		grep -q .; do
		n=$((n + 1))
		if [ $n -ge 100 ]; then
			say "iperf3 server did not start"
			return 1
		fi
		sleep 0.05
	done
}

# Measure the goodput of path $1 over IP version $2, way $3 (up, down).
# The delay stage runs in user space: on a 2-core machine busy with other
# work, a run can fall short because the stage did not get the CPU, not
# because the bed is wrong.  So a measurement that misses is taken once
# more, and the second one decides; both are printed.
check_rate()
{
	local failed_before=$failed

	measure_rate "$@"
	if [ "$failed" -ne "$failed_before" ]; then
		failed=$failed_before
		say "path $1 IPv$2 $3: measuring again"
		measure_rate "$@"
	fi
}

measure_rate()
{
	local i=$1 v=$2 way=$3 src dst bps port expected got rev=""

	bps=$(var "TB_RATE_BPS_$i")
	src=$(var "TB_CLIENT${v}_$i")
	dst=$(var "TB_SERVER${v}")
	port=$((5300 + i * 4 + v))
	[ "$way" = down ] && rev=-R
	start_iperf_server "$port" || { failed=1; return; }
	got=$(ip netns exec "$TB_NS_CLIENT" iperf3 "-$v" -c "$dst" -B "$src" \
		-p "$port" -t 4 -O 1 -f k $rev |
		awk '/receiver/ { for (f = 1; f <= NF; f++)
			if ($f == "Kbits/sec") print $(f - 1) / 1000 }')
	wait
	[ -n "$got" ] || { failed=1; say "path $i: iperf3 failed"; return; }
	expected=$(awk -v bps="$bps" -v v="$v" 'BEGIN {
		payload = v == 4 ? 1448 : 1428
		print bps * payload / 1514 / 1e6 }')
	report "path $i goodput IPv$v $way" "$got" "$expected" \
		"$(awk -v e="$expected" 'BEGIN { print e * 0.05 }')" Mbit/s
}

var()
{
	echo "${!1}"
}

main()
{
	local i

	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	require_testbed
	command -v iperf3 >/dev/null || skip "needs iperf3"

	say "paths $paths"
	eval "$("$netpaths" up --paths "$paths")"
	say "delay stage: $TB_DELAY_STAGE"
	for ((i = 0; i < TB_NPATHS; i++)); do
		check_rtt "$i" 4
		check_rtt "$i" 6
	done
	for ((i = 0; i < TB_NPATHS; i++)); do
		check_rate "$i" 4 up
		check_rate "$i" 4 down
	done
	check_rate 0 6 down

	if [ "$failed" -ne 0 ]; then
		say "FAIL"
		exit 1
	fi
	say "all checks passed"
}

main "$@"

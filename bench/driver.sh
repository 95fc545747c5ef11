#!/bin/bash
# driver.sh: benchmark mptcpshim against plain TCP and kernel MPTCP on the
# emulated paths of testbed/netpaths.sh, all in one run.
#
# Usage: bench/driver.sh [options] SCENARIO.conf...
#   --shim LIB        libmptcpshim.so, preloaded on both ends (default:
#                     $SHIM_LIB); without it the mptcpshim rows are
#                     skipped with a note
#   --shim-env WORDS  VAR=VALUE words added to the environment of both
#                     ends of the mptcpshim runs
#   --variants LIST   any of tcp,kernel,shim (default: all three)
#   --out DIR         where results go (default: a new directory under
#                     ${TMPDIR:-/tmp})
#   --cc NAME         TCP congestion control on both ends (default: the
#                     scenario's cc key, else the machine's default)
#   --no-plot         skip the PNG plots
#
# For each scenario (bench/scenarios/*.conf, described in testbed/README.md)
# it builds one bed and runs the same sender and receiver (bench/xfer.c)
# as: plain TCP on each path alone (tcp-pN), kernel MPTCP (mptcpize on
# both ends, the client's other interfaces as subflow endpoints), and
# mptcpshim.  Faults are applied at their times after each run's start
# and cleared after it.  It prints a table per scenario (goodput,
# completion time, longest stall, bytes checked, share of bytes per path,
# ratios of mptcpshim to kernel MPTCP and to the best single path) and
# draws delivered bytes over time per run and per path into a PNG.
set -eu

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$BENCH/.." && pwd)
NETPATHS=$TOP/testbed/netpaths.sh

opt_shim=${SHIM_LIB:-}
opt_shim_env=""
opt_variants="tcp,kernel,shim"
opt_out=""
opt_plot=1
opt_cc=""

xfer=""
port=7000
shim_note=""

say()
{
	printf '%s\n' "$*" >&2
}

die()
{
	printf 'driver: %s\n' "$*" >&2
	exit 1
}

# --- setup ----------------------------------------------------------------

# Print the path of an xfer binary: $XFER if set, else bench/xfer.c built
# into the test bed's cache directory.
build_xfer()
{
	local cache bin src=$BENCH/xfer.c

	if [ -n "${XFER:-}" ]; then
		[ -x "$XFER" ] || die "XFER=$XFER is not executable"
		echo "$XFER"
		return
	fi
	cache=${TB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mptcpshim-testbed}
	bin=$cache/xfer
	if [ ! -x "$bin" ] || [ "$src" -nt "$bin" ]; then
		mkdir -p "$cache"
		cc -O2 -Wall -Wextra -o "$bin.tmp" "$src" >&2 ||
			die "cannot build $src"
		mv "$bin.tmp" "$bin"
	fi
	echo "$bin"
}

# Give kernel MPTCP the same paths: every client interface but the first
# as a subflow endpoint, every server home but the first announced, and
# limits that allow them all.  Plain TCP sockets are not affected.
setup_kernel_mptcp()
{
	local i ns

	for ns in "$TB_NS_CLIENT" "$TB_NS_SERVER"; do
		ip -n "$ns" mptcp limits set subflow 8 add_addr_accepted 8
	done
	for ((i = 1; i < TB_NPATHS; i++)); do
		ip -n "$TB_NS_CLIENT" mptcp endpoint add "$(v TB_CLIENT4_$i)" \
			dev "c$i" subflow
		ip -n "$TB_NS_CLIENT" mptcp endpoint add "$(v TB_CLIENT6_$i)" \
			dev "c$i" subflow
	done
	for ((i = 1; i < TB_NHOMES; i++)); do
		ip -n "$TB_NS_SERVER" mptcp endpoint add "$(v TB_SERVER4_$i)" \
			dev "s$i" signal
		ip -n "$TB_NS_SERVER" mptcp endpoint add "$(v TB_SERVER6_$i)" \
			dev "s$i" signal
	done
}

# Print the value of the variable named $1.
v()
{
	echo "${!1}"
}

# --- scenarios --------------------------------------------------------------

# Read scenario file $1 into sc_* variables, with defaults.
load_scenario()
{
	local name="" description="" paths="" server_homes=1 bytes=16MiB
	local direction=down faults="" timeout="" family=4 limit=none cc=""

	# shellcheck disable=SC1090
	. "$1"
	[ -n "$paths" ] || die "$1: no paths"
	sc_name=${name:-$(basename "$1" .conf)}
	sc_description=$description
	sc_paths=$paths
	sc_homes=$server_homes
	sc_bytes=$bytes
	sc_faults=$faults
	sc_timeout=$timeout
	sc_family=$family
	sc_limit=$limit
	sc_cc=${opt_cc:-$cc}
	case $direction in
	up|down) sc_directions=$direction ;;
	both) sc_directions="up down" ;;
	*) die "$1: direction is up, down or both" ;;
	esac
	case $family in
	4|6) ;;
	*) die "$1: family is 4 or 6" ;;
	esac
}

# Print the scenario's size in bytes.
scenario_bytes()
{
	awk -v s="$sc_bytes" 'BEGIN {
		m = 1
		if (sub(/GiB$/, "", s)) m = 1024 ^ 3
		else if (sub(/MiB$/, "", s)) m = 1024 ^ 2
		else if (sub(/KiB$/, "", s)) m = 1024
		else if (sub(/M$/, "", s)) m = 1e6
		printf "%d\n", s * m
	}'
}

# Print the timeout of one transfer in seconds: the scenario's, or three
# times what the slowest path alone would need, plus 10 s.
scenario_timeout()
{
	local i slowest=0 bps

	if [ -n "$sc_timeout" ]; then
		echo "$sc_timeout"
		return
	fi
	for ((i = 0; i < TB_NPATHS; i++)); do
		bps=$(v "TB_RATE_BPS_$i")
		if [ "$bps" -gt 0 ] &&
			{ [ "$slowest" -eq 0 ] || [ "$bps" -lt "$slowest" ]; }
		then
			slowest=$bps
		fi
	done
	[ "$slowest" -gt 0 ] || slowest=1000000000
	awk -v b="$(scenario_bytes)" -v r="$slowest" \
		'BEGIN { printf "%d\n", 3 * b * 8 / r + 10 }'
}

# Print the limit of the kernel selftest simult_flows for this scenario:
# size * 8 * 10 / (9 * (rate1 + rate2)) s plus 450 ms; "-" if none.
scenario_limit()
{
	[ "$sc_limit" = simult ] || { echo -; return; }
	awk -v b="$(scenario_bytes)" -v r1="$TB_RATE_BPS_0" \
		-v r2="$TB_RATE_BPS_1" \
		'BEGIN { printf "%.2f\n", b * 8 * 10 / (9 * (r1 + r2)) + 0.45 }'
}

# --- one run ----------------------------------------------------------------

# Print the command words that put variant $1 on a program.
variant_wrapper()
{
	case $1 in
	tcp) ;;
	kernel) echo "mptcpize run" ;;
	shim) echo "env LD_PRELOAD=$opt_shim $opt_shim_env" ;;
	esac
}

# Print "LABEL=FILE" arguments for the sampler: per path, the router's
# counter of bytes that went through the path's shaper towards the
# receiver (ri to the client, ifbi from the client).
counter_args()
{
	local dir=$1 i dev

	for ((i = 0; i < TB_NPATHS; i++)); do
		if [ "$dir" = down ]; then
			dev=r$i
		else
			dev=ifb$i
		fi
		printf 'p%d=/sys/class/net/%s/statistics/tx_bytes ' "$i" "$dev"
	done
}

# Apply the scenario's faults at their times after $1 (monotonic s); log
# "time action path" lines to $2.
run_faults()
{
	local start=$1 log=$2 f t p a now

	for f in $sc_faults; do
		IFS=: read -r t p a <<<"$f"
		now=$("$xfer" now)
		sleep "$(awk -v s="$start" -v t="$t" -v n="$now" \
			'BEGIN { d = s + t - n; print (d > 0 ? d : 0) }')"
		"$NETPATHS" fault --env "$TB_ENV" "$p" "$a"
		echo "$("$xfer" now) $a $p" >>"$log"
	done
}

clear_faults()
{
	local i

	for ((i = 0; i < TB_NPATHS; i++)); do
		"$NETPATHS" fault --env "$TB_ENV" "$i" clear
	done
}

# Wait until file $1 exists or pid $2 ends; fail after 10 s.
wait_for_file()
{
	local n=0

	while [ ! -e "$1" ]; do
		kill -0 "$2" 2>/dev/null || return 1
		n=$((n + 1))
		[ $n -lt 500 ] || return 1
		sleep 0.02
	done
}

# Run one transfer: variant $1 (tcp, kernel, shim), direction $2 (up:
# client sends), path $3 for tcp (the client binds to its address), file
# prefix $4.  Leaves $4.summary (the receiver's line), $4.csv (its
# timeline), $4.ctr.csv (path counters), $4.faults, and logs.  Programs
# in the background are started by "ip netns exec" itself, which execs
# them, so that $! is the program's pid and a signal reaches it.
run_transfer()
{
	local variant=$1 dir=$2 path=$3 base=$4 wrap sflag cflag
	local any server src="" spid cpid sampler faulter start timeout
	local -a bind=()

	wrap=$(variant_wrapper "$variant")
	timeout=$(scenario_timeout)
	port=$((port + 1))
	if [ "$sc_family" = 4 ]; then
		any=0.0.0.0
		server=$TB_SERVER4
	else
		any=::
		server=$TB_SERVER6
	fi
	if [ "$variant" = tcp ]; then
		src=$(v "TB_CLIENT${sc_family}_$path")
		bind=(-b "$src")
	fi
	say "  $dir $variant${src:+ on path $path} ($sc_bytes)"
	if [ "$dir" = up ]; then
		sflag="-R -o $base.csv"
		cflag="-S"
	else
		sflag="-S"
		cflag="-R -o $base.csv"
	fi
	rm -f "$base".*

	# shellcheck disable=SC2086
	ip netns exec "$TB_NS_SERVER" timeout -k 5 $((timeout + 15)) \
		$wrap "$xfer" server -l "$any" -p "$port" \
		$sflag -n "$(scenario_bytes)" -r "$base.ready" -T "$timeout" \
		>"$base.server.out" 2>"$base.server.err" &
	spid=$!
	wait_for_file "$base.ready" "$spid" || {
		say "server did not start: $(cat "$base.server.err")"
		kill "$spid" 2>/dev/null || true
		wait "$spid" 2>/dev/null || true
		return 0
	}

	# shellcheck disable=SC2046
	ip netns exec "$TB_NS_ROUTER" "$xfer" sample -o "$base.ctr.csv" \
		$(counter_args "$dir") &
	sampler=$!
	sleep 0.05
	start=$("$xfer" now)
	: >"$base.faults"
	run_faults "$start" "$base.faults" &
	faulter=$!

	# shellcheck disable=SC2086
	ip netns exec "$TB_NS_CLIENT" timeout -k 5 $((timeout + 15)) \
		$wrap "$xfer" client -c "$server" -p "$port" \
		${bind[@]+"${bind[@]}"} $cflag -n "$(scenario_bytes)" \
		-T "$timeout" >"$base.client.out" 2>"$base.client.err" &
	cpid=$!
	wait "$cpid" || true
	wait "$spid" || true

	kill "$faulter" 2>/dev/null || true
	wait "$faulter" 2>/dev/null || true
	kill -TERM "$sampler" 2>/dev/null || true
	wait "$sampler" || true
	clear_faults

	if [ "$dir" = up ]; then
		grep '^bytes=' "$base.server.out" >"$base.summary" || true
	else
		grep '^bytes=' "$base.client.out" >"$base.summary" || true
	fi
}

# Print field $2 (key=value) of summary file $1, or "-".
summary_field()
{
	local val

	val=$(awk -v k="$2" '{
		for (i = 1; i <= NF; i++) {
			split($i, kv, "=")
			if (kv[1] == k) { print kv[2]; exit }
		}
	}' "$1" 2>/dev/null)
	echo "${val:--}"
}

# Turn the run's counters into "t,MB per path" rows relative to the
# receiver's t0 and the counters' first values: $1.paths.csv.  Print the
# share of the bytes each path carried, e.g. "0:62% 1:38%".
process_counters()
{
	local base=$1 t0

	t0=$(summary_field "$base.summary" t0)
	if [ ! -s "$base.ctr.csv" ] || [ "$t0" = - ]; then
		echo -
		return
	fi
	awk -F, -v t0="$t0" -v out="$base.paths.csv" '
		NR == 1 { n = NF - 1; print > out; next }
		NR == 2 { for (i = 2; i <= NF; i++) first[i] = $i }
		{
			line = sprintf("%.3f", $1 - t0)
			for (i = 2; i <= NF; i++) {
				line = line sprintf(",%.4f",
					($i - first[i]) / 1e6)
				last[i] = $i
			}
			print line > out
		}
		END {
			for (i = 2; i <= n + 1; i++) {
				d[i] = last[i] - first[i]; sum += d[i]
			}
			s = ""
			for (i = 2; i <= n + 1; i++)
				s = s sprintf("%s%d:%.0f%%", s == "" ? "" : " ",
					i - 2, sum > 0 ? 100 * d[i] / sum : 0)
			print s
		}' "$base.ctr.csv"
}

# Write the fault times relative to the receiver's t0: $1.faults.rel.
process_faults()
{
	local base=$1 t0

	t0=$(summary_field "$base.summary" t0)
	[ "$t0" != - ] || return 0
	awk -v t0="$t0" '{ printf "%.3f %s %s\n", $1 - t0, $2, $3 }' \
		"$base.faults" >"$base.faults.rel"
}

# Append one row for run $3 (variant label $2, direction $1) to the
# scenario's results.tsv: direction, label, goodput (Mbit/s), completion
# time (s), longest stall (ms), checked, MiB delivered, path shares, file
# prefix.  A run that did not deliver every byte intact has no goodput
# and no completion time.
record_result()
{
	local dir=$1 label=$2 base=$3 s=$3.summary shares checked err
	local goodput secs mib

	shares=$(process_counters "$base")
	process_faults "$base"
	checked=$(summary_field "$s" verified)
	err=$(summary_field "$s" error)
	[ "$err" = none ] || [ "$err" = - ] || checked="$checked($err)"
	[ -s "$s" ] || checked="no(no result)"
	goodput=-
	secs=-
	if [ "$checked" = yes ]; then
		goodput=$(summary_field "$s" goodput_mbps)
		secs=$(summary_field "$s" seconds)
	fi
	mib=$(awk -v b="$(summary_field "$s" bytes)" \
		'BEGIN { printf "%.1f\n", b / 1048576 }')
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$dir" "$label" \
		"$goodput" "$secs" "$(summary_field "$s" max_stall_ms)" \
		"$checked" "$mib" "$shares" "$base" >>"$sdir/results.tsv"
}

# Decide whether the shim runs, once: it needs a library, and a small
# transfer shim to shim over the bed must succeed.
probe_shim()
{
	local base=$sdir/shim-probe saved_bytes=$sc_bytes saved=$sc_faults

	if [ -z "$opt_shim" ]; then
		shim_note="no library given (--shim or SHIM_LIB)"
		return 1
	fi
	[ -r "$opt_shim" ] || { shim_note="cannot read $opt_shim"; return 1; }
	sc_bytes=65536
	sc_faults=""
	run_transfer shim down 0 "$base"
	sc_bytes=$saved_bytes
	sc_faults=$saved
	if [ "$(summary_field "$base.summary" verified)" != yes ]; then
		shim_note="library not capable yet: a 64 KiB probe failed"
		shim_note="$shim_note (see $base.*)"
		return 1
	fi
	return 0
}

# --- one scenario -----------------------------------------------------------

run_variants()
{
	local dir=$1 i base shim_ok=$2

	for variant in ${opt_variants//,/ }; do
		case $variant in
		tcp)
			for ((i = 0; i < TB_NPATHS; i++)); do
				base=$sdir/$dir-tcp-p$i
				run_transfer tcp "$dir" "$i" "$base"
				record_result "$dir" "tcp-p$i" "$base"
			done
			;;
		kernel)
			base=$sdir/$dir-kernel
			run_transfer kernel "$dir" 0 "$base"
			record_result "$dir" kernel-mptcp "$base"
			;;
		shim)
			if [ "$shim_ok" = 1 ]; then
				base=$sdir/$dir-shim
				run_transfer shim "$dir" 0 "$base"
				record_result "$dir" mptcpshim "$base"
			fi
			;;
		*)
			die "unknown variant $variant"
			;;
		esac
	done
}

run_scenario()
{
	local conf=$1 dir shim_ok=0

	load_scenario "$conf"
	sdir=$opt_out/$sc_name
	mkdir -p "$sdir"
	: >"$sdir/results.tsv"
	say "== $sc_name: $sc_description"
	eval "$("$NETPATHS" up --paths "$sc_paths" \
		--server-homes "$sc_homes" ${sc_cc:+--cc "$sc_cc"})"
	setup_kernel_mptcp

	case ",$opt_variants," in
	*,shim,*) probe_shim && shim_ok=1 ;;
	esac
	for dir in $sc_directions; do
		run_variants "$dir" "$shim_ok"
	done

	print_table >"$sdir/table.txt"
	if [ "$opt_plot" = 1 ]; then
		for dir in $sc_directions; do
			"$BENCH/plot.sh" "$sdir" "$dir" "$sc_name" \
				"$sc_paths" || say "plot failed"
		done
	fi
	"$NETPATHS" down --env "$TB_ENV"
	unset TB_ENV
	cat "$sdir/table.txt"
	cat "$sdir/table.txt" >>"$opt_out/tables.txt"
}

# --- the table --------------------------------------------------------------

# Print the ratio of the goodputs of two rows, or "-".
ratio()
{
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (a == "-" || b == "-" || b + 0 == 0) print "-"
		else printf "%.2f\n", a / b }'
}

print_table()
{
	local limit dir best kern shim_g

	limit=$(scenario_limit)
	printf '\n%s: %s\n' "$sc_name" "$sc_description"
	printf 'paths %s, %s per run' "$sc_paths" "$sc_bytes"
	[ -z "$sc_faults" ] || printf ', faults %s' "$sc_faults"
	[ "$limit" = - ] || printf ', simult_flows limit %s s' "$limit"
	printf ', IPv%s, %s, delay by %s\n' "$sc_family" "$TB_CC" \
		"$TB_DELAY_STAGE"
	printf '%-4s %-12s %7s %7s %6s %8s %-15s %6s %s\n' dir variant \
		Mbit/s time_s limit stall_ms checked MiB "path shares"
	while IFS=$'\t' read -r dir label g secs stall checked mib shares _
	do
		case $label in
		tcp-*) lim=- ;;
		*) lim=$limit ;;
		esac
		printf '%-4s %-12s %7s %7s %6s %8s %-15s %6s %s\n' "$dir" \
			"$label" "$g" "$secs" "$lim" "$stall" "$checked" \
			"$mib" "$shares"
	done <"$sdir/results.tsv"

	for dir in $sc_directions; do
		best=$(awk -F'\t' -v d="$dir" '$1 == d && $2 ~ /^tcp-/ &&
			$6 == "yes" && $3 + 0 > b { b = $3 }
			END { print b ? b : "-" }' "$sdir/results.tsv")
		kern=$(awk -F'\t' -v d="$dir" '$1 == d &&
			$2 == "kernel-mptcp" { print $3 }' "$sdir/results.tsv")
		shim_g=$(awk -F'\t' -v d="$dir" '$1 == d &&
			$2 == "mptcpshim" { print $3 }' "$sdir/results.tsv")
		printf '%s: kernel-mptcp/best-path %s' "$dir" \
			"$(ratio "${kern:--}" "$best")"
		if [ -n "$shim_g" ]; then
			printf ', mptcpshim/kernel-mptcp %s' \
				"$(ratio "$shim_g" "${kern:--}")"
			printf ', mptcpshim/best-path %s\n' \
				"$(ratio "$shim_g" "$best")"
		else
			printf ', mptcpshim: skipped: %s\n' \
				"${shim_note:-not selected}"
		fi
	done
	printf 'results and plots: %s\n' "$sdir"
}

# --- main -------------------------------------------------------------------

usage()
{
	sed -n '2,/^set -eu/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
	exit 2
}

cleanup()
{
	if [ -n "${TB_ENV:-}" ] && [ -e "$TB_ENV" ]; then
		"$NETPATHS" down --env "$TB_ENV" || true
	fi
}

main()
{
	local conf

	while [ $# -gt 0 ]; do
		case $1 in
		--shim) opt_shim=$2; shift 2 ;;
		--shim-env) opt_shim_env=$2; shift 2 ;;
		--variants) opt_variants=$2; shift 2 ;;
		--out) opt_out=$2; shift 2 ;;
		--cc) opt_cc=$2; shift 2 ;;
		--no-plot) opt_plot=0; shift ;;
		-h|--help) usage ;;
		-*) die "unknown option $1" ;;
		*) break ;;
		esac
	done
	[ $# -gt 0 ] || usage
	[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces)"
	"$TOP/testbed/deps.sh" bench || die "cannot install what it needs"
	[ -z "$opt_shim" ] || opt_shim=$(readlink -f "$opt_shim")
	[ -n "$opt_out" ] ||
		opt_out=${TMPDIR:-/tmp}/mptcpshim-bench.$(date +%Y%m%d-%H%M%S)
	mkdir -p "$opt_out"
	opt_out=$(cd "$opt_out" && pwd)
	xfer=$(build_xfer)

	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	for conf in "$@"; do
		run_scenario "$conf"
	done
}

main "$@"
